"""The Grain pipeline of finite datasets, and load_dataset's name handling."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import xla_cpu
from jaxgan.data import DATASETS, Dataset, DatasetError, load_dataset
from jaxgan.data.pipeline import scale_images
from jaxgan.data.sources import ArraySource, read_batch

N = 37  # Not a multiple of the batch sizes below: exercises drop_remainder.


def _toy(n=N) -> Dataset:
    images = (np.arange(n, dtype=np.uint8)[:, None, None, None] * 5
              + np.zeros((1, 3, 2, 1), np.uint8))
    return Dataset(name="toy", example_shape=(3, 2, 1), num_examples=n, num_classes=10,
                   description="toy", source=ArraySource(images, np.arange(n) % 10))


def _take(it, k):
    return list(itertools.islice(it, k))


def test_shapes_dtypes_and_values():
    ds = _toy()
    batch = next(ds.batches(8, seed=0))
    assert set(batch) == {"x", "y", "index"}
    assert batch["x"].shape == (8, 3, 2, 1) and batch["x"].dtype == np.float32
    assert batch["y"].shape == (8,) and batch["y"].dtype == np.int32
    assert batch["index"].shape == (8,) and batch["index"].dtype == np.int32
    # Each example's pixels are 5 * index, labels index % 10: x, y and index agree.
    np.testing.assert_allclose(batch["x"][:, 0, 0, 0], batch["index"] * 5 / 127.5 - 1, rtol=1e-6)
    np.testing.assert_array_equal(batch["y"], batch["index"] % 10)


def test_scale_images_is_the_float32_formula_on_a_64_byte_boundary():
    # Every uint8 value, from a strided view (numpy's own arrays land on 64-byte boundaries
    # about one time in four, so the alignment check alone could pass by chance).
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=0)[:, :, :5]
    x = scale_images(images)
    expected = images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    assert x.dtype == np.float32 and x.shape == images.shape
    np.testing.assert_array_equal(x.view(np.uint32), expected.view(np.uint32))
    assert xla_cpu.is_host_aligned(x)


def test_read_batch_gathers_in_memory_and_reads_other_sources_item_by_item():
    images = np.arange(5, dtype=np.uint8)[:, None, None, None] + np.zeros((1, 2, 2, 1), np.uint8)
    items = [{"image": images[i], "label": 7 - i} for i in range(5)]
    indices = np.array([3, 0, 3, 4])
    for source in (ArraySource(images, 7 - np.arange(5)), items):
        got_images, got_labels = read_batch(source, indices)
        np.testing.assert_array_equal(got_images, images[indices])
        np.testing.assert_array_equal(got_labels, 7 - indices)
        assert got_labels.dtype == np.int32


def test_batches_are_built_on_64_byte_boundaries():
    # The loop hands them to the step as they are (`jaxgan.xla_cpu.host_aligned`).
    for batch in _take(_toy().batches(8, seed=0), 4):
        for k, v in batch.items():
            assert xla_cpu.is_host_aligned(v), k


def test_scaling_endpoints_are_exact():
    images = np.array([0, 255], np.uint8).reshape(2, 1, 1, 1)
    ds = Dataset("e", (1, 1, 1), 2, None, "e", source=ArraySource(images, np.zeros(2)))
    x, _ = ds.arrays()
    assert x.ravel().tolist() == [-1.0, 1.0]


def test_every_index_once_per_epoch_and_epochs_reshuffle():
    ds = _toy()
    steps = ds.steps_per_epoch(8)
    assert steps == N // 8 == 4
    batches = _take(ds.batches(8, seed=0), 3 * steps)
    epochs = [np.concatenate([b["index"] for b in batches[e * steps:(e + 1) * steps]])
              for e in range(3)]
    for indices in epochs:
        assert len(indices) == steps * 8  # the remainder of each epoch is dropped
        assert len(set(indices.tolist())) == len(indices)  # no index twice in an epoch
        assert set(indices.tolist()) <= set(range(N))
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])


def test_same_seed_same_batches_other_seed_other_batches():
    ds = _toy()
    a = _take(ds.batches(8, seed=3), 6)
    b = _take(ds.batches(8, seed=3), 6)
    c = _take(ds.batches(8, seed=4), 6)
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert any(not np.array_equal(x["index"], z["index"]) for x, z in zip(a, c))


@settings(max_examples=8, deadline=None)
@given(start=st.integers(0, 25), batch_size=st.sampled_from([4, 8, 16]))
def test_resuming_at_start_step_equals_skipping(start, batch_size):
    ds = _toy()
    skipped = _take(ds.batches(batch_size, seed=7), start + 3)[start:]
    resumed = _take(ds.batches(batch_size, seed=7, start_step=start), 3)
    for x, y in zip(skipped, resumed):
        for k in ("x", "y", "index"):
            np.testing.assert_array_equal(x[k], y[k])
    # The pipeline is indexable by global step too.
    m = ds.map_dataset(batch_size, seed=7)
    np.testing.assert_array_equal(m[start]["index"], skipped[0]["index"])


@settings(max_examples=10, deadline=None)
@given(count=st.sampled_from([1, 2, 4]), start=st.integers(0, 12))
def test_processes_read_disjoint_rows_that_make_up_the_one_process_batch(count, start):
    """Process i of ``count`` reads rows i*B/count.. of every global batch: together they read
    what one process reads, so a run's data does not depend on its number of hosts."""
    ds, mix = _toy(), load_dataset("ring8")
    for data in (ds, mix):
        whole = _take(data.batches(8, seed=5, start_step=start), 3)
        parts = [_take(data.batches(8, seed=5, start_step=start, shard=(i, count)), 3)
                 for i in range(count)]
        for step, batch in enumerate(whole):
            for k in batch:
                assert all(len(p[step][k]) == 8 // count for p in parts)
                np.testing.assert_array_equal(
                    np.concatenate([p[step][k] for p in parts]), batch[k])


def test_a_batch_that_the_processes_cannot_share_evenly():
    with pytest.raises(DatasetError, match="batch of 8 cannot be split evenly over 3 processes"):
        next(_toy().batches(8, seed=0, shard=(0, 3)))


def test_arrays_in_index_order():
    x, y = _toy().arrays(batch_size=10)
    assert x.shape == (N, 3, 2, 1) and y.dtype == np.int32
    np.testing.assert_array_equal(y, np.arange(N) % 10)


def test_batch_larger_than_dataset():
    with pytest.raises(DatasetError, match="fewer than one batch"):
        next(_toy(5).batches(8, seed=0))


def test_unknown_name_lists_valid_names():
    with pytest.raises(DatasetError) as e:
        load_dataset("cifar11")
    for name in DATASETS:
        assert name in str(e.value)
    assert "folder:PATH" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_missing_folder_path(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DatasetError, match="not a directory"):
        load_dataset(str(tmp_path / "nope"))
