"""Metrics of the evaluator's class predictions: classifier score, class entropy,
conditional accuracy.

References:
  Salimans et al., "Improved Techniques for Training GANs", https://arxiv.org/abs/1606.03498
  (Section 4, the Inception score).
"""

from __future__ import annotations

import numpy as np


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x log y with 0 log 0 = 0 (scipy.special.xlogy without scipy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, y, 1.0)), 0.0)


def classifier_score(probs) -> float:
    """exp(E_x KL(p(y|x) || p(y))), the Inception score formula over any classifier.

    ``p(y)`` is the mean of ``p(y|x)`` over the samples. Ranges from 1 (every sample gets the
    same prediction, or predictions are uniform) to K (confident predictions, every class
    equally often). One score over all samples; Salimans et al. also report the std over
    10 splits, which callers can get by calling this on ``np.array_split(probs, 10)``.

    Computed in float64 with ``0 log 0 = 0``, so one-hot rows are exact and finite.

    Args:
      probs: (N, K) rows of ``p(y|x)`` (softmax outputs).

    Returns:
      The score as a Python float.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"need probs (N, K), got shape {p.shape}")
    py = p.mean(axis=0, keepdims=True)
    # KL(p || py) = sum p log p - sum p log py; terms with p = 0 vanish, and p > 0 implies
    # py > 0, so no log 0 survives.
    kl = (_xlogy(p, p) - _xlogy(p, py)).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_entropy(probs_or_labels, num_classes: int) -> float:
    """Entropy (nats) of the distribution of predicted classes over the samples.

    ``log K`` when every class is generated equally often; 0 when one class only (mode
    collapse onto one digit). 2-D input (N, K) is taken as probabilities and reduced to
    argmax labels (hard counts, as a user counting digits would); 1-D input is labels.
    """
    a = np.asarray(probs_or_labels)
    labels = a.argmax(axis=-1) if a.ndim == 2 else a.astype(np.int64)
    if labels.ndim != 1:
        raise ValueError(f"need probs (N, K) or labels (N,), got shape {a.shape}")
    if labels.size == 0:
        raise ValueError("class_entropy of no samples")
    q = np.bincount(labels, minlength=num_classes)[:num_classes] / labels.size
    return float(-_xlogy(q, q).sum()) + 0.0  # + 0.0 turns a single class's -0.0 into 0.0


def conditional_accuracy(probs, labels) -> float:
    """Fraction of samples the evaluator classifies as the label they were generated for
    (a conditional generator's "does G(z, y) look like a y")."""
    p = np.asarray(probs)
    y = np.asarray(labels).reshape(-1)
    if p.shape[0] != y.shape[0]:
        raise ValueError(f"{p.shape[0]} predictions but {y.shape[0]} labels")
    return float((p.argmax(axis=-1) == y).mean())
