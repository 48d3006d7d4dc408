"""Throughput of the input pipeline alone (no training step), in samples per second.

        python benchmarks/data_pipeline.py [--mnist-dir ../shared/data/mnist] [--seconds 3]

--mnist-dir defaults to $JAXGAN_DATA_DIR, else ../shared/data/mnist beside the repository.

Measures MNIST from IDX files at batch 64 and 128, and a folder of generated 178x218 JPEGs
(CelebA's size) decoded, cropped and resized to 64 px. For scale: the LSGAN MNIST training
step runs at about 4 steps/s x 64 = 256 samples/s on a 2-core CPU, so the pipeline must be
far faster than that not to be the bottleneck.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgan.data import Dataset, load_dataset


def samples_per_second(ds: Dataset, batch_size: int, seconds: float, threads: int) -> float:
    it = ds.batches(batch_size, seed=0, num_threads=threads)
    next(it)  # Thread start-up and first reads are not the steady state.
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        steps += 1
    return steps * batch_size / (time.perf_counter() - start)


def make_folder(root: str, n: int) -> None:
    rng = np.random.default_rng(0)
    # Smooth random images compress like photos; pure noise would make JPEG decoding unrealistic.
    base = rng.integers(0, 256, (n, 28, 23, 3), np.uint8)
    for i in range(n):
        Image.fromarray(base[i]).resize((178, 218), Image.Resampling.BICUBIC).save(
            f"{root}/{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist-dir", default=os.environ.get(
        "JAXGAN_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folder-images", type=int, default=512)
    args = parser.parse_args()

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the partial-split warning; the description says it
        mnist = load_dataset("mnist", data_dir=args.mnist_dir)
    for batch_size in (64, 128):
        rows.append((mnist.description.split(":")[0], batch_size,
                     samples_per_second(mnist, batch_size, args.seconds, args.threads)))
    with tempfile.TemporaryDirectory() as root:
        make_folder(root, args.folder_images)
        folder = load_dataset(f"folder:{root}", resolution=64)
        rows.append((f"folder, {args.folder_images} JPEGs 178x218 -> 64x64", 64,
                     samples_per_second(folder, 64, args.seconds, args.threads)))
    rows.append(("ring8 (JAX sampling)", 512,
                 samples_per_second(load_dataset("ring8"), 512, args.seconds, args.threads)))

    print(f"{'dataset':45s} {'batch':>5s} {'samples/s':>10s} {'/ 256':>8s}")
    for name, batch_size, rate in rows:
        print(f"{name:45s} {batch_size:5d} {rate:10,.0f} {rate / 256:7,.0f}x")


if __name__ == "__main__":
    main()
