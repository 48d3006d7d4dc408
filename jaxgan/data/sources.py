"""Random-access sources: what Grain reads one example at a time.

A source has ``__len__`` and ``__getitem__(i) -> {"image": uint8 (H, W, C), "label": int}``,
the element layout of ``tfds.data_source`` for MNIST, so IDX files, TFDS and image folders
all feed the same pipeline (``jaxgan.data.pipeline``), which reads them a batch at a time
(`read_batch`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from PIL import Image


class Source(Protocol):
    """What ``Dataset`` reads: TFDS's data-source protocol."""

    def __len__(self) -> int:
        ...

    def __getitem__(self, index: int) -> dict[str, Any]:
        ...


def read_batch(source: Source, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The examples ``indices`` of ``source``: images uint8 ``(B, H, W, C)``, labels int32
    ``(B,)``. A source with a ``read_batch`` method of its own (arrays in memory) reads them in
    one gather; any other one item at a time.

    Grain's reader threads share the interpreter's lock with the training loop's thread: a
    gather holds it for one call, a read item by item for a Python loop over the batch.
    """
    own = getattr(source, "read_batch", None)
    if own is not None:
        return own(indices)
    # TFDS's batched __getitems__ is broken under tfds.testing.mock_data: item by item.
    items = [source[i] for i in np.asarray(indices).tolist()]
    return (np.stack([np.asarray(item["image"]) for item in items]),
            np.asarray([item["label"] for item in items], np.int32))


class ArraySource:
    """Examples held in memory, e.g. MNIST read from IDX files.

    Args:
        images: uint8 ``(N, H, W, C)``.
        labels: integer ``(N,)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, np.int32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index], "label": int(self.labels[index])}

    def read_batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.images[indices], self.labels[indices]

    def __repr__(self) -> str:
        return f"ArraySource({self.images.shape})"


class SubsetSource:
    """The examples ``indices`` of a source (the unlabelled part of a training set)."""

    def __init__(self, source: Source, indices: np.ndarray):
        self.source = source
        self.indices = np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source[int(self.indices[index])]

    def read_batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return read_batch(self.source, self.indices[indices])


def centre_crop_resize(image: Image.Image, resolution: int) -> Image.Image:
    """The largest centred square of ``image``, resized to ``resolution`` x ``resolution``.

    Equivalent to "resize the shorter side to ``resolution``, then centre-crop", done in one
    resampling (Pillow's ``box=``) so no intermediate size is rounded. Lanczos when shrinking
    (least aliasing), bicubic when enlarging (Lanczos rings on upsampled edges).
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    resample = Image.Resampling.LANCZOS if side >= resolution else Image.Resampling.BICUBIC
    return image.resize(
        (resolution, resolution), resample, box=(left, top, left + side, top + side))


class ResizedSource:
    """``source`` with every image centre-cropped and resized on read (e.g. MNIST at 32 px)."""

    def __init__(self, source: Source, resolution: int):
        self.source = source
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.source[index])
        image = np.asarray(item["image"])
        grey = image.shape[-1] == 1
        pil = Image.fromarray(image[..., 0] if grey else image)
        out = np.asarray(centre_crop_resize(pil, self.resolution))
        item["image"] = out[..., None] if grey else out
        return item

    def __repr__(self) -> str:
        return f"ResizedSource({self.source!r}, {self.resolution})"
