"""Evaluating a run or a set of samples: the glue between runs, data and `jaxgan.metrics`.

Images are scored with the dataset's evaluator classifier (trained by jaxgan on the training
split and cached) against ``n`` training images, next to two anchors computed the same way:
real test images (the best a generator can expect) and uniform noise (the worst). 2-D mixture
samples are scored with PacGAN's mode metrics.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from jaxgan.configs import MIXTURES
from jaxgan.data import load_dataset, mixtures
from jaxgan.metrics import (
    evaluate_features,
    frechet_distance,
    get_evaluator,
    mode_metrics,
    reference_anchors,
)
from jaxgan.progress import bar as progress_bar

IMAGE_METRICS = ("fid", "kid_mean", "kid_std", "score", "precision", "recall", "class_entropy")
MODE_METRICS = ("modes_covered", "high_quality", "reverse_kl")


@functools.lru_cache(maxsize=2)  # a run evaluating every epoch loads its data once
def evaluator_for(dataset: str, data_dir: str | None, *, progress: bool = True):
    """The dataset's evaluator and its training / test arrays (trained once, then cached)."""
    train = load_dataset(dataset, data_dir=data_dir, split="train")
    test = load_dataset(dataset, data_dir=data_dir, split="test")
    if train.num_classes is None:
        raise ValueError(
            f"{dataset} has no labels, so jaxgan has no evaluator classifier for it; "
            "image metrics are available for mnist and fashion_mnist"
        )
    x_train, y_train = train.arrays()
    x_test, y_test = test.arrays()
    ev = get_evaluator(dataset, x_train, y_train, x_test, y_test, progress=progress)
    return ev, (x_train, y_train), (x_test, y_test)


def score_mixture(samples: np.ndarray, dataset: str) -> dict:
    out = mode_metrics(samples, mixtures.centres(dataset), mixtures.std(dataset))
    return {k: float(out[k]) for k in MODE_METRICS}


def score_images(
    samples: np.ndarray,
    dataset: str,
    data_dir: str | None,
    *,
    labels: np.ndarray | None = None,
    anchors: bool = True,
    seed: int = 0,
    per_class: bool = True,
    progress: bool = True,
) -> dict:
    """FID, KID, score, precision / recall; given the labels a conditional generator was asked
    for, also the conditional accuracy and (``per_class``) the scores of each class (see
    `per_class_scores`)."""
    ev, (x_train, y_train), (x_test, y_test) = evaluator_for(dataset, data_dir, progress=progress)
    stages = 1 + (labels is not None and per_class) + anchors
    with progress_bar(total=stages, desc=f"scoring {len(samples):,} samples",
                      enabled=progress, leave=False) as bar:
        rng = np.random.default_rng(seed)
        real = x_train[rng.choice(len(x_train), min(len(samples), len(x_train)), replace=False)]
        # The samples' features serve the overall and the per-class scores: computed once.
        feats, probs = ev.features_and_probs(samples)
        real_feats, _ = ev.features_and_probs(real)
        metrics = evaluate_features(feats, probs, real_feats, fake_labels=labels)
        out = {"samples": {k: float(v) for k, v in metrics.items()}}
        out["evaluator_test_accuracy"] = float(ev.test_accuracy)
        bar.update(1)
        if labels is not None and per_class:
            out["per_class"] = per_class_scores(ev, feats, probs, labels, (x_train, y_train),
                                                (x_test, y_test))
            bar.update(1)
        if anchors:  # real test data and noise, scored the same way
            for name, values in reference_anchors(ev, x_train, x_test, n=len(samples),
                                                  seed=seed).items():
                out[name] = {k: float(v) for k, v in values.items()}
            bar.update(1)
    return out


def per_class_scores(ev, feats, probs, labels, train, test) -> dict:
    """Each class of a conditional generator scored on its own: the evaluator's accuracy on
    the samples asked for class k, and the FID of those samples against the training images
    of class k, beside the FID of the test images of class k against the same training
    images (the anchor: per-class FIDs use ~1,000 images, so they are biased upwards and
    read only against it).

    Args:
      ev: the evaluator; ``feats, probs``: its outputs on the samples
        (``ev.features_and_probs``); labels: the class each sample was asked for;
        train, test: ``(images, labels)`` of the real splits.

    Returns ``{"accuracy": [K], "fid": [K], "real_fid": [K], "n": [K]}``, lists indexed by
    class.
    """
    labels = np.asarray(labels)
    (x_train, y_train), (x_test, y_test) = train, test
    out = {"accuracy": [], "fid": [], "real_fid": [], "n": []}
    for k in range(ev.num_classes):
        mine = labels == k
        real_k, _ = ev.features_and_probs(x_train[y_train == k])
        test_k, _ = ev.features_and_probs(x_test[y_test == k])
        n = int(mine.sum())
        out["n"].append(n)
        out["accuracy"].append(float((probs[mine].argmax(-1) == k).mean()) if n else float("nan"))
        # FID needs more samples than a handful to have a covariance at all.
        out["fid"].append(frechet_distance(feats[mine], real_k) if n > 1 else float("nan"))
        out["real_fid"].append(frechet_distance(test_k, real_k))
    return out


def format_table(result: dict) -> str:
    """A plain-text table: one row per set (samples, and the anchors when present)."""
    rows = [k for k in ("samples", "real", "noise") if k in result]
    keys = [k for k in (*MODE_METRICS, *IMAGE_METRICS, "conditional_accuracy") if k in result["samples"]]
    names = {"samples": "samples", "real": "anchor: real test", "noise": "anchor: noise"}
    lines = ["| set | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for r in rows:
        lines.append(f"| {names[r]} | " + " | ".join(f"{result[r].get(k, float('nan')):.4g}" for k in keys) + " |")
    if "per_class" in result:
        pc = result["per_class"]
        lines += ["", "| class | n | accuracy | FID | FID of real test images |",
                  "|---|---|---|---|---|"]
        for k in range(len(pc["n"])):
            lines.append(f"| {k} | {pc['n'][k]} | {pc['accuracy'][k]:.4f} | {pc['fid'][k]:.4g} "
                         f"| {pc['real_fid'][k]:.4g} |")
    return "\n".join(lines)


def evaluate_samples(path: str | Path, dataset: str, *, data_dir: str | None = None, seed: int = 0,
                     progress: bool = True) -> dict:
    """Scores an ``.npz`` of samples from anywhere (key ``x``; ``y`` for conditional ones).

    Raises ValueError, saying what to fix, for anything but an ``.npz`` whose ``x`` holds
    finite numbers of the right shape: ``(N, 2)`` points for a mixture, ``(N, H, W, C)``
    images in [-1, 1] otherwise.
    """
    save_as = "save samples with np.savez(path, x=samples)"
    if Path(path).suffix.lower() != ".npz":
        raise ValueError(f"{path}: expected an .npz file ({save_as})")
    with np.load(path) as f:
        if "x" not in f:
            raise ValueError(f"{path} has no array 'x' (found: {', '.join(f.files)}); {save_as}")
        x, y = f["x"], (f["y"] if "y" in f else None)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{path}: x must hold numbers, found dtype {x.dtype}")
    x = x.astype(np.float32)
    if not len(x):
        raise ValueError(f"{path}: x holds no samples (shape {x.shape})")
    want = "(N, 2) points" if dataset in MIXTURES else "(N, height, width, channels) images"
    if (dataset in MIXTURES and (x.ndim != 2 or x.shape[1] != 2)) or (
            dataset not in MIXTURES and x.ndim != 4):
        raise ValueError(f"{path}: x has shape {x.shape}; {dataset} samples are {want}")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: x holds {int((~np.isfinite(x)).sum())} NaN or infinite "
                         "values")
    if dataset in MIXTURES:
        return {"samples": score_mixture(x, dataset), "n": len(x)}
    if x.min() < -1.001 or x.max() > 1.001:
        raise ValueError(f"{path}: images must be scaled to [-1, 1], found [{x.min():.3g}, {x.max():.3g}]")
    result = score_images(x, dataset, data_dir, labels=y, seed=seed, progress=progress)
    result["n"] = len(x)
    return result
