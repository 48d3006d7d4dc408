"""Fully connected generator and discriminator, for the 2-D mixtures of Gaussians.

Defaults follow the LSGAN paper's mixture code (Mao et al. 2017, arXiv:1611.04076): 2 hidden
tanh layers of 128, z 256-d. ``../shared/bench/torch_ring.py`` uses ``depth=3,
activation="relu"``. Initialisation is PyTorch's default (U(+-1/sqrt(fan_in)) for weights
and biases), as in that reference. The generator's output is linear: the mixtures' modes lie
outside [-1, 1] (grid-25 spans [-4, 4]^2). LeakyReLU uses slope 0.2.

`PacGANGenerator` and `MaxoutDiscriminator` are PacGAN's mixture networks instead (Lin et al.
2018): a 4 x 400 batch-norm ReLU G from 2-d noise and a 3 x 200 maxout D, ``--arch pacgan_mlp``.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.nets.layers import PartsLinear, flat_rows, torch_linear

Activation = Literal["tanh", "relu", "leaky_relu"]
_ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.2),
}


def _check(activation: str, depth: int) -> None:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    if depth < 1:
        raise ValueError(f"depth (number of hidden layers) must be >= 1, got {depth}")


def _hidden_stack(d_in: int, hidden: int, depth: int, rngs: nnx.Rngs) -> nnx.List:
    return nnx.List(torch_linear(d_in if i == 0 else hidden, hidden, rngs) for i in range(depth))


class MLPGenerator(nnx.Module):
    """MLP generator: (N, z_dim) -> (N, *out_shape), linear output.

    Args:
      z_dim: noise size.
      out_dim: output size, used when ``out_shape`` is None (``out_shape = (out_dim,)``).
      hidden: units per hidden layer.
      depth: number of hidden layers.
      activation: "tanh", "relu" or "leaky_relu" (slope 0.2).
      out_shape: optional output shape per example, e.g. (28, 28, 1); overrides ``out_dim``.
      rngs: parameter keys.
    """

    def __init__(
        self,
        *,
        z_dim: int = 256,
        out_dim: int = 2,
        hidden: int = 128,
        depth: int = 2,
        activation: Activation = "tanh",
        out_shape: Sequence[int] | None = None,
        rngs: nnx.Rngs,
    ):
        _check(activation, depth)
        self.z_dim = z_dim
        self.out_shape = (out_dim,) if out_shape is None else tuple(out_shape)
        self.activation = activation
        self.hidden = _hidden_stack(z_dim, hidden, depth, rngs)
        self.out = torch_linear(hidden, math.prod(self.out_shape), rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        h = z
        for layer in self.hidden:
            h = act(layer(h))
        return self.out(h).reshape(z.shape[0], *self.out_shape)


class MLPDiscriminator(nnx.Module):
    """MLP discriminator: (N, in_dim) or (N, ...) flattened to in_dim -> (N,) logits.

    ``features(x)``: the last hidden layer after its activation, (N, hidden); ``head(f)``:
    linear to one logit, (N,); ``__call__(x) = head(features(x))``.
    """
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)
    # Its first layer takes the input in parts (`jaxgan.nets.layers.PartsLinear`).
    TAKES_PARTS = True

    def __init__(
        self,
        *,
        in_dim: int = 2,
        hidden: int = 128,
        depth: int = 2,
        activation: Activation = "tanh",
        rngs: nnx.Rngs,
    ):
        _check(activation, depth)
        self.in_dim = in_dim
        self.num_features = hidden
        self.activation = activation
        self.hidden = _hidden_stack(in_dim, hidden, depth, rngs)
        self.out = torch_linear(hidden, 1, rngs)

    def features(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        h = flat_rows(x)
        for layer in self.hidden:
            h = act(layer(h))
        return h

    def head(self, f: jax.Array) -> jax.Array:
        return self.out(f)[:, 0]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))


# PacGAN's mixture networks (Lin et al. 2018, arXiv:1712.04086, App. on the 2-D experiments;
# their released config for 2DRing / 2DGrid): weights N(0, 0.02), biases 0.
_PACGAN_INIT = nnx.initializers.normal(stddev=0.02)


class PacGANGenerator(nnx.Module):
    """PacGAN's mixture G: ``depth`` hidden layers of ``hidden`` units, each linear without
    bias, batch norm, ReLU; a linear output with bias. (N, z_dim) -> (N, out_dim).

    The batch-norm averages move by 5% a step, as in their code (momentum 0.95).
    """

    def __init__(self, *, z_dim: int = 2, out_dim: int = 2, hidden: int = 400, depth: int = 4,
                 rngs: nnx.Rngs):
        _check("relu", depth)
        self.z_dim = z_dim
        self.out_shape = (out_dim,)
        self.hidden = nnx.List(
            nnx.Linear(z_dim if i == 0 else hidden, hidden, use_bias=False,
                       kernel_init=_PACGAN_INIT, rngs=rngs)
            for i in range(depth))
        self.norms = nnx.List(nnx.BatchNorm(hidden, momentum=0.95, epsilon=1e-4, rngs=rngs)
                              for _ in range(depth))
        self.out = nnx.Linear(hidden, out_dim, kernel_init=_PACGAN_INIT, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        for layer, norm in zip(self.hidden, self.norms):
            h = jax.nn.relu(norm(layer(h)))
        return self.out(h)


class MaxoutDiscriminator(nnx.Module):
    """PacGAN's mixture D: ``depth`` maxout layers of ``hidden`` units (each the max of
    ``pieces`` linear pieces; Goodfellow et al. 2013), then a linear logit.

    ``features(x)``: the last maxout layer, (N, hidden); ``head(f)``: (N,) logits. A submodule
    path such as ``hidden/0`` names a layer's linear pieces, (N, hidden * pieces).
    """
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)
    # Its first layer takes the input in parts (`jaxgan.nets.layers.PartsLinear`).
    TAKES_PARTS = True

    def __init__(self, *, in_dim: int = 2, hidden: int = 200, depth: int = 3, pieces: int = 5,
                 rngs: nnx.Rngs):
        _check("relu", depth)
        if pieces < 1:
            raise ValueError(f"pieces (linear pieces a maxout unit takes the max of) must be >= 1, "
                             f"got {pieces}")
        self.in_dim = in_dim
        self.num_features = hidden
        self.pieces = pieces
        self.hidden = nnx.List(
            PartsLinear(in_dim if i == 0 else hidden, hidden * pieces, kernel_init=_PACGAN_INIT,
                        rngs=rngs)
            for i in range(depth))
        self.out = nnx.Linear(hidden, 1, kernel_init=_PACGAN_INIT, rngs=rngs)

    def features(self, x: jax.Array) -> jax.Array:
        h = flat_rows(x)
        n = len(x[0] if isinstance(x, tuple) else x)
        for layer in self.hidden:
            h = layer(h).reshape(n, self.num_features, self.pieces).max(axis=-1)
        return h

    def head(self, f: jax.Array) -> jax.Array:
        return self.out(f)[:, 0]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))
