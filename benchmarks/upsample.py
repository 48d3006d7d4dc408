"""Forward + backward time of the stride-2 4x4 resampling layers: textbook form vs. rewrites.

At the LSGAN MNIST shapes (Mao et al. 2017, batch 64) times one jitted
``grad(sum(layer(x, kernel, bias) * cotangent))`` w.r.t. x, kernel and bias, for

* G's upsampling, PyTorch ``ConvTranspose2d(4, 2, 1)``: the input-dilated convolution
  (``conv_transpose_reference``) vs. the two exact forms of ``jaxgan.nets.layers.Upsample2x``,
  ``gemm`` (the default: GEMM + col2im) and ``conv3x3`` (3x3 conv + depth-to-space);
* D's downsampling, PyTorch ``Conv2d(4, 2, 1)``: XLA's strided convolution (what
  ``nnx.Conv(strides=2, padding=1)`` runs) vs. space-to-depth + 2x2 conv (defined here) and
  space-to-depth + im2col + GEMM (``jaxgan.nets.layers.conv_down_gemm``). Alone, the GEMM
  form wins on the 1-channel first layer only (2026-12-06: 2.8x; 14x14x64 -> 7x7x128 level,
  18.5 against 18.4 ms); inside the training steps it made LSGAN 1.05-1.09x and DCGAN at
  64 px 1.48x faster (the strided convolution's kernel gradients ran at 40-60 GFLOP/s there),
  so the discriminators' ``Downsample2x`` runs it on CPU. Time whole steps
  (``jaxgan bench``) before trusting this layer-alone view.

Usage: python benchmarks/upsample.py [--batch 64] [--seconds 0.3] [--repeats 5] [--dcgan]
``--dcgan`` adds the DCGAN 64x64 networks' shapes (width 64). Prints, per layer, the median
ms per call of each form and its speed-up over the reference (>1: faster). Quote the
ratios, not the absolute times: the machine is shared.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.nets import layers

_DIMS = ("NHWC", "HWIO", "NHWC")


def conv_reference(x, kernel, bias):
    """PyTorch Conv2d(4, 2, 1): XLA's strided convolution."""
    y = jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DIMS)
    return y + bias


def conv_s2d(x, kernel, bias):
    """Same op: space-to-depth of the padded input, then a 2x2 VALID conv over 4 * I channels."""
    n, h, w, i = x.shape
    xs = layers.padded_blocks(x).reshape(n, h // 2 + 1, w // 2 + 1, 4 * i)
    k2 = layers.down_kernel_blocks(kernel).reshape(2, 2, 4 * i, -1)
    return jax.lax.conv_general_dilated(xs, k2, (1, 1), "VALID", dimension_numbers=_DIMS) + bias


UP = (("reference", layers.conv_transpose_reference), ("gemm", layers.conv_transpose_gemm),
      ("conv3x3", layers.conv_transpose_conv3x3))
DOWN = (("reference", conv_reference), ("s2d+conv2x2", conv_s2d),
        ("s2d+gemm", layers.conv_down_gemm))

# (name, forms, input shape without batch, out channels, output spatial factor)
LSGAN_CASES = (
    ("G up    7x7x128 -> 14x14x64 ", UP, (7, 7, 128), 64, 2.0),
    ("G up   14x14x64 -> 28x28x1  ", UP, (14, 14, 64), 1, 2.0),
    ("D down 28x28x1  -> 14x14x64 ", DOWN, (28, 28, 1), 64, 0.5),
    ("D down 14x14x64 -> 7x7x128  ", DOWN, (14, 14, 64), 128, 0.5),
)
DCGAN_CASES = (
    ("G up   4x4x512 -> 8x8x256   ", UP, (4, 4, 512), 256, 2.0),
    ("G up   8x8x256 -> 16x16x128 ", UP, (8, 8, 256), 128, 2.0),
    ("G up 16x16x128 -> 32x32x64  ", UP, (16, 16, 128), 64, 2.0),
    ("G up  32x32x64 -> 64x64x3   ", UP, (32, 32, 64), 3, 2.0),
    ("D down 64x64x3 -> 32x32x64  ", DOWN, (64, 64, 3), 64, 0.5),
    ("D down 32x32x64 -> 16x16x128", DOWN, (32, 32, 64), 128, 0.5),
    ("D down 16x16x128 -> 8x8x256 ", DOWN, (16, 16, 128), 256, 0.5),
    ("D down 8x8x256 -> 4x4x512   ", DOWN, (8, 8, 256), 512, 0.5),
)


def _timed(fn, args, min_seconds):
    """Mean seconds per call over at least ``min_seconds`` (and 2 calls)."""
    calls, t = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - t < min_seconds:
        out = fn(*args)
        jax.block_until_ready(out)
        calls += 1
    return (time.perf_counter() - t) / calls


def _vjp_fn(f):
    # The cotangent is an argument: closed over, XLA would constant-fold the backward's
    # rearrangements of it and flatter the rewrites.
    return jax.jit(jax.grad(lambda x, k, b, cot: jnp.sum(f(x, k, b) * cot), argnums=(0, 1, 2)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=0.3, help="minimum time per measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dcgan", action="store_true", help="also time the DCGAN-64 networks' shapes")
    a = p.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, batch {a.batch}, forward+backward "
          f"(grads w.r.t. x, kernel, bias), median of {a.repeats} interleaved measurements")
    key = jax.random.key(0)
    for name, forms, shape, c_out, factor in LSGAN_CASES + (DCGAN_CASES if a.dcgan else ()):
        kx, kk, kb, kg, key = jax.random.split(key, 5)
        x = jax.random.normal(kx, (a.batch, *shape))
        kernel = 0.02 * jax.random.normal(kk, (4, 4, shape[-1], c_out))
        bias = jax.random.normal(kb, (c_out,))
        hw = int(shape[0] * factor)
        args = (x, kernel, bias, jax.random.normal(kg, (a.batch, hw, hw, c_out)))
        steps = {label: _vjp_fn(f) for label, f in forms}
        for step in steps.values():
            jax.block_until_ready(step(*args))
        # Interleaved, so that load from other users hits all forms alike.
        times = {label: [] for label in steps}
        for _ in range(a.repeats):
            for label, step in steps.items():
                times[label].append(_timed(step, args, a.seconds))
        med = {label: float(np.median(t)) for label, t in times.items()}
        ref = med["reference"]
        cells = [f"{label} {1e3 * t:7.2f} ms" + ("" if label == "reference" else f" ({ref / t:4.1f}x)")
                 for label, t in med.items()]
        print(f"{name}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
