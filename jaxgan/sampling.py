"""Drawing from a trained generator: samples, and latent interpolation strips."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import plots
from jaxgan.step import make_sampler, sample_z


def interpolation_strips(key: jax.Array, z_dim: int, strips: int, points: int, dist: str):
    """Latents walking in a straight line between random pairs: ``(strips * points, z_dim)``.

    Smoothly changing images along such a walk are the DCGAN paper's evidence that G has
    not memorised training images (Radford et al. 2015, Sec. 6.1).
    """
    k0, k1 = jax.random.split(key)
    z0 = sample_z(k0, (strips, 1, z_dim), dist)
    z1 = sample_z(k1, (strips, 1, z_dim), dist)
    t = jnp.linspace(0.0, 1.0, points)[None, :, None]
    return ((1 - t) * z0 + t * z1).reshape(strips * points, z_dim)


def sample_command(
    run_dir: str | Path,
    *,
    n: int,
    out: str | Path,
    seed: int = 0,
    interpolate: int | None = None,
    points: int = 10,
) -> Path:
    """What ``jaxgan sample`` does: a PNG grid (or scatter), or an ``.npz`` with key ``x``."""
    from jaxgan.train import load_run, save_samples

    cfg, nets, state = load_run(run_dir)
    key = jax.random.PRNGKey(seed)
    if interpolate:
        if len(nets.out_shape) != 3:
            raise ValueError("--interpolate draws image strips; this run generates 2-D points")
        z = interpolation_strips(key, nets.z_dim, interpolate, points, cfg.z_dist)
    else:
        if n < 1:
            raise ValueError(f"-n must be at least 1, got {n}")
        z = sample_z(key, (n, nets.z_dim), cfg.z_dist)
    x = np.asarray(make_sampler(nets)(state, z))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez_compressed(out, x=x)
    elif out.suffix.lower() == ".png":
        if interpolate:
            plots.save_image_grid(out, x, rows=interpolate, scale=2 if x.shape[1] <= 32 else 1)
        else:
            save_samples(out, x, cfg.dataset, title=f"{cfg.objective} on {cfg.dataset}")
    else:
        raise ValueError(f"--out must end in .png or .npz, got {out}")
    return out
