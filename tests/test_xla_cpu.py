"""jaxgan.xla_cpu: Threefry written out gives the bits JAX's own lowering gives, key for key;
Eigen's products are chosen for small matrices only, and give the default step's numbers;
region analysis drops copies and changes no bit; a step's freed memory comes back mapped."""

import os
import platform
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxgan  # noqa: F401  (registers the lowering)
from jaxgan import xla_cpu

# Known-answer vectors of Threefry-2x32 with 20 rounds, from the Random123 distribution
# (kat_vectors): key, counter, output.
KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def _u32(*v):
    return [jnp.asarray(np.uint32(x)) for x in v]


@pytest.mark.parametrize("form", [xla_cpu.threefry2x32, xla_cpu._threefry2x32_looped])
@pytest.mark.parametrize("key,count,expected", KAT)
def test_known_answers(form, key, count, expected):
    out = jax.jit(form)(*_u32(*key), *_u32(*count))
    assert tuple(int(o) for o in out) == expected


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4), st.integers(1, 40))
def test_written_out_and_looped_forms_agree(words, n):
    k1, k2, c1, c2 = (np.uint32(w) for w in words)
    x1 = jnp.arange(n, dtype=jnp.uint32) + c1
    x2 = jnp.arange(n, dtype=jnp.uint32) ^ c2
    written = jax.jit(xla_cpu.threefry2x32)(k1, k2, x1, x2)
    looped = jax.jit(xla_cpu._threefry2x32_looped)(k1, k2, x1, x2)
    chex.assert_trees_all_equal(written, looped)


# The draws a run makes, at sizes on both sides of `xla_cpu.SMALL`.
DRAWS = textwrap.dedent("""
    import jax, numpy as np
    out = {}
    for seed in (0, 7):
        k = jax.random.PRNGKey(seed)
        fs = {"bits": lambda k: jax.random.bits(k, (5, 7)),
              "normal": lambda k: jax.random.normal(k, (300, 257)),
              "uniform": lambda k: jax.random.uniform(k, (64, 100)),
              "split": lambda k: jax.random.split(k, 5),
              "fold_in": lambda k: jax.random.fold_in(k, 9),
              "dropout": lambda k: jax.random.bernoulli(k, 0.5, (64, 1200))}
        for name, f in fs.items():
            out[f"{name}{seed}"] = np.asarray(jax.jit(f)(k))
""")


def test_draws_equal_jax_own_lowering(tmp_path):
    # JAX's own lowering, in a process that never imports jaxgan.
    ref = tmp_path / "ref.npz"
    code = DRAWS + f"np.savez({str(ref)!r}, **out)\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    scope: dict = {}
    exec(DRAWS, scope)  # here, with jaxgan's lowering registered
    expected = np.load(ref)
    assert sorted(expected.files) == sorted(scope["out"])
    for name, got in scope["out"].items():
        np.testing.assert_array_equal(got, expected[name], err_msg=name)


def test_lowering_is_written_out_for_draws_and_looped_for_keys():
    key = jax.random.PRNGKey(0)
    draw = jax.jit(lambda k: jax.random.normal(k, (64, 128))).lower(key).as_text()
    split = jax.jit(lambda k: jax.random.split(k, 3)).lower(key).as_text()
    assert "stablehlo.while" not in draw
    assert "stablehlo.while" in split


def _leaves(*shapes):
    return {f"w{i}": jnp.zeros(s) for i, s in enumerate(shapes)}


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU choice")
def test_eigen_products_only_for_states_of_small_matrices():
    region = xla_cpu.REGION_ANALYSIS
    eigen = {**region, "xla_cpu_experimental_ynn_fusion_type": ""}
    assert xla_cpu.compiler_options(_leaves((2, 128), (128, 128), (128,), ())) == eigen
    assert xla_cpu.compiler_options(_leaves((256, 256))) == eigen
    assert xla_cpu.compiler_options(_leaves((128, 128), (1200, 784))) == region
    assert xla_cpu.compiler_options(_leaves((128, 128), (4, 4, 3, 64))) == region  # a conv kernel


@pytest.fixture(scope="module")
def ring8():
    """A small ring8 step (a state, its raw step and a batch): its key splits are loops."""
    from jaxgan import configs
    from jaxgan.state import init_state
    from jaxgan.step import make_step

    cfg = configs.MixtureConfig(objective="lsgan", depth=3, activation="relu", batch_size=64)
    nets, state = init_state(cfg, (2,))
    step, _ = make_step(cfg, nets, jit=False)
    batch = {"x": jax.random.normal(jax.random.PRNGKey(1), (64, 2)),
             "y": jnp.zeros(64, jnp.int32)}
    return state, step, batch


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU choice")
def test_ring8_step_with_eigen_products_equals_the_default_one(ring8):
    state, step, batch = ring8
    options = xla_cpu.compiler_options(state)
    assert "xla_cpu_experimental_ynn_fusion_type" in options  # the mixture MLPs are small
    default = jax.jit(step)(state, batch)
    eigen = jax.jit(step, compiler_options=options)(state, batch)
    # Other kernels sum in another order: equal up to float32 rounding.
    chex.assert_trees_all_close(eigen, default, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU choice")
def test_region_analysis_drops_copies_and_changes_no_bit(ring8):
    """Two steps compiled with and without `REGION_ANALYSIS`: fewer copies in the program,
    the same bits out (only copies differ, no arithmetic)."""
    state, step, batch = ring8
    runs, copies = [], []
    for options in (None, xla_cpu.REGION_ANALYSIS):
        compiled = jax.jit(step).lower(state, batch).compile(options)
        copies.append(compiled.as_text().count(" copy("))
        s, metrics = compiled(state, batch)
        runs.append(compiled(s, batch))
    assert copies[1] < copies[0], copies
    chex.assert_trees_all_equal(runs[1], runs[0])


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU choice")
def test_steps_per_call_is_several_for_mlps_and_one_for_convolutions():
    assert xla_cpu.steps_per_call(_leaves((128, 128), (1200, 784))) == xla_cpu.STEPS_PER_CALL > 1
    assert xla_cpu.steps_per_call(_leaves((128, 128), (4, 4, 3, 64))) == 1
    # A short run does not pay for the second compilation.
    assert xla_cpu.steps_per_call(_leaves((128, 128)), xla_cpu.MIN_RUN_STEPS - 1) == 1
    assert xla_cpu.steps_per_call(_leaves((128, 128)), xla_cpu.MIN_RUN_STEPS) > 1


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="measured on CPU")
def test_scanned_steps_are_the_steps_one_at_a_time(ring8):
    """`scan_steps` of 3 steps compiled as training compiles it: the state and each step's
    metrics of 3 single calls, bit for bit."""
    state, step, batch = ring8
    batches = jax.tree.map(lambda a: jnp.stack([a, a[::-1], 2 * a]), batch)
    one = xla_cpu.jit_step(step, state)
    s, singles = jax.tree.map(jnp.copy, state), []
    for i in range(3):
        s, m = one(s, jax.tree.map(lambda a: a[i], batches))
        singles.append(m)
    many, stacked = xla_cpu.jit_step(xla_cpu.scan_steps(step), state)(
        jax.tree.map(jnp.copy, state), batches)
    chex.assert_trees_all_equal(many, s)
    chex.assert_trees_all_equal(stacked, jax.tree.map(lambda *xs: jnp.stack(xs), *singles))


# A fresh process, jaxgan imported before any array exists (as a user's script does), runs a
# program whose 64 MiB output, above glibc's mmap threshold, is freed before the next call.
# Prints the median page faults of a call (the heap may still grow on a few calls while it
# settles, more so on a loaded machine) and the dispatch setting.
_FAULTS = textwrap.dedent("""
    import resource, statistics
    import jax, jax.numpy as jnp
    import jaxgan
    f = jax.jit(lambda a: a * 2.0 + 1.0)
    x = jnp.ones((16 * 1024 * 1024,), jnp.float32)
    for _ in range(5):
        f(x).block_until_ready()
    faults = []
    for _ in range(15):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        f(x).block_until_ready()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(statistics.median(faults), jax.config.read("jax_cpu_enable_async_dispatch"))
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_a_freed_step_buffer_comes_back_mapped_unless_opted_out():
    def run(**env):
        chosen = (xla_cpu.OPT_OUT, "JAX_CPU_ENABLE_ASYNC_DISPATCH")
        env = {k: v for k, v in os.environ.items() if k not in chosen} | env
        out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, check=True, timeout=300,
                             capture_output=True, text=True).stdout.split()
        return float(out[0]), out[1]

    pages = 16 * 1024 * 1024 * 4 // 4096
    faults, asynchronous = run()
    assert faults < pages / 20 and asynchronous == "False"
    # JAX's and glibc's defaults: every call maps its output afresh.
    faults, asynchronous = run(**{xla_cpu.OPT_OUT: "1"})
    assert faults > pages / 2 and asynchronous == "True"


def _misaligned(shape, dtype=np.float32, offset: int = 16) -> np.ndarray:
    """An array of ``shape`` whose data starts ``offset`` bytes past a 64-byte boundary."""
    dtype = np.dtype(dtype)
    raw = xla_cpu.aligned_empty((int(np.prod(shape)) * dtype.itemsize + 64,), np.uint8)
    out = raw[offset:offset + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
    out[...] = np.arange(out.size).reshape(shape)
    return out


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU client's zero copy")
@pytest.mark.parametrize("offset", [0, 16, 32, 48])
def test_host_arrays_are_taken_in_place_only_on_64_byte_boundaries(offset):
    # What HOST_ALIGN stands for, checked against the JAX installed: the device array
    # aliases the numpy buffer only when it starts on a 64-byte boundary.
    x = _misaligned((64, 28, 28, 1), offset=offset)
    assert xla_cpu.is_host_aligned(x) == (offset == 0)
    assert (jax.device_put(x).unsafe_buffer_pointer() == x.ctypes.data) == (offset == 0)
    aligned = xla_cpu.host_aligned(x)
    assert jax.device_put(aligned).unsafe_buffer_pointer() == aligned.ctypes.data


@given(st.lists(st.integers(1, 5), min_size=0, max_size=3),
       st.sampled_from([np.float32, np.int32, np.uint8, np.float64]),
       st.integers(0, 63), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_host_aligned_and_stack_aligned_keep_every_value(shape, dtype, offset, n):
    itemsize = np.dtype(dtype).itemsize
    x = _misaligned(tuple(shape), dtype, offset=offset - offset % itemsize)
    out = xla_cpu.host_aligned({"x": x, "k": 3, "d": jnp.ones(2)})
    assert xla_cpu.is_host_aligned(out["x"]) and out["x"].dtype == x.dtype
    np.testing.assert_array_equal(out["x"], x)
    assert out["k"] == 3 and isinstance(out["d"], jax.Array)
    if xla_cpu.is_host_aligned(x):
        assert out["x"] is x  # nothing copied
    xs = [x + i for i in range(n)]
    stacked = xla_cpu.stack_aligned(xs)
    assert xla_cpu.is_host_aligned(stacked)
    np.testing.assert_array_equal(stacked, np.stack(xs))
    # A strided view (not C-contiguous) is copied into a contiguous one.
    if x.ndim and x.shape[0] > 1:
        np.testing.assert_array_equal(xla_cpu.host_aligned(x[::2]), x[::2])
        assert xla_cpu.is_host_aligned(xla_cpu.host_aligned(x[::2]))


# A fresh process, as `_FAULTS`: a program with a 128 MiB temporary takes a host array of
# LSGAN's MNIST batch size (64 x 28 x 28 floats) that starts 16 bytes past a 64-byte boundary,
# as numpy's own allocations often do, given as it is or through `host_aligned`. Prints the
# median page faults of a call.
_HOST_INPUT = textwrap.dedent("""
    import resource, statistics, sys
    import numpy as np, jax, jax.numpy as jnp
    import jaxgan
    from jaxgan import xla_cpu

    def program(a, x):
        t = jnp.sin(a * x[0])  # a temporary of 128 MiB, not fused into the sum
        return jnp.sum(t[::2] - t[1::2][::-1], axis=0)

    f = jax.jit(program)
    a = jnp.ones((4096, 8192), jnp.float32)
    x = xla_cpu.aligned_empty((64 * 28 * 28 + 16,), np.float32)[4:]
    x[...] = 1.0
    assert not xla_cpu.is_host_aligned(x)
    if sys.argv[1] == "aligned":
        x = xla_cpu.host_aligned(x)
    for _ in range(3):
        f(a, x).block_until_ready()
    faults = []
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        f(a, x).block_until_ready()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(statistics.median(faults))
""")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or jax.default_backend() != "cpu",
                    reason="glibc's malloc settings, the CPU client's zero copy")
def test_a_misaligned_host_input_costs_fresh_pages_and_an_aligned_one_does_not():
    def faults(how):
        env = {k: v for k, v in os.environ.items()
               if k not in (xla_cpu.OPT_OUT, "JAX_CPU_ENABLE_ASYNC_DISPATCH")}
        out = subprocess.run([sys.executable, "-c", _HOST_INPUT, how], env=env, check=True,
                             timeout=300, capture_output=True, text=True).stdout
        return float(out.split()[0])

    pages = 4096 * 8192 * 4 // 4096
    # Copied first, the input leaves the call's temporary mapped afresh at every call despite
    # `reuse_step_memory`, as a step run on a worker thread has it (the presumed cause).
    assert faults("as_is") > pages / 2
    assert faults("aligned") < pages / 20
