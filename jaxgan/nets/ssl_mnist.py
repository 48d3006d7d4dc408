"""The official permutation-invariant MNIST networks of the semi-supervised GAN.

Layer for layer ``train_mnist_feature_matching.py`` of openai/improved-gan (Salimans et al.
2016, Sec. 5, Table 1), on flattened images in [0, 1]:

* D: Gaussian noise (std 0.3) -> 1000 -> 500 -> 250 -> 250 -> 250 -> K = 10 logits; ReLU and
  Gaussian noise (std 0.5) after each hidden layer; every layer a weight-normalised dense
  layer (``nn.DenseLayer``: ``V ~ N(0, 0.1^2)``, data-dependent initialisation, scale ``g``
  trained only in the output layer). ``features`` is the last 250-unit layer after its ReLU
  and before its noise (the official ``layers[-3]``, feature matching's layer); ``head`` adds
  the noise and the output layer.
* G: ``z ~ U(0, 1)^100`` -> 500 -> 500 (dense without bias, batch norm without scale,
  softplus) -> 784 sigmoid through a weight-normalised layer (``nn.l2normalize``: Glorot
  uniform ``V``, trained ``g`` from 1, 1e-6 inside the norm). Batch norm as the official
  ``nn.batch_norm``: epsilon 1e-6, running averages with momentum 0.9 (which the official
  code computes but never uses: its G always runs on batch statistics, see `jaxgan.methods.ssl`).

Noise keys are passed at call time: ``rngs=nnx.Rngs(noise=key)``.
"""

from __future__ import annotations

from typing import Sequence

import jax
from flax import nnx

from jaxgan.nets.techniques import GaussianNoise, WeightNormDense

Array = jax.Array


class SSLMnistDiscriminator(nnx.Module):
    """(N, 28, 28, 1) or (N, 784) images in [0, 1] -> (N, K) class logits.

    The fake class's logit is fixed at 0 and not output (`jaxgan.losses.ssl_real_logit`).
    """

    def __init__(
        self,
        *,
        in_dim: int = 784,
        hidden: Sequence[int] = (1000, 500, 250, 250, 250),
        num_classes: int = 10,
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
        rngs: nnx.Rngs,
    ):
        sizes = (in_dim, *hidden)
        self.num_classes = num_classes
        self.num_features = sizes[-1]
        self.input_noise = GaussianNoise(input_noise)
        self.layers = nnx.List(WeightNormDense(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:]))
        self.noises = nnx.List(GaussianNoise(hidden_noise) for _ in hidden)
        self.out = WeightNormDense(sizes[-1], num_classes, trainable_scale=True, rngs=rngs)

    def features(self, x: Array, *, rngs: nnx.Rngs | None = None) -> Array:
        h = self.input_noise(x.reshape(x.shape[0], -1), rngs=rngs)
        for i, layer in enumerate(self.layers):
            if i:
                h = self.noises[i - 1](h, rngs=rngs)
            h = jax.nn.relu(layer(h))
        return h

    def head(self, f: Array, *, rngs: nnx.Rngs | None = None) -> Array:
        return self.out(self.noises[-1](f, rngs=rngs))

    def __call__(self, x: Array, *, rngs: nnx.Rngs | None = None) -> Array:
        return self.head(self.features(x, rngs=rngs), rngs=rngs)


class SSLMnistGenerator(nnx.Module):
    """(N, 100) noise -> (N, 28, 28, 1) images in [0, 1] (sigmoid output)."""

    def __init__(
        self,
        *,
        z_dim: int = 100,
        hidden: Sequence[int] = (500, 500),
        out_shape: Sequence[int] = (28, 28, 1),
        rngs: nnx.Rngs,
    ):
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape)
        sizes = (z_dim, *hidden)
        glorot = nnx.initializers.glorot_uniform()
        self.layers = nnx.List(
            nnx.Linear(a, b, use_bias=False, kernel_init=glorot, rngs=rngs)
            for a, b in zip(sizes, sizes[1:])
        )
        self.bns = nnx.List(
            nnx.BatchNorm(b, use_scale=False, epsilon=1e-6, momentum=0.9, rngs=rngs)
            for b in hidden
        )
        out_dim = 1
        for s in self.out_shape:
            out_dim *= s
        self.out = WeightNormDense(
            sizes[-1], out_dim, trainable_scale=True, v_init=glorot, eps=1e-6, rngs=rngs
        )

    def __call__(self, z: Array) -> Array:
        h = z
        for layer, bn in zip(self.layers, self.bns):
            h = jax.nn.softplus(bn(layer(h)))
        return jax.nn.sigmoid(self.out(h)).reshape(z.shape[0], *self.out_shape)
