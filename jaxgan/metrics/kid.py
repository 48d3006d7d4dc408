"""Kernel Inception Distance (Binkowski et al. 2018), on evaluator features.

References:
  Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs",
  https://arxiv.org/abs/1801.01401 (Section 5, "KID").
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3, the cubic kernel of KID. a (n, d), b (m, d) -> (n, m)."""
    d = a.shape[1]
    return (a @ b.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate with the cubic kernel (Gretton et al. 2012, Lemma 6).

        sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (n(n-1))
        - 2 sum_{i,j} k(x_i,y_j) / (mn)

    Its expectation is the population MMD^2, so it is 0 on average (and can be negative)
    when x and y come from one distribution.
    """
    m, n = x.shape[0], y.shape[0]
    kxx = polynomial_kernel(x, x)
    kyy = polynomial_kernel(y, y)
    kxy = polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kid(feats_a, feats_b, *, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """KID: the unbiased MMD^2 averaged over random subsets, and its std over them.

    Each of ``num_subsets`` rounds draws ``subset_size`` rows of each set without
    replacement (``min(subset_size, N_a, N_b)`` when a set is smaller), as in the reference
    implementation. Unlike FID the estimate is unbiased, so values at different N compare.

    Computed in float64: the estimate is a small difference of three large kernel means.

    Args:
      feats_a, feats_b: features (N_a, F), (N_b, F).
      num_subsets, subset_size: the subsampling (defaults of Binkowski et al.'s code).
      seed: seeds the subset draws.

    Returns:
      (mean, std) over subsets, as Python floats.
    """
    a = np.asarray(feats_a, dtype=np.float64)
    b = np.asarray(feats_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need features (N, F) of one F, got {a.shape} and {b.shape}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.default_rng(seed)
    vals = np.empty(num_subsets)
    for i in range(num_subsets):
        xa = a[rng.choice(a.shape[0], m, replace=False)]
        xb = b[rng.choice(b.shape[0], m, replace=False)]
        vals[i] = mmd2_unbiased(xa, xb)
    return float(vals.mean()), float(vals.std())
