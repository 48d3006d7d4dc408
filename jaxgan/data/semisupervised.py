"""A semi-supervised split of a labelled dataset: a few labelled examples, balanced over the
classes, the unlabelled rest, and their batch streams, as the official Improved-GAN code
(Salimans et al. 2016, Sec. 5; openai/improved-gan ``train_mnist_feature_matching.py``)
draws them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from jaxgan.data import Dataset, load_dataset
from jaxgan.data.pipeline import shard_rows


def select_labelled(labels: np.ndarray, n: int, num_classes: int, seed: int) -> np.ndarray:
    """Indices of ``n`` examples, ``n / num_classes`` of each class, chosen by ``seed``.

    As the official code: a seeded permutation of the training set, then the first
    ``n / K`` examples of each class in that order. Returned in class order.
    """
    if n % num_classes:
        raise ValueError(f"{n} labels cannot be balanced over {num_classes} classes")
    per_class = n // num_classes
    order = np.random.default_rng(seed).permutation(len(labels))
    picked = []
    for k in range(num_classes):
        of_k = order[labels[order] == k][:per_class]
        if len(of_k) < per_class:
            raise ValueError(f"class {k} has only {len(of_k)} examples, {per_class} needed")
        picked.append(of_k)
    return np.concatenate(picked)


class SubsetSource:
    """The examples ``indices`` of a source (the unlabelled part of a training set)."""

    def __init__(self, source, indices: np.ndarray):
        self.source = source
        self.indices = np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source[int(self.indices[index])]


def labelled_batches(n: int, batch_size: int, *, seed: int, start_step: int = 0
                     ) -> Iterator[np.ndarray]:
    """Batches of indices into a labelled set of ``n``: an endless sequence of its
    permutations, cut into batches (the official tiling, which for ``n < batch_size`` repeats
    each example within a batch). Batch ``s`` is a function of ``(seed, s)`` only, so a
    resumed run continues the same stream."""
    cache: dict[int, np.ndarray] = {}

    def perm(k: int) -> np.ndarray:
        if k not in cache:
            if len(cache) > 4:
                cache.clear()
            cache[k] = np.random.default_rng([seed, k]).permutation(n)
        return cache[k]

    step = start_step
    while True:
        pos = np.arange(step * batch_size, (step + 1) * batch_size)
        yield np.array([perm(int(p // n))[int(p % n)] for p in pos], np.int64)
        step += 1


@dataclasses.dataclass(frozen=True)
class SSLData:
    """A semi-supervised split: the labelled arrays, the unlabelled `Dataset`, the test set."""

    x_lab: np.ndarray
    y_lab: np.ndarray
    labelled_indices: np.ndarray
    unlabelled: Any  # jaxgan.data.Dataset
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    description: str

    def batches(self, batch_size: int, *, seed: int, start_step: int = 0,
                shard: tuple[int, int] = (0, 1)) -> Iterator[dict]:
        """``{"x_lab", "y_lab", "x_unl", "x_unl2"}`` numpy batches from ``start_step`` on
        (``shard``: this reader's rows of each, as `jaxgan.data.Dataset.batches`)."""
        unl = self.unlabelled.batches(batch_size, seed=seed, start_step=start_step,
                                      num_threads=1, shard=shard)
        # A second, independent shuffle for G's feature matching (the official trainx_unl2).
        unl2 = self.unlabelled.batches(
            batch_size, seed=seed + 7919, start_step=start_step, num_threads=1, shard=shard
        )
        lab = labelled_batches(len(self.y_lab), batch_size, seed=seed, start_step=start_step)
        rows = shard_rows(batch_size, shard)
        for a, b, idx in zip(unl, unl2, lab):
            idx = idx[rows]
            yield {"x_lab": self.x_lab[idx], "y_lab": self.y_lab[idx], "x_unl": a["x"],
                   "x_unl2": b["x"]}


def load_ssl_data(dataset: str, data_dir: str | None, *, labels: int, seed: int,
                  unlabelled: str = "rest") -> SSLData:
    """The training split cut into ``labels`` labelled examples (balanced, chosen by
    ``seed``) and the unlabelled rest (``unlabelled="all"``: every training image), and the
    test split."""
    train = load_dataset(dataset, data_dir=data_dir, split="train")
    if train.num_classes is None or train.source is None:
        raise ValueError(f"{dataset} has no labelled images; use mnist or fashion_mnist")
    x_train, y_train = train.arrays()
    idx = select_labelled(y_train, labels, train.num_classes, seed)
    rest = np.setdiff1d(np.arange(len(y_train)), idx) if unlabelled == "rest" else (
        np.arange(len(y_train)))
    unlabelled_set = Dataset(
        name=f"{train.name}-unlabelled", example_shape=train.example_shape,
        num_examples=len(rest), num_classes=train.num_classes,
        description=f"{len(rest):,} unlabelled of {train.description}",
        source=SubsetSource(train.source, rest),
    )
    x_test, y_test = load_dataset(dataset, data_dir=data_dir, split="test").arrays()
    return SSLData(
        x_lab=x_train[idx], y_lab=y_train[idx], labelled_indices=idx, unlabelled=unlabelled_set,
        x_test=x_test, y_test=y_test, num_classes=train.num_classes,
        description=(f"{train.description}: {labels} labelled (seed {seed}), "
                     f"{len(rest):,} unlabelled; test {len(y_test):,}"),
    )
