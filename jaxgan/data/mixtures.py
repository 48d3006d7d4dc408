"""The 2-D mixtures of Gaussians used to measure mode collapse (ring-8, grid-25).

ring8: 8 Gaussians with centres evenly spaced on a circle of radius 1, std 0.01; grid25: 25
Gaussians with centres {-4, -2, 0, 2, 4}^2, std 0.05. These are PacGAN's and LSGAN's released
settings; Unrolled GAN's paper uses radius 2, std 0.02 (``centres("ring8", radius=2.0)``,
``std=0.02``). Modes are equally likely.

References:
    Lin et al., PacGAN, https://arxiv.org/abs/1712.04086 (Section 5.1).
    Metz et al., Unrolled GANs, https://arxiv.org/abs/1611.02163 (Section 3.1).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.data.errors import DatasetError

# name -> (kind, number of modes, default radius, default std). For the grid, "radius" is
# the largest coordinate of a centre (4 -> {-4, -2, 0, 2, 4}).
MIXTURES = {
    "ring8": ("ring", 8, 1.0, 0.01),
    "grid25": ("grid", 25, 4.0, 0.05),
}


def _spec(name: str):
    if name not in MIXTURES:
        raise DatasetError(f"Unknown mixture {name!r}; known: {', '.join(MIXTURES)}")
    return MIXTURES[name]


def ring_centres(num_modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """``num_modes`` points evenly on a circle, float32 ``(num_modes, 2)``, the first at (r, 0)."""
    # arange(n) / n, not linspace(0, 2 pi, n): linspace includes 2 pi, which repeats the first
    # centre and leaves n - 1 distinct modes (the slip in the released notebooks).
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)).astype(np.float32)


def grid_centres(side: int = 5, radius: float = 4.0) -> np.ndarray:
    """A ``side`` x ``side`` grid spanning [-radius, radius]^2, float32 ``(side**2, 2)``.

    Row-major: mode ``k`` is at ``(coords[k // side], coords[k % side])``.
    """
    coords = np.linspace(-radius, radius, side)
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1).astype(np.float32)


def centres(name: str, *, radius: float | None = None) -> np.ndarray:
    """The mode centres of mixture ``name``, float32 ``(K, 2)``.

    Args:
        name: "ring8" or "grid25".
        radius: the ring's radius or the grid's largest coordinate; default the paper's (1, 4).
    """
    kind, k, default_radius, _ = _spec(name)
    r = default_radius if radius is None else float(radius)
    if kind == "ring":
        return ring_centres(k, r)
    return grid_centres(int(round(k ** 0.5)), r)


def std(name: str) -> float:
    """The default standard deviation of each mode of mixture ``name``."""
    return _spec(name)[3]


@functools.partial(jax.jit, static_argnums=1)
def sample_mixture(key: jax.Array, n: int, centres: jax.Array, std: float | jax.Array
                   ) -> tuple[jax.Array, jax.Array]:
    """``n`` samples of an equal-weight isotropic Gaussian mixture.

    Args:
        key: a PRNG key.
        n: number of samples (static).
        centres: float ``(K, 2)`` mode centres.
        std: the standard deviation of every mode.

    Returns:
        ``x`` float32 ``(n, 2)`` and ``y`` int32 ``(n,)``, the mode each sample was drawn from.
    """
    centres = jnp.asarray(centres, jnp.float32)
    key_mode, key_noise = jax.random.split(key)
    y = jax.random.randint(key_mode, (n,), 0, centres.shape[0], dtype=jnp.int32)
    x = centres[y] + std * jax.random.normal(key_noise, (n, centres.shape[1]), jnp.float32)
    return x, y
