"""Small synthetic images for tests that need image-like data without a dataset, and the
checks every trained image run passes."""

import numpy as np
import pytest
from PIL import Image

from jaxgan import runs


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 28x28 images in [-1, 1]: a bright Gaussian blob each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    c = rng.uniform(8, 20, (n, 2, 1, 1))
    s = rng.uniform(2, 5, (n, 1, 1))
    x = np.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / (2 * s**2))
    return (2 * x - 1).astype(np.float32)[..., None]


def sampled_digits(out, loaded, tmp_path) -> np.ndarray:
    """`jaxgan.runs.sample` on a trained 28x28 run, from its folder and from the loaded run:
    a PNG grid, 16 samples in an .npz, latent walks; an unconditional run refuses labels.
    Returns the 16 samples."""
    png, npz = runs.sample(out, n=16, out=tmp_path / "s.png"), tmp_path / "s.npz"
    assert np.asarray(Image.open(png)).std() > 0
    runs.sample(loaded, n=16, out=npz)
    x = np.load(npz)["x"]
    assert x.shape == (16, 28, 28, 1) and np.abs(x).max() <= 1 and x.std() > 0
    walk = runs.sample(loaded, n=16, out=tmp_path / "w.npz", interpolate=2, points=3)
    assert np.load(walk)["x"].shape == (6, 28, 28, 1)
    assert runs.sample(loaded, n=16, out=tmp_path / "w.png", interpolate=2,
                       points=3).stat().st_size > 0
    with pytest.raises(ValueError, match="label"):
        runs.sample(loaded, n=4, out=tmp_path / "l.png", label=3)
    return x
