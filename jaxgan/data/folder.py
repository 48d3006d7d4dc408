"""A folder of images as a lazily decoded random-access source.

Every ``.jpg``, ``.jpeg`` and ``.png`` under the folder (any case, recursively, following
symlinks; names starting with "." skipped, e.g. macOS ``._x.jpg`` forks) is an example, in
sorted path order so that an example's index is stable across runs (GLO keeps a latent per
index). Each read decodes one file, converts it to RGB (always 3 channels, so that a network
does not change shape with the folder's content), and keeps the largest centred square
resized to ``resolution`` x ``resolution``.

Conversions to 8-bit RGB: grayscale is replicated (silently: nothing is lost); alpha and
transparency are dropped; 16-bit images keep their top 8 bits; an animated file gives its
first frame. These and images smaller than ``resolution`` (upscaled) are counted and
reported once, when the folder is opened (a ``UserWarning`` and `ImageFolderSource.notes`).

A file that cannot be read is a `DatasetError` naming it (``bad_images="fail"``), or is left
out and counted (``"skip"``). Opening the folder reads every file's header (cheap: Pillow
stops at the pixel data), so a file that is not an image at all fails at once in either
mode. Whether the pixel data decodes is known only by decoding it: ``"skip"`` decodes every
file once at opening, so that the set of examples, hence each one's index, is fixed before
training starts; ``"fail"`` does not (a full pass costs about a decoding epoch) and a file
whose data is damaged fails when it is first read, naming it. Measured (one busy core of
two): opening 500 files takes 0.035 s with ``"fail"``, PNG or JPEG; with ``"skip"``, 0.1 s
for 500 64x64 PNGs and 0.55 s for 500 178x218 JPEGs (CelebA's size), the time of one epoch
of reads, so about 4 minutes per 200,000 such JPEGs, shared among the cores.
"""

from __future__ import annotations

import collections
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from jaxgan.data.errors import DatasetError
from jaxgan.data.sources import centre_crop_resize

EXTENSIONS = (".jpg", ".jpeg", ".png")
BAD_IMAGES = ("fail", "skip")
_SKIP_HINT = ("fix or delete {}, or pass --bad-images skip (bad_images='skip') to leave "
              "unreadable images out")
_SHOWN = 5  # files named in a report; the rest are counted

# What each mode loses or changes on the way to 8-bit RGB, as the report names it.
# RGB and grayscale ("L") are absent: nothing to report.
_MODE_KINDS = {
    "RGBA": "RGBA (alpha dropped)",
    "RGBa": "RGBA (alpha dropped)",
    "LA": "grayscale+alpha (alpha dropped)",
    "La": "grayscale+alpha (alpha dropped)",
    "PA": "palette+alpha (alpha dropped)",
    "P": "palette",
    "CMYK": "CMYK (no colour profile applied)",
    "1": "1-bit",
    "I": "32-bit integer (scaled as 16-bit)",
    "F": "floating point (0..1 scaled to 0..255, else clipped)",
}
_SIXTEEN_BIT = "16-bit (scaled to 8)"
_TRANSPARENCY = "transparent colour (dropped)"
_ANIMATED = "animated (first frame)"


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


def _reason(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        # Pillow's own message repeats the full path, already named by ours.
        return "not an image Pillow can read: unknown format or corrupt header"
    return str(error) or type(error).__name__


def _kinds(image: Image.Image, resolution: int) -> list[str]:
    """What converting ``image`` to ``resolution`` px RGB changes, from its header alone."""
    mode = image.mode
    kinds = [_SIXTEEN_BIT if mode.startswith("I;16") else
             _MODE_KINDS.get(mode, "" if mode in ("RGB", "L") else f"mode {mode}")]
    if "transparency" in image.info and mode not in ("RGBA", "RGBa", "LA", "La", "PA"):
        kinds.append(_TRANSPARENCY)
    # is_animated stops at the second frame, where n_frames would walk a GIF to its end.
    if getattr(image, "is_animated", False):
        kinds.append(_ANIMATED)
    if min(image.size) < resolution:
        kinds.append(f"smaller than {resolution} px (upscaled)")
    return [k for k in kinds if k]


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        # convert() clips these at 255: a 16-bit photo would train as a white image. The top
        # byte maps 65535 to 255 and undoes both 8-to-16-bit expansions, v * 257 and v << 8.
        values = np.clip(np.asarray(image, np.int64), 0, 65535) >> 8
        image = Image.fromarray(values.astype(np.uint8))
    elif mode == "F":
        values = np.nan_to_num(np.asarray(image, np.float64), nan=0.0, posinf=255.0,
                               neginf=0.0)
        # Floats in [0, 1] are the common convention (and would all clip to black).
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    elif mode in ("P", "PA") or "transparency" in image.info:
        # Through RGBA: Pillow warns on a palette's transparency converted straight to RGB.
        image = image.convert("RGBA")
    return image.convert("RGB")


def _decode(path: str, resolution: int) -> np.ndarray:
    """The image at ``path`` as uint8 ``(resolution, resolution, 3)``; raises what Pillow
    raises on a bad file (not only ``OSError``: ``SyntaxError``, ``struct.error``, ...)."""
    with Image.open(path) as image:
        # Let the JPEG decoder shrink by 1/2..1/8 while decoding (DCT scaling, far cheaper
        # than a full decode), keeping at least twice the target size for the Lanczos pass.
        image.draft("RGB", (2 * resolution, 2 * resolution))
        image = _to_rgb(ImageOps.exif_transpose(image))
        return np.asarray(centre_crop_resize(image, resolution), np.uint8)


class ImageFolderSource:
    """``len`` images from a folder; ``source[i]`` decodes the i-th file.

    Items are ``{"image": uint8 (resolution, resolution, 3), "label": 0}``.

    Args:
        root: the folder.
        resolution: the side of the square images.
        bad_images: what to do with a file that cannot be read: "fail" (a `DatasetError`
            naming it, at opening if its header is bad, else when it is read) or "skip"
            (every file is decoded once now; those that fail are left out and counted).

    Attributes:
        paths: the files read, in index order (the skipped ones left out).
        conversions: ``{kind: count}`` of the conversions to RGB worth knowing about.
        skipped: ``(path, reason)`` of each file left out.

    Raises:
        DatasetError: no folder, no image, no readable image, or (``"fail"``) a file that is
            not an image.
    """

    def __init__(self, root: str, resolution: int = 64, *, bad_images: str = "fail"):
        if resolution < 1:
            raise DatasetError(f"resolution must be positive, got {resolution}")
        if bad_images not in BAD_IMAGES:
            raise DatasetError(
                f"bad_images must be one of {', '.join(BAD_IMAGES)}, got {bad_images!r}")
        self.root = root
        self.resolution = resolution
        self.bad_images = bad_images
        paths = list_images(root)
        # Threads overlap the file reads, and Pillow's decoders release the GIL.
        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
            checked = list(pool.map(self._check, paths))
        failed = [(p, reason) for p, (_, reason) in zip(paths, checked) if reason is not None]
        if failed and bad_images == "fail":
            them = "it" if len(failed) == 1 else "them"
            raise DatasetError(
                f"{len(failed)} of {len(paths):,} images in {root} cannot be read: "
                f"{self._named(failed)}; {_SKIP_HINT.format(them)}")
        if len(failed) == len(paths):
            raise DatasetError(
                f"None of the {len(paths):,} images in {root} can be read: "
                f"{self._named(failed)}")
        self.paths = [p for p, (_, reason) in zip(paths, checked) if reason is None]
        self.skipped = failed
        self.conversions = dict(collections.Counter(
            kind for kinds, reason in checked if reason is None for kind in kinds))
        if self.notes:
            warnings.warn(f"Image folder {root}: {self.notes}", UserWarning, stacklevel=2)

    def _check(self, path: str) -> tuple[list[str], str | None]:
        """The file's conversions, and why it cannot be read (None if it can)."""
        try:
            with Image.open(path) as image:
                kinds = _kinds(image, self.resolution)
            if self.bad_images == "skip":
                _decode(path, self.resolution)
        except Exception as e:  # noqa: BLE001 - any decoder failure is the file's fault
            return [], _reason(e)
        return kinds, None

    def _named(self, failed: list[tuple[str, str]]) -> str:
        named = "; ".join(f"{os.path.relpath(p, self.root)} ({reason})"
                          for p, reason in failed[:_SHOWN])
        return named + (f"; and {len(failed) - _SHOWN:,} more" if len(failed) > _SHOWN else "")

    @property
    def notes(self) -> str:
        """What was converted and what was skipped, e.g. "converted 3 RGBA (alpha dropped),
        1 CMYK (no colour profile applied); skipped 1 unreadable: x.png (...)"; empty if
        nothing was."""
        parts = []
        if self.conversions:
            parts.append("converted " + ", ".join(
                f"{n:,} {kind}"
                for kind, n in sorted(self.conversions.items(), key=lambda kn: (-kn[1], kn[0]))))
        if self.skipped:
            parts.append(f"skipped {len(self.skipped):,} unreadable: {self._named(self.skipped)}")
        return "; ".join(parts)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        try:
            image = _decode(path, self.resolution)
        except Exception as e:  # noqa: BLE001 - any decoder failure is the file's fault
            hint = (_SKIP_HINT.format("it") if self.bad_images == "fail" else
                    "it decoded when the folder was opened: was it changed since?")
            raise DatasetError(f"Cannot decode image {path}: {_reason(e)}; {hint}") from e
        return {"image": image, "label": 0}

    def __repr__(self) -> str:
        return f"ImageFolderSource({self.root!r}, {len(self)} images, {self.resolution} px)"
