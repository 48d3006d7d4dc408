"""Drawing from a trained generator: samples, and latent interpolation strips."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import plots
from jaxgan.step import make_sampler, sample_z


def generate(
    nets, state, n: int, *, seed: int, z_dist: str, labels=None, chunk: int = 1000
) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples (and their labels) in chunks, G in inference mode.

    A conditional model without given ``labels`` gets every class equally often
    (``0, 1, .., K-1, 0, 1, ..``); ``labels`` may be one int or ``n`` ints.
    """
    z = sample_z(jax.random.PRNGKey(seed), (n, nets.z_dim), z_dist)
    if nets.conditional:
        labels = np.arange(n) % nets.num_classes if labels is None else labels
        labels = np.broadcast_to(np.asarray(labels), (n,))
    elif labels is not None:
        raise ValueError("--label is for conditional runs; this run is unconditional")
    sample = make_sampler(nets)
    parts = [
        np.asarray(sample(state, z[i : i + chunk], None if labels is None else labels[i : i + chunk]))
        for i in range(0, n, chunk)
    ]
    return np.concatenate(parts), labels


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
    label: int | None = None,
) -> Path:
    """What ``jaxgan sample`` does: a PNG grid (or scatter), or an ``.npz`` with key ``x``
    (and ``y``, the labels, for a conditional run)."""
    from jaxgan import glo
    from jaxgan.train import load_run, save_samples

    if glo.is_glo_run(run_dir):
        return _glo_sample(run_dir, n=n, out=out, seed=seed, interpolate=interpolate, points=points)
    cfg, nets, state = load_run(run_dir)
    rows = None
    if interpolate:
        if len(nets.out_shape) != 3:
            raise ValueError("--interpolate draws image strips; this run generates 2-D points")
        z = interpolation_strips(jax.random.PRNGKey(seed), nets.z_dim, interpolate, points, cfg.z_dist)
        y = None
        if nets.conditional:  # each strip keeps one class: strip i shows class i mod K
            y = np.repeat(np.arange(interpolate) % nets.num_classes, points)
            if label is not None:
                y = np.full(len(z), label)
        x = np.asarray(make_sampler(nets)(state, z, y))
        rows = interpolate
    else:
        if n < 1:
            raise ValueError(f"-n must be at least 1, got {n}")
        if nets.conditional and label is None:
            # Class rows: n // K samples of each class, in order.
            y = np.repeat(np.arange(nets.num_classes), -(-n // nets.num_classes))[:n]
            rows = nets.num_classes if len(nets.out_shape) == 3 else None
        else:
            y = label
        x, y = generate(nets, state, n, seed=seed, z_dist=cfg.z_dist, labels=y)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez_compressed(out, **({"x": x} if y is None else {"x": x, "y": np.asarray(y)}))
    elif out.suffix.lower() == ".png":
        save_samples(out, x, cfg.dataset, title=f"{cfg.objective} on {cfg.dataset}", rows=rows)
    else:
        raise ValueError(f"--out must end in .png or .npz, got {out}")
    return out


def _glo_sample(run_dir, *, n: int, out, seed: int, interpolate: int | None, points: int) -> Path:
    """``jaxgan sample`` on a GLO run: the full-covariance Gaussian of its latents."""
    from jaxgan import glo

    run, key = glo.load_run(run_dir), jax.random.PRNGKey(seed)
    if interpolate:
        x, rows = glo.interpolation_strips(run, key, interpolate, points), interpolate
    else:
        if n < 1:
            raise ValueError(f"-n must be at least 1, got {n}")
        x, rows = glo.sample(run, key, n), None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        np.savez_compressed(out, x=np.asarray(x))
    elif out.suffix.lower() == ".png":
        plots.save_image_grid(out, np.asarray(x), rows=rows, scale=2 if x.shape[1] <= 32 else 1)
    else:
        raise ValueError(f"--out must end in .png or .npz, got {out}")
    return out
