"""Mode-collapse metrics of a 2-D Gaussian mixture (ring-8, grid-25), PacGAN's protocol.

References:
  Lin, Khetan, Fanti & Oh, "PacGAN: The power of two samples in generative adversarial
  networks", https://arxiv.org/abs/1712.04086 (Section 5.1, Table 1); protocol from
  Srivastava et al., "VEEGAN", https://arxiv.org/abs/1705.07761.
"""

from __future__ import annotations

import numpy as np


def mode_metrics(samples, centres, std, *, num_std: float = 3.0,
                 min_count: int = 1) -> dict:
    """Modes covered, fraction of high-quality samples, reverse KL of the mode histogram.

    PacGAN's protocol (its Table 1 uses 2,500 samples):

    - a sample is *high quality* if it lies within ``num_std`` (3) standard deviations of
      its nearest centre, ``||x - c|| <= 3 std``;
    - a mode is *covered* if it receives at least ``min_count`` (1) high-quality samples;
    - ``reverse_kl = KL(q || u) = sum_k q_k log(K q_k)``, with ``q`` the histogram of the
      high-quality samples over their nearest modes (normalised) and ``u`` uniform. The
      sample histogram comes first, so a mode with no samples contributes ``0 log 0 = 0``:
      the value stays finite (``log K`` at most, when every sample is on one mode) and
      missing modes are felt only through the mass piling up on the others. When no
      sample is high quality, ``q`` is undefined and ``reverse_kl`` is ``nan``.

    Args:
      samples: (N, 2) generated points (any dimension D works).
      centres: (K, 2) mixture centres.
      std: the mixture components' (isotropic) standard deviation.
      num_std: the quality radius in units of ``std``.
      min_count: high-quality samples a mode needs to count as covered.

    Returns:
      ``dict(modes_covered=int, high_quality=float, reverse_kl=float, counts=ndarray (K,))``.
    """
    x = np.asarray(samples, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"need samples (N, D) and centres (K, D), got {x.shape}, {c.shape}")
    num_modes = c.shape[0]
    d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)  # (N, K); K <= 25 here
    nearest = d2.argmin(axis=1)
    hq = np.sqrt(d2[np.arange(x.shape[0]), nearest]) <= num_std * std
    counts = np.bincount(nearest[hq], minlength=num_modes)
    total = counts.sum()
    if total > 0:
        q = counts / total
        nz = q > 0
        reverse_kl = float((q[nz] * np.log(q[nz] * num_modes)).sum())
    else:
        reverse_kl = float("nan")
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "high_quality": float(hq.mean()) if x.shape[0] else 0.0,
        "reverse_kl": reverse_kl,
        "counts": counts,
    }
