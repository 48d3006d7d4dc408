"""A folder of images as a lazily decoded random-access source.

Every ``.jpg``, ``.jpeg`` and ``.png`` under the folder (any case, recursively, following
symlinks; names starting with "." skipped, e.g. macOS ``._x.jpg`` forks) is an example, in
sorted path order so that an example's index is stable across runs (GLO keeps a latent per
index). Each read decodes one file, converts it to RGB (always 3 channels, so that a network
does not change shape with the folder's content; grayscale images are replicated, alpha is
dropped), and keeps the largest centred square resized to ``resolution`` x ``resolution``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from jaxgan.data.errors import DatasetError
from jaxgan.data.sources import centre_crop_resize

EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_images(root: str) -> list[str]:
    """The image files under ``root``, sorted by relative path.

    Raises:
        DatasetError: ``root`` is not a directory, or holds no image.
    """
    if not os.path.isdir(root):
        raise DatasetError(f"Image folder {root!r} does not exist or is not a directory")
    paths = []
    for directory, subdirs, files in os.walk(root, followlinks=True):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        paths += [os.path.join(directory, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in EXTENSIONS]
    if not paths:
        raise DatasetError(
            f"Image folder {root!r} holds no images: files ending in "
            f"{', '.join(EXTENSIONS)} (any case) are read, in all subfolders")
    return sorted(paths, key=lambda p: os.path.relpath(p, root))


class ImageFolderSource:
    """``len`` images from a folder; ``source[i]`` decodes the i-th file.

    Items are ``{"image": uint8 (resolution, resolution, 3), "label": 0}``.
    """

    def __init__(self, root: str, resolution: int = 64):
        if resolution < 1:
            raise DatasetError(f"resolution must be positive, got {resolution}")
        self.root = root
        self.resolution = resolution
        self.paths = list_images(root)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                # Let the JPEG decoder shrink by 1/2..1/8 while decoding (DCT scaling, far cheaper
                # than a full decode), keeping at least twice the target size for the Lanczos pass.
                image.draft("RGB", (2 * self.resolution, 2 * self.resolution))
                image = ImageOps.exif_transpose(image).convert("RGB")
                image = centre_crop_resize(image, self.resolution)
        except (OSError, ValueError) as e:
            raise DatasetError(f"Cannot decode image {path}: {e}") from e
        return {"image": np.asarray(image, np.uint8), "label": 0}

    def __repr__(self) -> str:
        return f"ImageFolderSource({self.root!r}, {len(self)} images, {self.resolution} px)"
