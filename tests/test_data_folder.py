"""Image folders: discovery, decoding, geometry."""

import numpy as np
import pytest
from PIL import Image

from jaxgan.data import DatasetError, load_dataset
from jaxgan.data.folder import ImageFolderSource, list_images
from jaxgan.data.sources import ArraySource, ResizedSource, centre_crop_resize


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (50, 80, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (90, 40), np.uint8), "L").save(tmp_path / "b.PNG")
    Image.fromarray(rng.integers(0, 256, (33, 33, 4), np.uint8), "RGBA").save(
        tmp_path / "sub" / "c.png")
    Image.fromarray(rng.integers(0, 256, (120, 100, 3), np.uint8)).save(
        tmp_path / "sub" / "deeper" / "d.JPEG", quality=90)
    Image.fromarray(rng.integers(0, 256, (64, 48, 3), np.uint8)).save(tmp_path / "e.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._a.png").write_bytes(b"macOS resource fork")
    return tmp_path


def test_lists_images_recursively_any_case_sorted(folder):
    names = [p.relative_to(folder).as_posix() for p in map(type(folder), list_images(folder))]
    assert names == ["a.png", "b.PNG", "e.jpg", "sub/c.png", "sub/deeper/d.JPEG"]


@pytest.mark.parametrize("resolution", [16, 64])
def test_mixed_sizes_and_modes_give_rgb_squares(folder, resolution):
    ds = load_dataset(f"folder:{folder}", resolution=resolution)
    assert ds.example_shape == (resolution, resolution, 3)
    assert ds.num_examples == 5 and ds.num_classes is None
    x, y = ds.arrays()
    assert x.shape == (5, resolution, resolution, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    np.testing.assert_array_equal(y, 0)
    # The grayscale PNG is replicated across channels.
    np.testing.assert_array_equal(x[1, ..., 0], x[1, ..., 2])
    batch = next(ds.batches(2, seed=0))
    assert batch["x"].shape == (2, resolution, resolution, 3)
    assert ds.steps_per_epoch(2) == 2


def test_plain_path_and_default_resolution(folder):
    ds = load_dataset(str(folder))
    assert ds.example_shape == (64, 64, 3)
    assert "5 images" in ds.description


def test_empty_folder_says_which_extensions(tmp_path):
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(DatasetError, match=r"no images.*\.jpg, \.jpeg, \.png"):
        load_dataset(f"folder:{tmp_path}")


def test_corrupt_image_names_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="bad.png"):
        ImageFolderSource(str(tmp_path), 8)[0]


def test_centre_crop_keeps_the_centre():
    # A 30x10 image whose middle 10x10 square is white and sides black.
    image = np.zeros((10, 30), np.uint8)
    image[:, 10:20] = 255
    out = np.asarray(centre_crop_resize(Image.fromarray(image), 5))
    # Lanczos reads a little past the square (its support), hence not exactly 255.
    assert out.shape == (5, 5) and out.min() > 230 and out.mean() > 245


def test_resized_source_for_mnist_like_arrays():
    images = np.zeros((2, 28, 28, 1), np.uint8)
    src = ResizedSource(ArraySource(images, np.array([1, 2])), 32)
    item = src[1]
    assert item["image"].shape == (32, 32, 1) and item["label"] == 2
