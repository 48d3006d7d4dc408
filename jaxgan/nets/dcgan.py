"""DCGAN generator and discriminator (Radford et al. 2015, arXiv:1511.06434), NHWC.

The paper's guidelines (Sec. 3): strided convolutions in D and fractionally-strided ones in
G, no fully connected hidden layers, batch norm in both networks except G's output layer
and D's input layer, ReLU in G with a tanh output, LeakyReLU(0.2) in D; all weights
~ N(0, 0.02) (Sec. 4).

Layout, for ``n = log2(resolution / 4)`` resampling stages (``n = 2`` from 7x7 for 28 px):

* G: z -> linear projection, reshaped to a 4x4 (7x7) map with ``min(width * 2^(n-1),
  width * 8)`` channels (the paper's "first layer"), then ``n`` 4x4 stride-2 transposed
  convolutions (:class:`~jaxgan.nets.layers.Upsample2x`), each doubling the resolution and
  halving the channels (never above ``width * 8``), the last one to ``channels`` with tanh.
  BatchNorm + ReLU after every layer but the last.
* D: the mirror, ``n`` 4x4 stride-2 convolutions (padding 1) from ``width`` channels up,
  doubling (capped at ``width * 8``), LeakyReLU(0.2), BatchNorm on all but the first;
  ``features`` is the flattened last 4x4 (7x7) map after its activation, ``head`` a linear
  layer to one logit.

Choices, documented: the projection's BatchNorm normalises each channel of the reshaped map
(as the PyTorch DCGAN example's first ConvTranspose2d + BatchNorm2d does; the paper's Theano
code normalises each of the 4*4*C units); layers followed by BatchNorm carry no bias (it
would be cancelled); BatchNorm momentum 0.9 (PyTorch's 0.1), epsilon 1e-5, scale 1, bias 0.

D's normalisation is a parameter (``norm``): a gradient penalty (WGAN-GP) penalises the
gradient of D at each example alone, which batch norm makes depend on the rest of the batch;
Gulrajani et al. 2017 (Sec. 4) drop it from the critic and recommend layer normalisation,
as their code does: statistics over (H, W, C) of each example, a scale and offset per channel.
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.nets.layers import Downsample2x, Upsample2x, dcgan_init, dense_dot_general

RESOLUTIONS = (28, 32, 64, 128, 256)
_BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1 convention


def _plan(resolution: int, width: int) -> tuple[int, tuple[int, ...]]:
    """Smallest map side and channels per map size, smallest first (G's order)."""
    if resolution not in RESOLUTIONS:
        raise ValueError(
            f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, got {resolution}"
        )
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    base = 7 if resolution == 28 else 4
    n = round(math.log2(resolution // base))
    return base, tuple(min(width * 2 ** (n - 1 - level), width * 8) for level in range(n))


D_NORMS = ("batch", "layer", "none")


def _bn(num_features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(num_features, momentum=_BN_MOMENTUM, epsilon=1e-5, rngs=rngs)


def _d_norm(kind: str, num_features: int, rngs: nnx.Rngs):
    if kind == "batch":
        return _bn(num_features, rngs)
    if kind == "layer":
        return nnx.LayerNorm(
            num_features, epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=-1, rngs=rngs
        )
    return _Identity()


class _Identity(nnx.Module):
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)

    def __call__(self, h: jax.Array) -> jax.Array:
        return h


class DCGANGenerator(nnx.Module):
    """DCGAN generator: (N, z_dim) -> (N, resolution, resolution, channels) in [-1, 1].

    Args:
      z_dim: noise size (the paper: 100, uniform).
      resolution: output side, one of 28, 32, 64, 128, 256.
      channels: output channels (1 or 3).
      width: channels of the last hidden map; the others double towards the input, capped at
        ``8 * width``. The paper's Fig. 1 64x64 generator (4x4x1024 ... 32x32x128) is
        ``width=128``; the default 64 is the PyTorch DCGAN example's (4x4x512).
      upsample_impl: how :class:`~jaxgan.nets.layers.Upsample2x` computes the transposed
        convolutions (same parameters and outputs): "gemm" is the fastest on CPU; "conv3x3"
        needs less transient memory (the gemm form holds 4x each layer's output), worth it
        for 256 px at large batches.
      rngs: parameter keys.

    References:
      Radford, Metz, Chintala 2015, https://arxiv.org/abs/1511.06434
    """

    def __init__(
        self,
        *,
        z_dim: int = 100,
        resolution: int = 64,
        channels: int = 3,
        width: int = 64,
        upsample_impl: Literal["gemm", "conv3x3"] = "gemm",
        rngs: nnx.Rngs,
    ):
        base, widths = _plan(resolution, width)
        self.z_dim = z_dim
        self.resolution = resolution
        self.out_shape = (resolution, resolution, channels)
        self.base = base
        self.project = nnx.Linear(
            z_dim, base * base * widths[0], use_bias=False, kernel_init=dcgan_init,
            dot_general=dense_dot_general, rngs=rngs
        )
        self.project_bn = _bn(widths[0], rngs)
        self.ups = nnx.List(
            Upsample2x(
                c_in, c_out, use_bias=False, kernel_init=dcgan_init, impl=upsample_impl, rngs=rngs
            )
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.bns = nnx.List(_bn(c, rngs) for c in widths[1:])
        self.out = Upsample2x(
            widths[-1], channels, kernel_init=dcgan_init, impl=upsample_impl, rngs=rngs
        )

    def __call__(self, z: jax.Array) -> jax.Array:
        h = self.project(z).reshape(z.shape[0], self.base, self.base, -1)
        h = jax.nn.relu(self.project_bn(h))
        for up, bn in zip(self.ups, self.bns):
            h = jax.nn.relu(bn(up(h)))
        return jnp.tanh(self.out(h))


class DCGANDiscriminator(nnx.Module):
    """DCGAN discriminator: (N, resolution, resolution, channels) -> (N,) logits.

    ``features(x)`` is the flattened last conv map after its LeakyReLU, (N, base^2 * C) with
    base 4 (7 for 28 px) and C = ``min(width * 2^(n-1), 8 * width)``; ``head(f)`` the linear
    logit; ``__call__(x) = head(features(x))``.

    Args:
      resolution, channels, width: as the generator's.
      norm: what follows each conv but the first: "batch" (the paper), "layer" (per-example
        statistics over the whole map, WGAN-GP's critic) or "none".
      rngs: parameter keys.

    References:
      Radford, Metz, Chintala 2015, https://arxiv.org/abs/1511.06434
      Gulrajani et al. 2017 (layer norm), https://arxiv.org/abs/1704.00028
    """
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)

    def __init__(
        self,
        *,
        resolution: int = 64,
        channels: int = 3,
        width: int = 64,
        norm: Literal["batch", "layer", "none"] = "batch",
        rngs: nnx.Rngs,
    ):
        if norm not in D_NORMS:
            raise ValueError(f"norm must be one of {', '.join(D_NORMS)}, got {norm!r}")
        base, widths = _plan(resolution, width)
        widths = widths[::-1]  # largest map first
        self.resolution = resolution
        self.in_shape = (resolution, resolution, channels)
        self.num_features = base * base * widths[-1]
        self.convs = nnx.List(
            Downsample2x(c_in, c_out, use_bias=(level == 0 or norm == "none"),
                         kernel_init=dcgan_init, rngs=rngs)
            for level, (c_in, c_out) in enumerate(zip((channels,) + widths[:-1], widths))
        )
        # No BatchNorm on D's input layer (Sec. 3).
        self.bns = nnx.List(_d_norm(norm, c, rngs) for c in widths[1:])
        self.linear = nnx.Linear(self.num_features, 1, kernel_init=dcgan_init, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        h = jax.nn.leaky_relu(self.convs[0](x), 0.2)
        for conv, bn in zip(self.convs[1:], self.bns):
            h = jax.nn.leaky_relu(bn(conv(h)), 0.2)
        return h.reshape(h.shape[0], -1)

    def head(self, f: jax.Array) -> jax.Array:
        return self.linear(f)[:, 0]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))
