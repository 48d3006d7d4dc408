"""Fully connected generator and discriminator, for the 2-D mixtures of Gaussians.

Defaults follow the LSGAN paper's mixture code (Mao et al. 2017, arXiv:1611.04076): 2 hidden
tanh layers of 128, z 256-d. ``/work/shared/bench/torch_ring.py`` uses ``depth=3,
activation="relu"``. Initialisation is PyTorch's default (U(+-1/sqrt(fan_in)) for weights
and biases), as in that reference. The generator's output is linear: the mixtures' modes lie
outside [-1, 1] (grid-25 spans [-4, 4]^2). LeakyReLU uses slope 0.2.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.nets.layers import torch_linear

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
        h = x.reshape(x.shape[0], -1)
        for layer in self.hidden:
            h = act(layer(h))
        return h

    def head(self, f: jax.Array) -> jax.Array:
        return self.out(f)[:, 0]

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.features(x))
