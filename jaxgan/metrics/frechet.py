"""Frechet distance between Gaussians fitted to features (FID, Heusel et al. 2017).

References:
  Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", https://arxiv.org/abs/1706.08500
  Dowson & Landau 1982, "The Frechet distance between multivariate normal distributions".
"""

from __future__ import annotations

import numpy as np


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), in float64."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need features (N >= 2, F), got shape {f.shape}")
    mu = f.mean(axis=0)
    c = f - mu
    sigma = c.T @ c / (f.shape[0] - 1)
    return mu, sigma


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix, via eigh."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    # Rounding makes the smallest eigenvalues of a rank-deficient covariance (N < F,
    # dead ReLU features) slightly negative; they are zero.
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def gaussian_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, S1) and N(mu2, S2).

        d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2})

    ``tr((S1 S2)^{1/2})`` is computed as ``sum_i sqrt(lambda_i)`` with ``lambda_i`` the
    eigenvalues of the symmetric PSD matrix ``S1^{1/2} S2 S1^{1/2}``, which is similar to
    ``S1 S2``. Unlike ``scipy.linalg.sqrtm(S1 @ S2)`` (a Schur decomposition of a
    non-symmetric matrix, which returns complex values and needs an ``eps * I`` retry on
    singular covariances), both steps are symmetric eigendecompositions: real, and stable
    for singular covariances. Everything is float64; the result is clipped at 0, since
    rounding can take a true 0 slightly below.

    Args:
      mu1, mu2: means (F,).
      sigma1, sigma2: covariances (F, F), symmetric PSD.

    Returns:
      The distance as a Python float (FID when the statistics are of evaluator features).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"shape mismatch: {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(lam, 0.0, None)).sum()
    diff = mu1 - mu2
    d = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean
    return float(max(d, 0.0))


def frechet_distance(feats_a, feats_b) -> float:
    """FID between two feature sets (N_a, F) and (N_b, F): Gaussians fitted, then
    ``gaussian_frechet``. Biased upwards for small N (Binkowski et al. 2018); compare
    values computed at the same N (10,000 by convention)."""
    return gaussian_frechet(*feature_stats(feats_a), *feature_stats(feats_b))
