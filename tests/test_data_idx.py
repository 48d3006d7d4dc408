"""IDX reading and (Fashion-)MNIST from IDX files."""

import gzip
import os
import warnings

import numpy as np
import pytest
from damage import damage
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan.data import DatasetError, idx, load_dataset


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


# --------------------------------------------------------------------------------------
# Malformed files: always a DatasetError naming the file, never a raw traceback
# --------------------------------------------------------------------------------------

_CODES = {dtype.newbyteorder("="): code for code, dtype in idx._DTYPES.items()}
_ARRAYS = [np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5),
           np.array([3, 1, 4, 1, 5, 9], np.uint8),
           np.array([[1, -2], [70000, 5]], np.int32)]


def _gzipped(data: bytes) -> bytes:
    # mtime=0: the same bytes every time, so that hypothesis can replay a failure.
    return gzip.compress(data, mtime=0)


@settings(max_examples=100, deadline=None)
@given(which=st.integers(0, len(_ARRAYS) - 1), gz=st.booleans(), data=st.data())
def test_fuzzed_idx_file_reads_exactly_or_is_a_dataset_error(tmp_path_factory, which, gz, data):
    array = _ARRAYS[which]
    plain = _idx_bytes(array, _CODES[array.dtype])
    stored = _gzipped(plain) if gz else plain
    damaged = damage(stored, data.draw)
    path = tmp_path_factory.mktemp("idx") / "x-idx3-ubyte"
    path.write_bytes(damaged)
    try:
        out = idx.read_idx(str(path))
    except DatasetError as e:
        assert str(path) in str(e)
        return
    assert out.dtype.isnative
    if gz:
        # Its CRC guards the data: what decompresses is the original (only a byte of the
        # gzip header's mtime or OS field can change unnoticed).
        np.testing.assert_array_equal(out, array)
        assert out.dtype == array.dtype
    else:
        # A raw file has no checksum, but what is returned is exactly what its bytes say.
        assert _idx_bytes(out, _CODES[out.dtype]) == damaged


@settings(max_examples=50, deadline=None)
@given(labels_file=st.booleans(), gz=st.booleans(), data=st.data())
def test_fuzzed_split_loads_or_is_a_dataset_error(tmp_path_factory, labels_file, gz, data):
    d = tmp_path_factory.mktemp("split") / "mnist"
    _write_split(d, 5, gz=gz)
    name = "train-labels-idx1-ubyte" if labels_file else "train-images-idx3-ubyte"
    path = d / (name + (".gz" if gz else ""))
    path.write_bytes(damage(path.read_bytes(), data.draw))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "partial": 5 of 60,000 images
            split = idx.load_idx(str(d.parent), "mnist", "train")
    except DatasetError as e:
        assert os.path.basename(str(path)) in str(e) or "train-" in str(e)
        return
    assert split.source.images.dtype == np.uint8 and split.source.images.ndim == 4
    assert len(split.source.labels) == len(split.source.images) > 0
    assert split.source.labels.min() >= 0 and split.source.labels.max() <= 9


def _bad(tmp_path, data: bytes, name="x-idx3-ubyte") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


_IMAGES = _idx_bytes(np.zeros((10, 28, 28), np.uint8))


@pytest.mark.parametrize("data, match", [
    (_gzipped(_IMAGES)[:-30], "gzip data ends early: the file is truncated"),
    (_gzipped(_IMAGES)[:12], "gzip data ends early"),
    (_gzipped(_IMAGES)[:10] + bytes(range(40)), "corrupt gzip data"),
    (_gzipped(_IMAGES)[:-8] + b"\0\0\0\0" + _gzipped(_IMAGES)[-4:], "corrupt gzip data.*CRC"),
    (_gzipped(_IMAGES) + b"junk", "corrupt gzip data"),
    (b"", "is empty: no IDX header"),
    (_gzipped(b""), "is empty: no IDX header"),
    (bytes([0, 0, 8, 0]) + bytes(10), "declares 0 dimensions"),
    (bytes([0, 0, 8, 3, 0, 0]), "header truncated: it declares 3 dimensions"),
    (bytes([0, 0, 8, 3]) + np.array([2**32 - 1] * 3, ">u4").tobytes() + bytes(100),
     r"declares shape \(4294967295, 4294967295, 4294967295\).*truncated \(or its header"),
    (_IMAGES + bytes(28 * 28), "data was appended"),
])
def test_malformed_idx_file_is_a_dataset_error_naming_it(tmp_path, data, match):
    path = _bad(tmp_path, data)
    with pytest.raises(DatasetError, match=match) as e:
        idx.read_idx(path)
    assert path in str(e.value)


def test_truncated_gzip_header_is_named_by_read_idx_header(tmp_path):
    path = _bad(tmp_path, _gzipped(_IMAGES)[:15])
    with pytest.raises(DatasetError, match="gzip data ends early") as e:
        idx.read_idx_header(path)
    assert path in str(e.value)


def test_a_garbled_candidate_file_is_named(tmp_path):
    # A partial download beside the real files matches the pattern and is read too.
    _write_split(tmp_path, 5)
    part = tmp_path / "train-images-idx3-ubyte.gz.part"
    part.write_bytes(_gzipped(_IMAGES)[:14])
    with pytest.raises(DatasetError, match=r"\.part: the gzip data ends early.*candidate; "
                                           r"fix, delete or move it"):
        idx.find_idx_files(str(tmp_path), "mnist", "train")
    part.unlink()
    (tmp_path / "train-labels-idx1-ubyte.old").write_bytes(b"\x89PNG")
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte\.old is not an IDX file"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_a_directory_matching_the_pattern_is_not_a_candidate(tmp_path):
    _write_split(tmp_path, 5)
    (tmp_path / "train-images-idx3-ubyte-extracted").mkdir()
    assert idx.find_idx_files(str(tmp_path), "mnist", "train") is not None


def _split(tmp_path, images, labels, *, image_code=0x08, label_code=0x08):
    _write(tmp_path / "train-images-idx3-ubyte", images, gz=False, code=image_code)
    _write(tmp_path / "train-labels-idx1-ubyte", labels, gz=False, code=label_code)


def _load(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "partial": a few of 60,000 images
        return idx.load_idx(str(tmp_path), "mnist", "train")


def test_fewer_labels_than_images(tmp_path):
    _split(tmp_path, np.zeros((5, 4, 4), np.uint8), np.zeros(3, np.uint8))
    with pytest.raises(DatasetError, match=r"holds 5 images but no label file.*"
                                           r"train-labels-idx1-ubyte \(3\)"):
        _load(tmp_path)


def test_labels_file_with_the_shape_of_images(tmp_path):
    _split(tmp_path, np.zeros((5, 4, 4), np.uint8), np.zeros((5, 4, 4), np.uint8))
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte: expected integer labels "
                                           r"\(N,\).*\(5, 4, 4\) \(is it an images file\?\)"):
        _load(tmp_path)


def test_float_labels(tmp_path):
    _split(tmp_path, np.zeros((5, 4, 4), np.uint8), np.zeros(5, np.float32),
           label_code=0x0D)
    with pytest.raises(DatasetError, match=r"expected integer labels.*got float32 \(5,\)"):
        _load(tmp_path)


def test_images_file_with_the_shape_of_labels(tmp_path):
    _split(tmp_path, np.zeros(5, np.uint8), np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match=r"images-idx3-ubyte: expected uint8 images "
                                           r"\(N, H, W\).*\(5,\) \(is it a labels file\?\)"):
        _load(tmp_path)


def test_no_images(tmp_path):
    _split(tmp_path, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(DatasetError, match=r"holds no image data.*\(0, 28, 28\)"):
        _load(tmp_path)


def test_labels_out_of_range_are_counted_and_shown(tmp_path):
    _split(tmp_path, np.zeros((6, 4, 4), np.uint8), np.array([1, 10, 2, 255, 10, 3], np.uint8))
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte: 3 of 6 labels are outside "
                                           r"0\.\.9 \(values 10, 255; the first at index 1\)"):
        _load(tmp_path)
