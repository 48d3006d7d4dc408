"""The semi-supervised split (`jaxgan.data.semisupervised`): the balanced labelled subset,
its endless batch stream, the unlabelled rest, and the split of a real dataset."""

import numpy as np
import pytest

from jaxgan import xla_cpu
from jaxgan.data import load_dataset
from jaxgan.data.semisupervised import (
    SSLData,
    SubsetSource,
    labelled_indices,
    load_ssl_data,
    select_labelled,
)
from jaxgan.data.sources import ArraySource


def test_select_labelled_is_balanced_and_seeded():
    y = np.random.default_rng(0).integers(0, 10, 3000)
    idx = select_labelled(y, 100, 10, seed=3)
    assert len(set(idx.tolist())) == 100
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), np.full(10, 10))
    np.testing.assert_array_equal(idx, select_labelled(y, 100, 10, seed=3))
    assert set(idx.tolist()) != set(select_labelled(y, 100, 10, seed=4).tolist())
    with pytest.raises(ValueError, match="balanced"):
        select_labelled(y, 25, 10, seed=0)
    np.testing.assert_array_equal(y[idx], np.repeat(np.arange(10), 10))  # in class order
    with pytest.raises(ValueError, match="class 9 has only"):
        select_labelled(np.repeat(np.arange(10), [5] * 9 + [2]), 30, 10, seed=0)


def test_labelled_indices_tile_permutations():
    first = [labelled_indices(20, 100, seed=1, step=s) for s in range(3)]
    for b in first:  # 20 examples in a batch of 100: each exactly 5 times
        np.testing.assert_array_equal(np.bincount(b, minlength=20), np.full(20, 5))
    # Permutation k of the stream is drawn from (seed, k): the tiling the official code uses.
    stream = np.concatenate([np.random.default_rng([1, k]).permutation(20) for k in range(15)])
    np.testing.assert_array_equal(np.concatenate(first), stream)
    a, b = (labelled_indices(200, 100, seed=0, step=s) for s in range(2))
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(200))  # one permutation
    # A batch straddling two permutations (30 examples, batches of 20).
    straddle = np.concatenate([labelled_indices(30, 20, seed=2, step=s) for s in range(3)])
    whole = np.concatenate([np.random.default_rng([2, k]).permutation(30) for k in range(2)])
    np.testing.assert_array_equal(straddle, whole)
    assert not np.array_equal(labelled_indices(20, 100, seed=2, step=0), first[0])


def test_subset_source_maps_positions_to_the_source():
    source = [{"image": np.full((2, 2, 1), i, np.uint8), "label": i % 3} for i in range(10)]
    subset = SubsetSource(source, np.array([7, 2, 9]))
    assert len(subset) == 3
    assert [subset[i]["label"] for i in range(3)] == [1, 2, 0]
    assert int(subset[np.int64(2)]["image"][0, 0, 0]) == 9
    with pytest.raises(IndexError):
        subset[3]
    # Its batched read agrees with the items, for a list source and for arrays in memory.
    images, labels = subset.read_batch(np.array([2, 0, 2]))
    np.testing.assert_array_equal(images[:, 0, 0, 0], [9, 7, 9])
    np.testing.assert_array_equal(labels, [0, 1, 0])
    arrays = ArraySource(np.stack([s["image"] for s in source]), np.arange(10) % 3)
    images, labels = SubsetSource(arrays, np.array([7, 2, 9])).read_batch(np.array([2, 0, 2]))
    np.testing.assert_array_equal(images[:, 0, 0, 0], [9, 7, 9])
    np.testing.assert_array_equal(labels, [0, 1, 0])


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    x, y = load_dataset("mnist", data_dir=str(mnist_dir)).arrays()
    return x, y


@pytest.fixture(scope="module")
def split(mnist_dir):
    return load_ssl_data("mnist", str(mnist_dir), labels=20, seed=3)


def test_load_ssl_data_splits_mnist(split, mnist, mnist_dir):
    x_train, y_train = mnist
    n = len(y_train)
    assert isinstance(split, SSLData) and split.num_classes == 10
    np.testing.assert_array_equal(split.labelled_indices, select_labelled(y_train, 20, 10, 3))
    np.testing.assert_array_equal(split.x_lab, x_train[split.labelled_indices])
    np.testing.assert_array_equal(split.y_lab, np.repeat(np.arange(10), 2))
    assert split.x_lab.shape == (20, 28, 28, 1)
    # The unlabelled set is the rest of the training split, read through a SubsetSource.
    unl = split.unlabelled
    assert unl.num_examples == n - 20 and unl.example_shape == (28, 28, 1)
    rest = unl.source.indices
    assert len(rest) == n - 20 and not set(rest.tolist()) & set(split.labelled_indices.tolist())
    assert sorted(rest.tolist() + split.labelled_indices.tolist()) == list(range(n))
    i = 123
    img = np.asarray(unl.source[i]["image"]).astype(np.float32) / np.float32(127.5) - 1
    np.testing.assert_array_equal(img, x_train[rest[i]])
    assert split.x_test.shape == (10_000, 28, 28, 1) and split.y_test.shape == (10_000,)
    assert "20 labelled (seed 3)" in split.description
    # unlabelled="all": every training image, the labelled ones included (the official set).
    everything = load_ssl_data("mnist", str(mnist_dir), labels=20, seed=3, unlabelled="all")
    assert everything.unlabelled.num_examples == n
    np.testing.assert_array_equal(everything.unlabelled.source.indices, np.arange(n))
    np.testing.assert_array_equal(everything.labelled_indices, split.labelled_indices)


def test_batches_pair_labels_with_images_and_resume(split):
    stream = split.batches(30, seed=0)
    first, second = next(stream), next(stream)
    assert set(first) == {"x_lab", "y_lab", "x_unl", "x_unl2"}
    assert first["x_lab"].shape == first["x_unl"].shape == first["x_unl2"].shape == (30, 28, 28, 1)
    # Each labelled row is one of the 20 labelled images, with its own label.
    flat = split.x_lab.reshape(20, -1)
    for x, y in zip(first["x_lab"].reshape(30, -1), first["y_lab"]):
        (match,) = np.flatnonzero((flat == x).all(axis=1))
        assert split.y_lab[match] == y
    np.testing.assert_array_equal(np.bincount(first["y_lab"], minlength=10) >= 1, True)
    # G's unlabelled batch is an independent shuffle of the same images.
    assert not np.array_equal(first["x_unl"], first["x_unl2"])
    resumed = next(split.batches(30, seed=0, start_step=1))
    for k in first:
        np.testing.assert_array_equal(resumed[k], second[k])
        # Built in Grain's threads where the step reads them in place, not copied in the loop.
        assert xla_cpu.is_host_aligned(first[k]), k
    # The labelled rows are those labelled_indices names for the step.
    idx = labelled_indices(20, 30, seed=0, step=1)
    np.testing.assert_array_equal(second["x_lab"], split.x_lab[idx])
    np.testing.assert_array_equal(second["y_lab"], split.y_lab[idx])
    # The unlabelled batches are the unlabelled Dataset's own, with the two seeds.
    np.testing.assert_array_equal(
        second["x_unl"], next(split.unlabelled.batches(30, seed=0, start_step=1))["x"])
    np.testing.assert_array_equal(
        second["x_unl2"], next(split.unlabelled.batches(30, seed=7919, start_step=1))["x"])


def test_two_processes_read_the_halves_of_each_batch(split):
    whole = split.batches(30, seed=0, start_step=2)
    halves = [split.batches(30, seed=0, start_step=2, shard=(i, 2)) for i in range(2)]
    for _ in range(2):
        batch, parts = next(whole), [next(h) for h in halves]
        for k in batch:
            np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), batch[k])


def test_a_dataset_without_labels_is_refused(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    with pytest.raises(ValueError, match="no labelled images"):
        load_ssl_data(f"folder:{tmp_path}", None, labels=10, seed=0)
