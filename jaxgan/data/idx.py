"""MNIST-style IDX files (LeCun's format), gzip or not, and finding them in a directory.

Format (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type code, the number of
dimensions, then each dimension as a big-endian uint32, then the data, big-endian, row-major.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import math
import os
import warnings
import zlib
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


def _read(path: str, size: int = -1) -> bytes:
    """The first ``size`` bytes of the file (all by default), decompressed if it is gzip.

    Raises:
        DatasetError: the file cannot be opened, or its gzip stream is truncated or corrupt.
    """
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == _GZIP_MAGIC
        # Sniff rather than trust the suffix: users gunzip files and keep the name, or the
        # reverse.
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            return f.read(size)
    except EOFError as e:
        # gzip's own message names no file and does not say what to do.
        raise DatasetError(
            f"{path}: the gzip data ends early: the file is truncated (an interrupted "
            "download?); delete it and download it again") from e
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DatasetError(
            f"{path}: corrupt gzip data ({e}); delete it and download it again") from e
    except OSError as e:
        raise DatasetError(f"Cannot read IDX file {path}: {e.strerror or e}") from e


def _parse_header(head: bytes, path: str) -> tuple[np.dtype, tuple[int, ...]]:
    if not head:
        raise DatasetError(f"{path} is empty: no IDX header, no data; delete it and download "
                           "it again")
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
        raise DatasetError(
            f"{path} is not an IDX file: its magic number is {head[:4].hex() or 'missing'}, "
            "expected 0000 then a type code (08 = uint8) and the number of dimensions, "
            "e.g. 00000803 for images, 00000801 for labels")
    ndim = head[3]
    if ndim == 0:
        raise DatasetError(
            f"{path}: the IDX header declares 0 dimensions (magic number {head[:4].hex()}); "
            "expected 3 for images (00000803) or 1 for labels (00000801): the header is "
            "corrupt")
    if len(head) < 4 + 4 * ndim:
        raise DatasetError(
            f"{path}: IDX header truncated: it declares {ndim} dimensions but the file ends "
            f"after {len(head)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(head[4:4 + 4 * ndim], ">u4"))
    return _DTYPES[head[2]], shape


def read_idx_header(path: str) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an IDX file declares, without reading its data.

    Raises:
        DatasetError: the file cannot be read, or its header is not an IDX one.
    """
    head = _read(path, 4)
    if len(head) == 4:
        head += _read(path, 4 + 4 * head[3])[4:]
    return _parse_header(head, path)


def read_idx(path: str) -> np.ndarray:
    """The array stored in an IDX file (gzip-compressed or not), in native byte order.

    Raises:
        DatasetError: unreadable file, truncated or corrupt gzip data, wrong magic number,
            or a data size other than the header declares.
    """
    raw = _read(path)
    dtype, shape = _parse_header(raw[:4 + 4 * raw[3]] if len(raw) >= 4 else raw, path)
    offset = 4 + 4 * len(shape)
    # math.prod of Python ints: np.prod would overflow int64 on a corrupt header's sizes.
    count = math.prod(shape)
    expected, found = count * dtype.itemsize, len(raw) - offset
    if found < expected:
        raise DatasetError(
            f"{path}: header declares shape {shape} ({expected:,} bytes) but only "
            f"{found:,} data bytes follow; the file is truncated (or its header corrupt): "
            "delete it and download it again")
    if found > expected:
        # Extra bytes mean the header undercounts: reading on would silently drop examples.
        raise DatasetError(
            f"{path}: header declares shape {shape} ({expected:,} bytes) but {found:,} data "
            "bytes follow; its header is corrupt or data was appended: delete it and "
            "download it again")
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


def _files(directory: str, pattern: str) -> list[str]:
    return [p for p in glob.glob(os.path.join(glob.escape(directory), pattern))
            if os.path.isfile(p)]


def _headers(paths: Sequence[str], pattern: str) -> dict[str, tuple[int, ...]]:
    """The declared shape of each candidate file, a corrupt one named as such."""
    shapes = {}
    for p in sorted(paths):
        try:
            shapes[p] = read_idx_header(p)[1]
        except DatasetError as e:
            # Every file matching the pattern is a candidate, a stray partial download
            # included: say why this one was read at all.
            raise DatasetError(
                f"{e} (it was read because every {pattern} file in {os.path.dirname(p)} is a "
                "candidate; fix, delete or move it)") from e
    return shapes


def _largest(paths: Sequence[str], pattern: str) -> tuple[str, tuple[int, ...]]:
    shapes = _headers(paths, pattern)
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
        image_pattern = f"{prefix}-images*-idx3-ubyte*"
        images = _files(d, image_pattern)
        if not images:
            continue
        image_path, image_shape = _largest(images, image_pattern)
        label_pattern = f"{prefix}-labels*-idx1-ubyte*"
        counts = {p: shape[0] for p, shape in _headers(_files(d, label_pattern),
                                                       label_pattern).items()}
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
    labels = read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        hint = " (is it a labels file?)" if images.ndim == 1 else ""
        raise DatasetError(f"{image_path}: expected uint8 images (N, H, W), i.e. magic number "
                           f"00000803, got {images.dtype} {images.shape}{hint}")
    if images.size == 0:
        raise DatasetError(f"{image_path} holds no image data: its header declares shape "
                           f"{images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        hint = " (is it an images file?)" if labels.ndim == 3 else ""
        raise DatasetError(f"{label_path}: expected integer labels (N,), i.e. magic number "
                           f"00000801, got {labels.dtype} {labels.shape}{hint}")
    if len(labels) < len(images):
        raise DatasetError(
            f"{label_path} holds {len(labels):,} labels for the {len(images):,} images of "
            f"{image_path}: every image needs a label")
    labels = labels[:len(images)]
    outside = (labels < 0) | (labels > 9)
    if outside.any():
        values = np.unique(labels[outside])
        shown = ", ".join(str(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
        raise DatasetError(
            f"{label_path}: {int(outside.sum()):,} of {len(labels):,} labels are outside 0..9 "
            f"(values {shown}; the first at index {int(np.argmax(outside)):,}): the file is "
            "corrupt or not a (Fashion-)MNIST labels file")
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
