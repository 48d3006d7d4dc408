"""Datasets for jaxgan: MNIST, Fashion-MNIST, the 2-D mixtures, and image folders.

        from jaxgan.data import load_dataset
        ds = load_dataset("mnist", data_dir="PATH/TO/mnist")
        for batch in ds.batches(64, seed=0, start_step=step):  # {"x", "y", "index"}
            ...

Names: ``mnist``, ``fashion_mnist`` (28x28x1), ``ring8``, ``grid25`` (2-D mixtures),
``folder:PATH`` or the path of an existing directory (images, RGB, ``resolution`` px, default
64; ``bad_images="skip"`` leaves unreadable files out). A registered name wins over a
directory of the same name: write ``folder:mnist`` or ``./mnist`` for the directory.

(Fashion-)MNIST comes from IDX files when ``data_dir`` (or ``$JAXGAN_DATA_DIR``) is given,
looked for in ``data_dir/<name>/`` then ``data_dir``; otherwise from TFDS, which must already
be prepared or reachable on the network (``jaxgan.data.tfds_source``).
"""

from __future__ import annotations

import os

from jaxgan.data import idx, mixtures, tfds_source
from jaxgan.data.errors import DatasetError
from jaxgan.data.folder import BAD_IMAGES, ImageFolderSource
from jaxgan.data.pipeline import MIXTURE_STEPS_PER_EPOCH, Dataset
from jaxgan.data.sources import ResizedSource

__all__ = ["DATASETS", "Dataset", "DatasetError", "load_dataset", "mixture_dataset",
           "MIXTURE_STEPS_PER_EPOCH"]

_IMAGE_DATASETS = ("mnist", "fashion_mnist")
DATASETS: tuple[str, ...] = _IMAGE_DATASETS + tuple(mixtures.MIXTURES)
DEFAULT_FOLDER_RESOLUTION = 64
_FOLDER_PREFIX = "folder:"


def mixture_dataset(name: str, *, radius: float | None = None, std: float | None = None
                    ) -> Dataset:
    """A 2-D mixture, optionally with another geometry than PacGAN's.

    Args:
        name: "ring8" or "grid25".
        radius: the ring's radius (default 1) or the grid's largest coordinate (default 4).
        std: the standard deviation of each mode (default 0.01 ring, 0.05 grid).

    Example: Unrolled GAN's ring is ``mixture_dataset("ring8", radius=2.0, std=0.02)``.
    """
    centres = mixtures.centres(name, radius=radius)
    std = mixtures.std(name) if std is None else float(std)
    kind = mixtures.MIXTURES[name][0]
    size = f"radius {abs(centres).max():g}" if kind == "ring" else (
        f"centres in [-{abs(centres).max():g}, {abs(centres).max():g}]^2")
    return Dataset(
        name=name, example_shape=(2,), num_examples=None, num_classes=len(centres),
        description=f"{name}: {len(centres)} equal Gaussians, {size}, std {std:g}",
        centres=centres, std=std)


def _image_dataset(name: str, data_dir: str | None, split: str,
                   resolution: int | None) -> Dataset:
    if data_dir is not None:
        loaded = idx.load_idx(data_dir, name, split)
        source, description = loaded.source, loaded.description
    else:
        source, description = tfds_source.load_tfds(name, split)
    if resolution is not None and resolution != 28:
        source = ResizedSource(source, resolution)
        description += f", resized to {resolution}x{resolution}"
    size = resolution or 28
    return Dataset(name=name, example_shape=(size, size, 1), num_examples=len(source),
                   num_classes=10, description=description, source=source)


def _folder_dataset(name: str, path: str, split: str, resolution: int | None,
                    bad_images: str) -> Dataset:
    if split != "train":
        raise DatasetError(f"An image folder has a single split, 'train'; got split={split!r}")
    resolution = DEFAULT_FOLDER_RESOLUTION if resolution is None else resolution
    source = ImageFolderSource(path, resolution, bad_images=bad_images)
    notes = f"; {source.notes}" if source.notes else ""
    return Dataset(
        name=name, example_shape=(resolution, resolution, 3), num_examples=len(source),
        num_classes=None, source=source,
        description=(f"image folder {path}: {len(source):,} images, centre-cropped to "
                     f"{resolution}x{resolution} RGB{notes}"))


def load_dataset(name: str, *, data_dir: str | None = None, split: str = "train",
                 resolution: int | None = None, bad_images: str = "fail") -> Dataset:
    """Loads a dataset by name.

    Args:
        name: one of ``DATASETS``, ``folder:PATH``, or the path of an existing directory.
        data_dir: directory of (Fashion-)MNIST IDX files; default ``$JAXGAN_DATA_DIR``; if
            neither is set, TFDS is used. Ignored by mixtures and folders.
        split: "train" or "test" ((Fashion-)MNIST); folders and mixtures have only "train".
        resolution: image side: folders default to 64; for (Fashion-)MNIST, a value other than
            28 resizes each image on read. Mixtures take none.
        bad_images: image folders: "fail" (a file that cannot be read stops the run, named)
            or "skip" (such files are left out, counted in the description). Checked for
            every dataset, used by folders only.

    Raises:
        DatasetError: unknown name, missing directory or files, offline without local data.
    """
    if bad_images not in BAD_IMAGES:
        # Checked before the name so that a typo fails the same way whatever the dataset.
        raise DatasetError(
            f"bad_images must be one of {', '.join(BAD_IMAGES)}, got {bad_images!r}")
    if name in mixtures.MIXTURES:
        if split != "train":
            raise DatasetError(f"{name} is sampled on the fly and has only the 'train' split")
        if resolution is not None:
            raise DatasetError(f"{name} is 2-D points; resolution does not apply")
        return mixture_dataset(name)
    if name in _IMAGE_DATASETS:
        data_dir = data_dir or os.environ.get("JAXGAN_DATA_DIR") or None
        return _image_dataset(name, data_dir and os.path.expanduser(data_dir), split, resolution)
    if name.startswith(_FOLDER_PREFIX):
        path = os.path.expanduser(name[len(_FOLDER_PREFIX):])
        if not path:
            raise DatasetError("folder: needs a path, e.g. folder:/data/celeba")
        return _folder_dataset(name, path, split, resolution, bad_images)
    path = os.path.expanduser(name)
    if os.path.isdir(path):
        return _folder_dataset(name, path, split, resolution, bad_images)
    raise DatasetError(
        f"Unknown dataset {name!r}: expected one of {', '.join(DATASETS)}, or an image folder "
        "given as folder:PATH or as the path of an existing directory"
        + (f" ({path!r} is not a directory)" if os.sep in name or name.startswith(".") else ""))
