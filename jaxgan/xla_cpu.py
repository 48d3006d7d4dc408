"""What XLA:CPU does slowly for jaxgan's steps, and the choice made instead; other backends
are untouched.

* `use_unrolled_threefry_on_cpu`: `jax.random`'s hash with its rounds written out, not looped.
* `compiler_options`: copy insertion with region analysis for every step (fewer copies of
  loop-carried buffers), and Eigen, not YNNPACK, for the matrix products of steps whose
  matrices are all small; `jit_step` compiles a step with them.
* `steps_per_call`: in runs of `MIN_RUN_STEPS` or more, MLP-only steps run 10 to a compiled
  call (`scan_steps`); convolutional ones 1.
* `reuse_step_memory`: the buffers XLA:CPU allocates at every step come back from glibc's
  heap, not as fresh pages the kernel must fault in and zero.
* `host_aligned`: a host batch's arrays on 64-byte boundaries, which XLA:CPU reads in place;
  given any other, it copies it first and the step's temporaries were mapped afresh at every
  call, as if `reuse_step_memory` had not run.

Threefry
--------
Every `jax.random` draw (latent noise, dropout masks, key splits) is the Threefry-2x32 hash
(Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"): 20 rounds of add,
rotate and xor on pairs of 32-bit words, with the key injected every 4 rounds. JAX lowers
it with the 20 rounds written out on GPU and TPU, but on CPU as a 5-iteration ``while``
loop, to keep compile times down in programs with many draws. On XLA:CPU each iteration of
that loop is a separate kernel launch with copies of the loop state: on this project's
2-core CPU a draw of 512x256 normals (ring8's noise) took 0.60 ms looped against 0.39 ms
written out, the bits alone 0.43 against 0.18 ms; whole steps, in one process alternating
windows: ring8 1.03-1.09x, ring8 x 10 seeds 1.12x, the K+1 GAN 1.05x, compile times level.

`use_unrolled_threefry_on_cpu` registers `threefry2x32`, the hash written out, as the CPU
lowering of JAX's public Threefry primitive for draws of `SMALL` words or more, and the
same loop as JAX's below. It is the same function, so every key, split and draw gives bit
for bit what JAX's own lowering gives (``tests/test_xla_cpu.py`` checks this against a process
without it): a seed means the same run either way. Importing `jaxgan` calls it; GPU and TPU
lowerings are untouched.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
import sys

import jax
import numpy as np
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

# Threefry-2x32's rotation constants, alternating by groups of 4 rounds, and the key-schedule
# parity constant (Salmon et al. 2011; the Random123 library's values).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: jax.Array, r) -> jax.Array:
    return (x << r) | (x >> (np.uint32(32) - r))


def _key_schedule(key1, key2, x1, x2):
    """The three key words, and the counter words with the first injection."""
    ks = (key1, key2, key1 ^ key2 ^ _PARITY)
    return ks, x1 + ks[0], x2 + ks[1]


def _group(x1, x2, rotations, k1, k2, n):
    """4 rounds, then the key injection: words ``k1`` and ``k2`` of the slid schedule and
    the group number ``n``."""
    for r in rotations:
        x1 = x1 + x2
        x2 = _rotate_left(x2, r) ^ x1
    return x1 + k1, x2 + k2 + n


def threefry2x32(key1: jax.Array, key2: jax.Array, x1: jax.Array,
                 x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds of the counter words ``(x1, x2)`` under the key
    ``(key1, key2)``, all uint32 and broadcast together; the 20 rounds written out."""
    ks, x1, x2 = _key_schedule(key1, key2, x1, x2)
    for g in range(5):
        x1, x2 = _group(x1, x2, [np.uint32(r) for r in _ROTATIONS[g % 2]], ks[(g + 1) % 3],
                        ks[(g + 2) % 3], np.uint32(g + 1))
    return x1, x2


def _threefry2x32_looped(key1, key2, x1, x2):
    """`threefry2x32` with its 5 groups of rounds in a loop, as JAX lowers it on CPU."""
    ks, x1, x2 = _key_schedule(key1, key2, x1, x2)
    rotations = jax.numpy.asarray(_ROTATIONS, np.uint32)

    def body(g, carry):
        x1, x2, k0, k1, k2 = carry  # the key words slid by one each group
        rs = rotations[g % 2]
        x1, x2 = _group(x1, x2, [rs[j] for j in range(4)], k1, k2, (g + 1).astype(np.uint32))
        return x1, x2, k1, k2, k0

    x1, x2, *_ = jax.lax.fori_loop(0, 5, body, (x1, x2, *ks))
    return x1, x2


# Below this many words a draw keeps the loop: key splits and fold-ins. Written out, XLA
# fuses such a small hash into the elementwise loop of the draw that uses its key and
# computes it again for every element (3x slower K+1 GAN input noise, 300x784); the loop
# keeps it a separate kernel that runs once.
SMALL = 4096


def _lowering(key1, key2, x1, x2):
    if math.prod(np.broadcast_shapes(key1.shape, x1.shape)) < SMALL:
        return _threefry2x32_looped(key1, key2, x1, x2)
    return threefry2x32(key1, key2, x1, x2)


# Largest weight matrix (entries) for which Eigen's products beat YNNPACK's here: forward
# and backward of 3 dense layers (`jaxgan bench` machine, one process, alternating): width
# 128 at batch 512-1024 1.1-1.6x faster with Eigen, width 256 level, width 512-1024 at batch
# 64 1.4-1.8x faster with YNNPACK. Whole steps: ring8 and ring8 x 10 seeds 1.13x faster with
# Eigen, the cGAN MLPs (1200x784 matrices) 0.66x, the K+1 GAN 0.92x, GLO 0.95x.
SMALL_MATRIX = 256 * 256


# Copy insertion with region analysis: XLA:CPU by default copies the buffers a `while` loop
# carries (such as the looped Threefry of key splits) wherever it cannot prove them unshared;
# region analysis proves more of them so, and drops those copies (LSGAN's step 180 -> 110
# copies). The same arithmetic on the same values: the steps are bit for bit the default's.
# Alternating in one process: lsgan_mnist 1.057x, cgan_mlp 1.033x, ring8 1.01x, GLO and the
# K+1 GAN level; compilation no slower.
REGION_ANALYSIS = {"xla_cpu_copy_insertion_use_region_analysis": True}


def compiler_options(state) -> dict[str, str | bool] | None:
    """XLA options for compiling a step on ``state`` (one seed's, not a stack): on CPU, copy
    insertion with region analysis (`REGION_ANALYSIS`), and when the state holds no
    convolution kernel and no matrix of more than `SMALL_MATRIX` entries, matrix products by
    XLA's own Eigen kernels instead of YNNPACK, which XLA:CPU gives them by default and which
    is slower on small ones; on other backends ``None``, XLA's defaults."""
    if jax.default_backend() != "cpu":
        return None
    shapes = [a.shape for a in jax.tree.leaves(state) if getattr(a, "ndim", 0) >= 2]
    if any(len(s) > 2 for s in shapes) or max(map(math.prod, shapes), default=0) > SMALL_MATRIX:
        return dict(REGION_ANALYSIS)
    # No library fusions: Eigen.
    return {**REGION_ANALYSIS, "xla_cpu_experimental_ynn_fusion_type": ""}


# Steps per compiled call for a state without convolution kernels, on CPU. A call of one step
# pays for dispatch, argument handling and a fresh allocation of every output; a `lax.scan`
# of 10 steps pays once and updates the carried state in place (Keras's
# ``steps_per_execution``). On this project's 2-core CPU, in one process alternating windows,
# same numbers bit for bit: ring8 1.13x, the cGAN MLPs 1.11x. Convolutional steps stay at 1:
# inside a loop XLA:CPU compiled LSGAN's MNIST step 6x slower (0.16x) and with other
# numerics; on GPU and TPU a call is not the bottleneck measured here, so 1 there too.
STEPS_PER_CALL = 10
# A run goes several steps a call only with this many steps to go: the 10-step program is a
# second compilation (here ring8 1.6 s, the cGAN MLPs 3.4 s, the K+1 GAN 5.4 s), which the
# steps' gains (0.6, 2 and 1.9 ms a step) repay after 2,800, 1,700 and 2,900 steps.
MIN_RUN_STEPS = 3000


def steps_per_call(like, steps: int | None = None) -> int:
    """How many steps a compiled call of a train step on ``like`` (one seed's state) runs:
    `STEPS_PER_CALL` on CPU when the state holds no convolution kernel, else 1; and 1 for a
    run of fewer than `MIN_RUN_STEPS` ``steps`` to go (``None``: a long run)."""
    if jax.default_backend() != "cpu" or (steps is not None and steps < MIN_RUN_STEPS):
        return 1
    if any(getattr(a, "ndim", 0) > 2 for a in jax.tree.leaves(like)):
        return 1
    return STEPS_PER_CALL


def scan_steps(step):
    """``step(state, batch) -> (state, metrics)`` as ``steps(state, batches) -> (state,
    metrics)`` over batches stacked on a leading axis: one step per row, in order, with
    the metrics stacked the same way."""
    def steps(state, batches):
        return jax.lax.scan(step, state, batches)

    return steps


def jit_step(step, like, **jit_kwargs):
    """``jax.jit(step, donate_argnums=0, **jit_kwargs)`` with the `compiler_options` of
    ``like``, one seed's state (not a stack): how every train step in jaxgan is compiled, so
    that no caller compiles one without its options."""
    return jax.jit(step, donate_argnums=0, compiler_options=compiler_options(like), **jit_kwargs)


_registered = False


def use_unrolled_threefry_on_cpu() -> None:
    """Lower `jax.random`'s Threefry with its rounds written out on CPU (idempotent)."""
    global _registered
    if not _registered:
        mlir.register_lowering(threefry2x32_p, mlir.lower_fun(_lowering, multiple_results=True),
                               platform="cpu")
        _registered = True


# Host memory
# -----------
# XLA:CPU allocates every execution's temporaries as one buffer (LSGAN's MNIST step: 124 MB,
# DCGAN's at 64 px: 624 MB) with malloc, and frees it at the end. glibc serves a request above
# its mmap threshold (32 MB at most) with a fresh `mmap` and returns it with `munmap`, so at
# every step the kernel faults in and zeroes each page of it again: 31,000 page faults per
# LSGAN step on this project's 2-core CPU. With mmap off, freed memory stays in the heap and
# the next step gets it back already mapped; but a worker thread allocates from an arena of
# its own, which maps anything above 64 MB afresh whatever the settings, and JAX's CPU client
# runs each computation on a worker thread unless its dispatch is synchronous. Synchronous, a
# single-device step runs on the thread that calls it (the main thread: glibc's main heap).
# Both, on this CPU (one process each, 5 windows): lsgan_mnist 4.38 -> 5.55 steps/s, no page
# fault left; ring8 level (its buffers are small). DCGAN at 64 px kept 160,000-190,000 faults
# a step (1.13x): XLA's worker threads allocated buffers of about 64 MB in their own arenas
# for its convolutions (none since D's convolutions run as GEMMs, `jaxgan.nets.layers.
# Downsample2x`: 0 faults a step). Limiting glibc to one arena for all threads removed those
# too (DCGAN 1.3x) but made ring8 0.7-0.85x (the threads contend for it). PyTorch gains from the
# same glibc settings too (GLIBC_TUNABLES, its reference steps: LSGAN 1.16x, the cGAN MLPs
# 1.12x, ring8 1.03-1.06x); `jaxgan bench --vs-torch` runs the references as they come.
#
# mallopt's numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
# Free memory at the top of the heap goes back to the system only above this much (mallopt's
# largest value): a bound below what a step frees at once (DCGAN at 64 px: 624 MB of
# temporaries beside its outputs) would hand it back and fault it in again at every step.
TRIM_THRESHOLD = (1 << 31) - 1
OPT_OUT = "JAXGAN_KEEP_HOST_DEFAULTS"


def reuse_step_memory() -> bool:
    """Lets each CPU step reuse, already mapped, the host memory the step before it freed:
    glibc's malloc stops serving large requests with fresh mappings and keeps freed memory
    (up to `TRIM_THRESHOLD` free at the top of its heap), and JAX's CPU client runs
    single-device computations on the calling thread (``jax_cpu_enable_async_dispatch``
    False, unless the ``JAX_CPU_ENABLE_ASYNC_DISPATCH`` environment variable chose).

    Process-wide, and only on Linux with glibc; not when ``JAXGAN_KEEP_HOST_DEFAULTS`` is set
    (to anything but ``""`` or ``"0"``). Returns whether it changed the settings. Importing
    `jaxgan` calls it; the dispatch setting only takes effect if JAX's CPU backend has not
    started yet (it is read when the client is made), and without it the allocations of a
    step stay on a worker thread and nothing is gained, but nothing breaks either.
    """
    if os.environ.get(OPT_OUT, "") not in ("", "0"):
        return False
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    if not all(mallopt(option, value) == 1 for option, value in (
            (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))):
        return False
    if "JAX_CPU_ENABLE_ASYNC_DISPATCH" not in os.environ:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True


# Host batches
# ------------
# A step given a numpy array uses its memory in place only if the data starts on a multiple of
# `HOST_ALIGN` bytes (PJRT's CPU client takes it zero-copy only then; a test checks it for the
# JAX installed). Any other array is copied first, and for an array as large as an image batch
# (here 200 KB did, 64 KB did not) the step's temporaries were then mapped afresh at every
# call, as those of a step run on one of XLA's worker threads are (`reuse_step_memory`;
# presumably the copy is asynchronous and the step runs where it ends). A test shows the
# faults, and none with the array aligned. numpy aligns its buffers to 16 bytes only (so
# jaxgan's pipelines build their batches with `aligned_empty`, and the loop aligns any other
# batch it is handed): LSGAN's MNIST step, given a batch 16 or
# 32 bytes past a 64-byte boundary, faulted in 8,500-33,700 pages a step and ran 1.1-1.2x
# slower than given it aligned or already on the device (0 page faults); trained for 60 s on
# MNIST as `benchmarks/quality.py` trains it, 5.20 -> 6.81 and 5.34 -> 6.22 steps/s with its
# batches aligned, 34,000 -> 560 page faults a step; GLO 1.16x and 1.48x. The small steps lose
# the overlap of the next batch's Python work with the step that the other thread gave them:
# the cGAN MLPs level in `jaxgan train`, the K+1 GAN 0.95x at one step a call (2026-12-07,
# runs alternating; the README has the figures).
HOST_ALIGN = 64


def aligned_empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a `HOST_ALIGN` boundary."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + HOST_ALIGN, np.uint8)
    start = -raw.ctypes.data % HOST_ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def is_host_aligned(x: np.ndarray) -> bool:
    """Whether XLA:CPU can take ``x`` in place: C-contiguous, its data on a `HOST_ALIGN`
    boundary."""
    return x.flags.c_contiguous and x.ctypes.data % HOST_ALIGN == 0


def host_aligned(tree):
    """``tree`` with every numpy array that `is_host_aligned` rejects copied into one that
    it accepts (the same values); other leaves, aligned arrays and `jax.Array` s as given."""
    def align(x):
        if not isinstance(x, np.ndarray) or is_host_aligned(x):
            return x
        out = aligned_empty(x.shape, x.dtype)
        out[...] = x
        return out

    return jax.tree.map(align, tree)


def stack_aligned(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)`` written straight into an array that `is_host_aligned` accepts."""
    first = np.asarray(arrays[0])
    out = aligned_empty((len(arrays), *first.shape), np.result_type(*arrays))
    return np.stack(arrays, out=out)
