"""LSGAN's MNIST generator and discriminator (Mao et al. 2017, arXiv:1611.04076), NHWC.

Layer for layer the PyTorch model of ``../shared/bench/torch_lsgan.py`` (classes ``G`` and
``D``), which the throughput comparison runs against:

* G: z (62) -> FC 1024, BN, ReLU -> FC 128*7*7, BN, ReLU -> reshape 128x7x7 ->
  ConvTranspose2d(128, 64, 4, 2, 1), BN, ReLU -> ConvTranspose2d(64, 1, 4, 2, 1), tanh.
* D: Conv2d(1, 64, 4, 2, 1), LeakyReLU(0.2) -> Conv2d(64, 128, 4, 2, 1), BN, LeakyReLU ->
  flatten -> FC 1024, [BN,] LeakyReLU (= ``features``) -> FC 1 (= ``head``, a linear logit);
  the bracketed BN is off by default (see `LSGANMnistDiscriminator`).

To keep a PyTorch state dict mappable one to one, the reshape / flatten around the FC layers
use PyTorch's (C, H, W) order (``Linear.weight.T`` maps onto ``kernel``; conv weights map by
``weight.transpose(2, 3, 1, 0)`` for Conv2d and ``weight.transpose(2, 3, 0, 1)`` for
ConvTranspose2d, see :mod:`jaxgan.nets.layers`). Weights are drawn N(0, 0.02) with zero biases,
as the LSGAN MNIST implementations this pair comes from do (``initialize_weights`` of
pytorch-generative-model-collections). PyTorch's default init is not usable here: it takes
ConvTranspose2d's fan_in from out_channels * 16 = 16 for the last layer, so the pre-tanh
outputs start with a standard deviation above 2, tanh saturates, and G stays stuck at
binary noise (seen here: no digit after 3 epochs). Biases are kept before BatchNorm as in the
reference; BatchNorm momentum 0.9 (PyTorch's 0.1), epsilon 1e-5. One known difference: Flax updates the running variance with
the biased batch variance, PyTorch with the unbiased one (eval mode only).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.nets.layers import (
    Downsample2x,
    GroupedBatchNorm,
    Upsample2x,
    dcgan_init,
    dense_dot_general,
)

_BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1 convention


def _bn(num_features: int, rngs: nnx.Rngs, cls=nnx.BatchNorm) -> nnx.BatchNorm:
    return cls(num_features, momentum=_BN_MOMENTUM, epsilon=1e-5, rngs=rngs)


def _linear(d_in: int, d_out: int, rngs: nnx.Rngs) -> nnx.Linear:
    return nnx.Linear(d_in, d_out, kernel_init=dcgan_init, dot_general=dense_dot_general,
                      rngs=rngs)


def _conv(c_in: int, c_out: int, rngs: nnx.Rngs) -> Downsample2x:
    return Downsample2x(c_in, c_out, kernel_init=dcgan_init, rngs=rngs)


def _up(c_in: int, c_out: int, rngs: nnx.Rngs) -> Upsample2x:
    return Upsample2x(c_in, c_out, kernel_init=dcgan_init, rngs=rngs)


def nchw_flatten(x: jax.Array) -> jax.Array:
    """(N, H, W, C) -> (N, C*H*W) in PyTorch's ``x.view(N, -1)`` order for NCHW tensors."""
    return x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)


def nchw_unflatten(v: jax.Array, channels: int, height: int, width: int) -> jax.Array:
    """Inverse of :func:`nchw_flatten`: PyTorch's ``v.view(-1, C, H, W)``, returned as NHWC."""
    return v.reshape(v.shape[0], channels, height, width).transpose(0, 2, 3, 1)


class LSGANMnistGenerator(nnx.Module):
    """LSGAN MNIST generator: (N, z_dim) -> (N, 28, 28, 1) in [-1, 1].

    References:
      Mao et al. 2017, Least Squares Generative Adversarial Networks,
      https://arxiv.org/abs/1611.04076
    """

    def __init__(self, *, z_dim: int = 62, rngs: nnx.Rngs):
        self.z_dim = z_dim
        self.out_shape = (28, 28, 1)
        self.fc1 = _linear(z_dim, 1024, rngs)
        self.bn1 = _bn(1024, rngs)
        self.fc2 = _linear(1024, 128 * 7 * 7, rngs)
        self.bn2 = _bn(128 * 7 * 7, rngs)
        self.up1 = _up(128, 64, rngs)
        self.bn3 = _bn(64, rngs)
        self.up2 = _up(64, 1, rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        h = jax.nn.relu(self.bn1(self.fc1(z)))
        h = jax.nn.relu(self.bn2(self.fc2(h)))
        h = nchw_unflatten(h, 128, 7, 7)
        h = jax.nn.relu(self.bn3(self.up1(h)))
        return jnp.tanh(self.up2(h))


class LSGANMnistDiscriminator(nnx.Module):
    """LSGAN MNIST discriminator: (N, 28, 28, 1) -> (N,) linear outputs.

    ``fc_batchnorm``: the user's listing puts BatchNorm on the FC-1024 layer too. Off by
    default, because with real and fake batches normalised separately (as the listing and
    DCGAN do) a BatchNorm right after a linear layer removes each batch's mean feature, and a
    linear layer maps the batch's mean image to that mean feature: D is blind to the fake
    batch's mean image, so G gets no gradient to move it. Measured here: with it, G still drew
    grey noise after 3 epochs of MNIST; without it (or with DCGAN's all-conv D), digits
    appeared within 400 steps. Set it for the listing's exact network.

    ``features(x)``: the FC-1024 layer after (BatchNorm and) LeakyReLU, (N, 1024);
    ``head(f)``: FC 1, squeezed to (N,); ``__call__(x) = head(features(x))``.

    References:
      Mao et al. 2017, Least Squares Generative Adversarial Networks,
      https://arxiv.org/abs/1611.04076
    """
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)

    def __init__(self, *, fc_batchnorm: bool = False, rngs: nnx.Rngs):
        self.in_shape = (28, 28, 1)
        self.num_features = 1024
        self.conv1 = _conv(1, 64, rngs)
        self.conv2 = _conv(64, 128, rngs)
        # Grouped: the D update's one call on real and fake normalises each batch alone.
        self.bn2 = _bn(128, rngs, GroupedBatchNorm)
        self.fc1 = _linear(128 * 7 * 7, 1024, rngs)
        self.bn3 = _bn(1024, rngs, GroupedBatchNorm) if fc_batchnorm else None
        self.fc2 = _linear(1024, 1, rngs)

    def features(self, x: jax.Array) -> jax.Array:
        h = jax.nn.leaky_relu(self.conv1(x), 0.2)
        h = jax.nn.leaky_relu(self.bn2(self.conv2(h)), 0.2)
        h = self.fc1(nchw_flatten(h))
        return jax.nn.leaky_relu(h if self.bn3 is None else self.bn3(h), 0.2)

    def head(self, f: jax.Array) -> jax.Array:
        return self.fc2(f)[:, 0]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))
