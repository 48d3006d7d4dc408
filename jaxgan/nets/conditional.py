"""Class conditioning (Mirza & Osindero 2014, arXiv:1411.1784) for any G and D, and the
user's MNIST cGAN MLP pair.

The label enters both networks through a learned embedding: G sees ``[z, embed(y)]``; D sees
the input with ``embed(y)`` concatenated (flat inputs) or broadcast as extra channels
(images, the usual way to condition a convolutional D). So conditioning wraps any
unconditional network built for the wider input, and the train step stays one step for every
objective: conditional networks take ``(z, y)`` / ``(x, y)`` instead of ``z`` / ``x``. Two
other ways for D to use the label wrap the unconditional D instead (``--cond-d``): the
projection discriminator and AC-GAN's auxiliary classifier.

The embedding starts as PyTorch's ``nn.Embedding`` does, N(0, 1), so the label enters on the
scale of z and of pixels; Flax's default (std 1/sqrt(embed_dim)) makes it a third of that, a
weak signal for D among 784 pixels.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan.nets.layers import GroupedDropout, flat_rows, torch_embed_init, torch_linear


class ConditionalGenerator(nnx.Module):
    """``G(z, y) = base([z, embed(y)])``; ``base`` is built for ``z_dim + embed_dim`` inputs."""

    def __init__(self, base: nnx.Module, *, num_classes: int, embed_dim: int, rngs: nnx.Rngs):
        if base.z_dim <= embed_dim:
            raise ValueError(f"base z_dim {base.z_dim} must exceed embed_dim {embed_dim}")
        self.base = base
        self.embed = nnx.Embed(
            num_classes, embed_dim, embedding_init=torch_embed_init, rngs=rngs
        )
        self.num_classes = num_classes
        self.z_dim = base.z_dim - embed_dim
        self.out_shape = base.out_shape

    def __call__(self, z: jax.Array, y: jax.Array, **kwargs) -> jax.Array:
        return self.base(jnp.concatenate([z, self.embed(y)], axis=-1), **kwargs)


class ConditionalDiscriminator(nnx.Module):
    """``D(x, y) = base(x with embed(y) attached)``.

    With ``as_channels`` (a convolutional ``base`` built for ``C + embed_dim`` channels) images
    ``(N, H, W, C)`` get the embedding as constant channels; otherwise the input is flattened
    and the embedding concatenated (``base`` built for ``prod(shape) + embed_dim`` inputs);
    a base that declares ``TAKES_PARTS`` gets the two as a tuple, its first layer a
    `jaxgan.nets.layers.PartsLinear`.
    """
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)

    def __init__(
        self,
        base: nnx.Module,
        *,
        num_classes: int,
        embed_dim: int,
        as_channels: bool,
        rngs: nnx.Rngs,
    ):
        self.base = base
        self.embed = nnx.Embed(
            num_classes, embed_dim, embedding_init=torch_embed_init, rngs=rngs
        )
        self.num_classes = num_classes
        self.as_channels = as_channels

    def _attach(self, x: jax.Array, y: jax.Array) -> jax.Array:
        e = self.embed(y)
        if self.as_channels:
            e = jnp.broadcast_to(e[:, None, None, :], (*x.shape[:3], e.shape[-1]))
            return jnp.concatenate([x, e], axis=-1)
        x = x.reshape(x.shape[0], -1)
        if getattr(type(self.base), "TAKES_PARTS", False):
            # The base's first layer multiplies each part by its own rows: the embedding's
            # gradient then costs no product over the image's columns (`PartsLinear`).
            return x, e
        return jnp.concatenate([x, e], axis=-1)

    def features(self, x: jax.Array, y: jax.Array, **kwargs) -> jax.Array:
        return self.base.features(self._attach(x, y), **kwargs)

    def head(self, f: jax.Array) -> jax.Array:
        return self.base.head(f)

    def __call__(self, x: jax.Array, y: jax.Array, **kwargs) -> jax.Array:
        return self.head(self.features(x, y, **kwargs))


class ProjectionDiscriminator(nnx.Module):
    """``D(x, y) = head(phi(x)) + embed(y) . phi(x)``: the projection discriminator.

    The label enters after D's features instead of beside its input: the paper derives this
    form from the log density ratio of the conditionals when ``p(y | x)`` is log-linear in
    ``phi(x)`` (Miyato & Koyama 2018, Eq. 3-5), and finds it conditions more strongly than
    concatenation. ``base`` is the unconditional D (built for the plain input); ``embed``
    has one ``num_features``-wide row per class, started as ``nnx.Embed``'s default.
    ``features(x, y)`` is the base's ``phi(x)``, so feature matching sees the same layer;
    minibatch discrimination, whose head has no label, does not compose with it.

    References:
      Miyato & Koyama, cGANs with Projection Discriminator, 2018,
      https://arxiv.org/abs/1802.05637
    """
    ROWWISE = True  # its own code mixes no examples

    def __init__(self, base: nnx.Module, *, num_classes: int, num_features: int,
                 rngs: nnx.Rngs):
        self.base = base
        self.embed = nnx.Embed(num_classes, num_features, rngs=rngs)
        self.num_classes = num_classes
        self.num_features = num_features

    def features(self, x: jax.Array, y: jax.Array, **kwargs) -> jax.Array:
        return self.base.features(x, **kwargs)

    def __call__(self, x: jax.Array, y: jax.Array, **kwargs) -> jax.Array:
        f = self.features(x, y, **kwargs)
        return self.base.head(f) + jnp.sum(self.embed(y) * f, axis=-1).astype(f.dtype)


class AuxiliaryClassifierDiscriminator(nnx.Module):
    """AC-GAN's D: ``D(x) = (head(phi(x)), classifier(phi(x)))``, a source logit and K class
    logits from the same features; the label is not an input.

    Odena et al. 2017 (Sec. 3): D learns to tell real from fake (``L_S``) and to classify
    both real and generated examples (``L_C``); G, given a label, learns to fool the first
    head and to be classified as its label by the second. The call keeps the conditional
    signature ``(x, y)`` of every conditional D (``y`` is ignored: the step takes the class
    loss with it, `jaxgan.losses.class_cross_entropy`) and returns both outputs;
    `jaxgan.state.split_networks` reads ``CLASSIFIES`` to tell the step. ``base`` is the
    unconditional D; the classifier is a linear layer on its ``num_features`` features
    (normalised too under spectral norm, as in StudioGAN's AC-GAN).

    References:
      Odena, Olah & Shlens, Conditional Image Synthesis with Auxiliary Classifier GANs,
      ICML 2017, https://arxiv.org/abs/1610.09585
    """
    ROWWISE = True  # its own code mixes no examples
    CLASSIFIES = True

    def __init__(self, base: nnx.Module, *, num_classes: int, num_features: int,
                 rngs: nnx.Rngs):
        self.base = base
        self.classifier = nnx.Linear(num_features, num_classes, rngs=rngs)
        self.num_classes = num_classes
        self.num_features = num_features

    def features(self, x: jax.Array, y: jax.Array | None = None, **kwargs) -> jax.Array:
        return self.base.features(x, **kwargs)

    def __call__(self, x: jax.Array, y: jax.Array | None = None,
                 **kwargs) -> tuple[jax.Array, jax.Array]:
        f = self.features(x, y, **kwargs)
        return self.base.head(f), self.classifier(f).astype(f.dtype)


class ImageMLPGenerator(nnx.Module):
    """The user's cGAN generator body: z -> 256 -> 512 -> 1024 -> H*W*C, LeakyReLU(0.2), tanh.

    Initialised as the user's listing, with PyTorch's ``nn.Linear`` defaults (Flax's LeCun
    normal has 3x the weight variance and zero biases; with it the user's run gave speckled,
    barely conditioned digits after 30 epochs).
    """

    def __init__(
        self,
        *,
        z_dim: int = 110,
        hidden: Sequence[int] = (256, 512, 1024),
        out_shape: Sequence[int] = (28, 28, 1),
        rngs: nnx.Rngs,
    ):
        self.z_dim = z_dim
        self.out_shape = tuple(out_shape)
        sizes = (z_dim, *hidden)
        self.layers = nnx.List(torch_linear(a, b, rngs) for a, b in zip(sizes, sizes[1:]))
        self.out = torch_linear(sizes[-1], math.prod(self.out_shape), rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        for layer in self.layers:
            h = jax.nn.leaky_relu(layer(h), 0.2)
        return jnp.tanh(self.out(h)).reshape(z.shape[0], *self.out_shape)


class ImageMLPDiscriminator(nnx.Module):
    """The user's cGAN discriminator body: in -> 1024 -> 512 -> 256 -> 1, LeakyReLU(0.2) and
    Dropout(0.3) after each hidden layer, a logit out (the listing's sigmoid is folded into
    the loss). Dropout keys are passed at call time (``rngs=``), derived from the step's key;
    a tuple of streams draws each equal block of rows its own masks (`GroupedDropout`), so
    the D update scores real and fake data in one call with the masks of two.
    """
    ROWWISE = True  # its own code mixes no examples (`jaxgan.functional.merges_row_groups`)
    # Its first layer takes the input in parts (`jaxgan.nets.layers.PartsLinear`).
    TAKES_PARTS = True

    def __init__(
        self,
        *,
        in_dim: int = 794,
        hidden: Sequence[int] = (1024, 512, 256),
        dropout: float = 0.3,
        rngs: nnx.Rngs,
    ):
        sizes = (in_dim, *hidden)
        self.layers = nnx.List(torch_linear(a, b, rngs) for a, b in zip(sizes, sizes[1:]))
        self.dropout = GroupedDropout(dropout)
        self.out = torch_linear(sizes[-1], 1, rngs)
        self.num_features = sizes[-1]

    def features(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        h = flat_rows(x)
        for layer in self.layers:
            h = self.dropout(jax.nn.leaky_relu(layer(h), 0.2), rngs=rngs)
        return h

    def head(self, f: jax.Array) -> jax.Array:
        return self.out(f)[:, 0]

    def __call__(self, x: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        return self.head(self.features(x, rngs=rngs))
