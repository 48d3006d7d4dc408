"""Latent noise: the distributions G draws ``z`` from, fixed noise for figures, latent walks.

Every latent a run draws comes from here, so a method's "noise" means one thing: DCGAN's
uniform on [-1, 1], the Gaussian of most GANs, and the K+1 GAN's official ``U(0, 1)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

DISTRIBUTIONS = ("normal", "uniform", "unit_uniform")
FIGURE_SEED_OFFSET = 1_000_003  # figure noise: seed + this, apart from the training stream


def sample_z(key: Array, shape: tuple[int, ...], dist: str = "normal") -> Array:
    """Latent noise of ``shape``.

    ``normal``: N(0, I). ``uniform``: U(-1, 1), DCGAN's (Radford et al. 2015, Fig. 1).
    ``unit_uniform``: U(0, 1), the Improved-GAN official MNIST generator's.
    """
    if dist == "normal":
        return jax.random.normal(key, shape)
    if dist == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    if dist == "unit_uniform":
        return jax.random.uniform(key, shape)
    raise ValueError(f"unknown latent distribution {dist!r}; valid: {', '.join(DISTRIBUTIONS)}")


def class_rows(num_classes: int, n: int) -> np.ndarray:
    """Labels ``0 0 .. 1 1 ..``: ``ceil(n / K)`` of each class in order, one figure row each."""
    return np.repeat(np.arange(num_classes), -(-n // num_classes))[:n]


def figure_noise(seed: int, n: int, z_dim: int, dist: str) -> Array:
    """The noise every figure of a run is drawn from, so its figures compare over time."""
    return sample_z(jax.random.PRNGKey(seed + FIGURE_SEED_OFFSET), (n, z_dim), dist)


def interpolation_strips(key: Array, z_dim: int, strips: int, points: int, dist: str) -> Array:
    """Latents walking in a straight line between random pairs: ``(strips * points, z_dim)``.

    Smoothly changing images along such a walk are the DCGAN paper's evidence that G has
    not memorised training images (Radford et al. 2015, Sec. 6.1).
    """
    k0, k1 = jax.random.split(key)
    z0 = sample_z(k0, (strips, 1, z_dim), dist)
    z1 = sample_z(k1, (strips, 1, z_dim), dist)
    t = jnp.linspace(0.0, 1.0, points)[None, :, None]
    return ((1 - t) * z0 + t * z1).reshape(strips * points, z_dim)
