"""MNIST-style IDX files (LeCun's format), gzip or not, and finding them in a directory.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, then each dimension as a big-endian uint32, then the data, big-endian, row-major.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import os
import warnings
from collections.abc import Sequence

import numpy as np

from jaxgan.data.errors import DatasetError
from jaxgan.data.sources import ArraySource

_GZIP_MAGIC = b"\x1f\x8b"
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# The official sizes: a split with fewer examples is reported as partial.
FULL_SIZES = {
    ("mnist", "train"): 60_000,
    ("mnist", "test"): 10_000,
    ("fashion_mnist", "train"): 60_000,
    ("fashion_mnist", "test"): 10_000,
}
_PRETTY = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
_PREFIX = {"train": "train", "test": "t10k"}


def _open(path: str):
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    # Sniff rather than trust the suffix: users gunzip files and keep the name, or the reverse.
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _parse_header(head: bytes, path: str) -> tuple[np.dtype, tuple[int, ...]]:
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
        raise DatasetError(
            f"{path} is not an IDX file: its magic number is {head[:4].hex() or 'missing'}, "
            "expected 0000 then a type code (08 = uint8) and the number of dimensions, "
            "e.g. 00000803 for images, 00000801 for labels")
    ndim = head[3]
    if len(head) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: IDX header truncated")
    shape = tuple(int(d) for d in np.frombuffer(head[4:4 + 4 * ndim], ">u4"))
    return _DTYPES[head[2]], shape


def read_idx_header(path: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an IDX file declares, without reading its data."""
    with _open(path) as f:
        head = f.read(4)
        head += f.read(4 * head[3]) if len(head) == 4 else b""
    return _parse_header(head, path)


def read_idx(path: str) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or not), in native byte order.

    Raises:
        DatasetError: wrong magic number, or fewer data bytes than the header declares.
    """
    with _open(path) as f:
        raw = f.read()
    dtype, shape = _parse_header(raw[:4 + 4 * raw[3]] if len(raw) >= 4 else raw, path)
    offset = 4 + 4 * len(shape)
    count = int(np.prod(shape))
    if len(raw) - offset < count * dtype.itemsize:
        raise DatasetError(
            f"{path}: header declares shape {shape} ({count * dtype.itemsize:,} bytes) but only "
            f"{len(raw) - offset:,} data bytes follow; the file is truncated")
    data = np.frombuffer(raw, dtype, count=count, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def expected_files(name: str) -> str:
    """The file names load_idx looks for, for error messages."""
    del name  # MNIST and Fashion-MNIST use the same names.
    return ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (gzip or not)")


def _search_dirs(data_dir: str, name: str) -> list[str]:
    dirs = [os.path.join(data_dir, name), os.path.join(data_dir, name.replace("_", "-"))]
    # DIR itself, unless DIR is visibly another dataset's folder: with
    # JAXGAN_DATA_DIR=.../mnist, asking for fashion_mnist must not silently return digits.
    base = os.path.basename(os.path.normpath(data_dir)).lower().replace("-", "_")
    if not (base in _PRETTY and base != name):
        dirs.append(data_dir)
    return [d for d in dirs if os.path.isdir(d)]


def _largest(paths: Sequence[str]) -> tuple[str, tuple[int, ...]]:
    shapes = {p: read_idx_header(p)[1] for p in paths}
    best = max(sorted(paths), key=lambda p: shapes[p][0])
    return best, shapes[best]


@dataclasses.dataclass(frozen=True)
class IdxSplit:
    """One split read from IDX files."""
    source: ArraySource
    description: str
    partial: bool
    images_path: str
    labels_path: str


def find_idx_files(data_dir: str, name: str, split: str) -> tuple[str, str] | None:
    """The (images, labels) files for ``split`` in ``data_dir`` or ``data_dir/<name>/``.

    Among several image files (e.g. a full and a partial copy) the one with most images wins.
    Among label files, one whose count equals the images' is preferred; a longer one is
    accepted too (its first n labels are used by ``load_idx``). None if no image file is found.
    """
    prefix = _PREFIX[split]
    for d in _search_dirs(data_dir, name):
        images = glob.glob(os.path.join(glob.escape(d), f"{prefix}-images*-idx3-ubyte*"))
        if not images:
            continue
        image_path, image_shape = _largest(images)
        labels = glob.glob(os.path.join(glob.escape(d), f"{prefix}-labels*-idx1-ubyte*"))
        counts = {p: read_idx_header(p)[1][0] for p in labels}
        exact = sorted(p for p, c in counts.items() if c == image_shape[0])
        longer = sorted((c, p) for p, c in counts.items() if c > image_shape[0])
        if exact:
            return image_path, exact[0]
        if longer:
            return image_path, longer[0][1]
        found = ", ".join(f"{os.path.basename(p)} ({c:,})" for p, c in counts.items()) or "none"
        raise DatasetError(
            f"{image_path} holds {image_shape[0]:,} images but no label file in {d} has that many "
            f"labels (found: {found}); expected {prefix}-labels-idx1-ubyte[.gz]")
    return None


def load_idx(data_dir: str, name: str, split: str) -> IdxSplit:
    """MNIST or Fashion-MNIST ``split`` ("train" or "test") from IDX files under ``data_dir``.

    Warns (``UserWarning``) when the split has fewer examples than the official one, and says
    so in the description, e.g. "MNIST train (partial): 22,699 of 60,000 images".

    Raises:
        DatasetError: unknown split, files not found, or malformed files.
    """
    if split not in _PREFIX:
        raise DatasetError(
            f"IDX files hold the splits 'train' and 'test' only, got split={split!r}")
    if not os.path.isdir(data_dir):
        raise DatasetError(f"data_dir {data_dir!r} is not a directory (expected IDX files: "
                           f"{expected_files(name)})")
    files = find_idx_files(data_dir, name, split)
    if files is None:
        raise DatasetError(
            f"No {_PRETTY[name]} {split} IDX files in {data_dir} or "
            f"{os.path.join(data_dir, name)}: "
            f"expected {_PREFIX[split]}-images*-idx3-ubyte[.gz] and "
            f"{_PREFIX[split]}-labels*-idx1-ubyte[.gz], i.e. {expected_files(name)}")
    image_path, label_path = files
    images = read_idx(image_path)
    labels = read_idx(label_path)[:len(images)]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{image_path}: expected uint8 images (N, H, W), got "
                           f"{images.dtype} {images.shape}")
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{label_path}: labels outside 0..9")
    full = FULL_SIZES[(name, split)]
    pretty = f"{_PRETTY[name]} {split}"
    where = os.path.dirname(image_path)
    partial = len(images) < full
    if partial:
        description = (f"{pretty} (partial): {len(images):,} of {full:,} images, "
                       f"IDX files in {where}")
        warnings.warn(description, UserWarning, stacklevel=3)
    else:
        description = f"{pretty}: {len(images):,} images, IDX files in {where}"
    return IdxSplit(
        source=ArraySource(images[..., None], labels.astype(np.int32)),
        description=description,
        partial=partial,
        images_path=image_path,
        labels_path=label_path)
