"""Trains (or loads) the MNIST evaluator, times the metric set on 10,000 images, prints the
reference anchors.

    python benchmarks/eval_speed.py [--data ../shared/data/mnist] [--cache-dir DIR]
                                    [--epochs N] [--n 10000]

The training split is whatever the IDX files hold (22,699 images for the partial MNIST
train split in ../shared/data/mnist); the test split is the official 10,000. --data defaults to
$JAXGAN_DATA_DIR, else ../shared/data/mnist beside the repository.
"""

from __future__ import annotations

import argparse
import gzip
import os
import pathlib
import time

import numpy as np

from jaxgan.metrics import (
    EvaluatorRecipe,
    evaluate_images,
    frechet_distance,
    get_evaluator,
    kid,
    precision_recall,
    reference_anchors,
)


def read_idx(path: pathlib.Path) -> np.ndarray:
    """A tiny IDX reader (the format of the MNIST files, gzipped or not)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:  # unsigned byte payload only
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim,
                         count=int(np.prod(shape))).reshape(shape)


def find(root: pathlib.Path, prefix: str) -> pathlib.Path:
    hits = sorted(root.glob(prefix + "*"))
    if not hits:
        raise FileNotFoundError(f"no {prefix}* in {root}")
    return hits[0]


def load_mnist(root: pathlib.Path):
    def images(p):
        return (read_idx(p).astype(np.float32) / 127.5 - 1.0)[..., None]

    x_train = images(find(root, "train-images"))
    y_train = read_idx(find(root, "train-labels")).astype(np.int32)[:len(x_train)]
    x_test = images(find(root, "t10k-images"))
    y_test = read_idx(find(root, "t10k-labels")).astype(np.int32)
    return x_train, y_train, x_test, y_test


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    beside = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    p.add_argument("--data", default=os.environ.get("JAXGAN_DATA_DIR", str(beside)))
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--epochs", type=int, default=EvaluatorRecipe.epochs)
    p.add_argument("--n", type=int, default=10000)
    args = p.parse_args()

    x_train, y_train, x_test, y_test = load_mnist(pathlib.Path(args.data))
    print(f"MNIST: train {x_train.shape} (partial if < 60,000), test {x_test.shape}")

    t0 = time.perf_counter()
    ev = get_evaluator("mnist", x_train, y_train, x_test, y_test, cache_dir=args.cache_dir,
                       epochs=args.epochs)
    t_get = time.perf_counter() - t0
    how = "loaded from cache" if ev.from_cache else f"trained in {ev.train_seconds:.1f} s"
    print(f"evaluator {how} ({ev.path}); get_evaluator took {t_get:.1f} s")
    print(f"test accuracy: {ev.test_accuracy:.4f}")

    n = args.n
    fake = x_test[:n]
    real = x_train[np.random.default_rng(0).choice(len(x_train), n, replace=False)]
    evaluate_images(ev, fake[:600], real[:600], fake_labels=y_test[:600])  # warm-up
    t0 = time.perf_counter()
    m = evaluate_images(ev, fake, real, fake_labels=y_test[:n])
    t_eval = time.perf_counter() - t0
    print(f"evaluate_images on {n:,} vs {n:,} images: {t_eval:.1f} s")
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in m.items()))

    t0 = time.perf_counter()
    fake_feats, _ = ev.features_and_probs(fake)
    real_feats, _ = ev.features_and_probs(real)
    times = {"features (2 x n images)": time.perf_counter() - t0}
    for label, fn in (("fid", frechet_distance), ("kid", kid),
                      ("precision/recall", precision_recall)):
        t0 = time.perf_counter()
        fn(fake_feats, real_feats)
        times[label] = time.perf_counter() - t0
    print("  breakdown: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()))

    t0 = time.perf_counter()
    anchors = reference_anchors(ev, x_train, x_test, n=n)
    print(f"reference anchors ({time.perf_counter() - t0:.1f} s):")
    for name, vals in anchors.items():
        print(f"  {name:6s}: " + ", ".join(f"{k}={v:.4g}" for k, v in vals.items()))


if __name__ == "__main__":
    main()
