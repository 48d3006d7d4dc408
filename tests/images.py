"""Small synthetic images for tests that need image-like data without a dataset."""

import numpy as np


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 28x28 images in [-1, 1]: a bright Gaussian blob each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    c = rng.uniform(8, 20, (n, 2, 1, 1))
    s = rng.uniform(2, 5, (n, 1, 1))
    x = np.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / (2 * s**2))
    return (2 * x - 1).astype(np.float32)[..., None]
