"""IDX reading and (Fashion-)MNIST from IDX files."""

import gzip
import os
import warnings

import numpy as np
import pytest

from jaxgan.data import DatasetError, load_dataset
from jaxgan.data import idx


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path, array, *, gz, code=0x08):
    data = _idx_bytes(array, code)
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)
    return str(path)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    path = _write(tmp_path / "x-idx3-ubyte", images, gz=gz)
    out = idx.read_idx(path)
    np.testing.assert_array_equal(out, images)
    assert out.dtype == np.uint8
    assert idx.read_idx_header(path) == (np.dtype(np.uint8), (3, 4, 5))


def test_read_idx_big_endian_int32(tmp_path):
    values = np.array([1, -2, 70000], np.int32)
    path = _write(tmp_path / "v.idx", values, gz=False, code=0x0C)
    out = idx.read_idx(path)
    np.testing.assert_array_equal(out, values)
    assert out.dtype.isnative


def test_read_idx_sniffs_gzip_whatever_the_name(tmp_path):
    labels = np.array([3, 1, 4], np.uint8)
    path = _write(tmp_path / "labels-idx1-ubyte", labels, gz=True)  # gzip without ".gz"
    np.testing.assert_array_equal(idx.read_idx(path), labels)


def test_wrong_magic_is_a_clear_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DatasetError, match="not an IDX file.*magic"):
        idx.read_idx(str(path))


def test_truncated_file_is_a_clear_error(tmp_path):
    data = _idx_bytes(np.zeros((10, 28, 28), np.uint8))[:-100]
    path = tmp_path / "t.idx"
    path.write_bytes(data)
    with pytest.raises(DatasetError, match="truncated"):
        idx.read_idx(str(path))


def _write_split(d, n, *, prefix="train", n_labels=None, gz=True):
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, (n_labels or n,), dtype=np.uint8)
    ext = ".gz" if gz else ""
    _write(d / f"{prefix}-images-idx3-ubyte{ext}", images, gz=gz)
    _write(d / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz=gz)
    return images, labels


def test_load_from_subdirectory_and_longer_label_file(tmp_path):
    images, labels = _write_split(tmp_path / "mnist", 7, prefix="t10k", n_labels=12, gz=False)
    with pytest.warns(UserWarning, match=r"MNIST test \(partial\): 7 of 10,000"):
        ds = load_dataset("mnist", data_dir=str(tmp_path), split="test")
    x, y = ds.arrays()
    assert ds.num_examples == 7 and x.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(y, labels[:7])
    np.testing.assert_allclose(x[..., 0], images / 127.5 - 1, atol=1e-6)


def test_fashion_does_not_read_mnist_folder(tmp_path):
    _write_split(tmp_path / "mnist", 5)
    with pytest.raises(DatasetError, match="No Fashion-MNIST train IDX files"):
        load_dataset("fashion_mnist", data_dir=str(tmp_path / "mnist"))


def test_env_var_and_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXGAN_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist")


def test_bad_split(tmp_path):
    with pytest.raises(DatasetError, match="'train' and 'test'"):
        load_dataset("mnist", data_dir=str(tmp_path), split="validation")


def test_real_mnist_partial_train_and_full_test(mnist_dir):
    root = str(mnist_dir)
    with pytest.warns(UserWarning, match=r"MNIST train \(partial\): 22,699 of 60,000 images"):
        train = load_dataset("mnist", data_dir=root)
    assert train.num_examples == 22_699
    assert train.description.startswith("MNIST train (partial)")
    assert train.example_shape == (28, 28, 1) and train.num_classes == 10
    # Of the two training label files, the one matching the images' count is chosen.
    files = idx.find_idx_files(root, "mnist", "train")
    assert files is not None and "first22699" in os.path.basename(files[1])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # The full test split must not warn.
        test = load_dataset("mnist", data_dir=root, split="test")
    assert test.num_examples == 10_000 and "partial" not in test.description
    x, y = test.arrays()
    assert x.shape == (10_000, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() == -1.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_real_mnist_labels_agree_with_the_full_label_file(mnist_dir):
    root = str(mnist_dir)
    full = idx.read_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"))
    with pytest.warns(UserWarning):
        split = idx.load_idx(root, "mnist", "train")
    assert len(full) == 60_000
    np.testing.assert_array_equal(split.source.labels, full[:22_699])
