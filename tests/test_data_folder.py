"""Image folders: discovery, decoding, geometry, conversions, and files that cannot be read."""

import io
import warnings

import numpy as np
import pytest
from damage import damage
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from jaxgan import configs
from jaxgan.data import DatasetError, load_dataset
from jaxgan.data import folder as folder_module
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


# --------------------------------------------------------------------------------------
# Conversions to 8-bit RGB, reported once
# --------------------------------------------------------------------------------------


def _no_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("expand", [lambda v: v * 257, lambda v: v << 8])
def test_16_bit_png_keeps_its_content(tmp_path, expand):
    # Each column j holds the 16-bit expansion of j: the image must read back as j, where
    # convert("RGB") alone makes every column but the first 255.
    ramp = np.tile(np.arange(256, dtype=np.uint16), (256, 1))
    image = Image.fromarray(expand(ramp).astype(np.uint16))
    assert image.mode == "I;16"
    image.save(tmp_path / "deep.png")
    with pytest.warns(UserWarning, match=r"converted 1 16-bit \(scaled to 8\)"):
        source = ImageFolderSource(str(tmp_path), 256)
    out = source[0]["image"]
    assert out.dtype == np.uint8 and out.shape == (256, 256, 3)
    np.testing.assert_array_equal(out, np.repeat(ramp[..., None], 3, axis=2))


def test_32_bit_integer_and_float_images_are_scaled(tmp_path):
    # Pillow writes neither into a PNG; scraped folders hold TIFFs named .png.
    ramp = np.tile(np.arange(256), (16, 1))
    Image.fromarray((ramp * 257).astype(np.int32)).save(tmp_path / "a_int.png", format="TIFF")
    Image.fromarray((ramp / 255).astype(np.float32)).save(tmp_path / "b_float.png",
                                                           format="TIFF")
    with pytest.warns(UserWarning) as record:
        source = ImageFolderSource(str(tmp_path), 16)
    assert "1 32-bit integer" in source.notes and "1 floating point" in source.notes
    assert len(record) == 1
    for i in range(2):
        # The ramp's centred 16x16 square, columns 120..135, as read at its own size.
        np.testing.assert_array_equal(source[i]["image"][..., 1], ramp[:, 120:136])


def test_every_mode_loads_as_rgb_and_is_reported_once(tmp_path):
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 30, 3), np.uint8))
    rgb.convert("RGBA").save(tmp_path / "rgba.png")
    rgb.convert("LA").save(tmp_path / "la.png")
    rgb.quantize(16).save(tmp_path / "palette.png")
    rgb.quantize(16).save(tmp_path / "palette_transparent.png", transparency=3)
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgb.convert("1").save(tmp_path / "bilevel.png")
    rgb.resize((1, 1)).save(tmp_path / "tiny.png")
    frames = [Image.fromarray(np.full((20, 20, 3), 60 * i, np.uint8)) for i in range(1, 4)]
    frames[0].save(tmp_path / "apng.png", save_all=True, append_images=frames[1:])
    # A GIF under a .jpg name, as scraped folders have them.
    frames[0].save(tmp_path / "gif.jpg", format="GIF", save_all=True,
                   append_images=frames[1:])
    rgb.save(tmp_path / "plain.png")
    rgb.convert("L").save(tmp_path / "grey.jpg")

    with pytest.warns(UserWarning) as record:
        ds = load_dataset(f"folder:{tmp_path}", resolution=16)
    notes = ds.source.notes
    assert [str(w.message) for w in record] == [f"Image folder {tmp_path}: {notes}"]
    for kind in ["1 RGBA (alpha dropped)", "1 grayscale+alpha (alpha dropped)",
                 "3 palette", "1 transparent colour (dropped)",
                 "1 CMYK (no colour profile applied)", "1 1-bit",
                 "2 animated (first frame)", "1 smaller than 16 px (upscaled)"]:
        assert kind in notes, (kind, notes)
    assert "grey" not in notes and notes in ds.description
    for i in range(len(ds.source)):
        image = ds.source[i]["image"]
        assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    # The animated files give their first frame.
    first = [ds.source.paths.index(str(tmp_path / n)) for n in ("apng.png", "gif.jpg")]
    for i in first:
        assert abs(int(ds.source[i]["image"].mean()) - 60) <= 2


def test_plain_rgb_and_grayscale_folder_warns_nothing(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 20), np.uint8)).save(tmp_path / "b.jpg")
    ds = _no_warning(load_dataset, str(tmp_path), resolution=16)
    assert ds.source.notes == "" and ds.description.endswith("RGB")


# --------------------------------------------------------------------------------------
# Files that cannot be read: "fail" names them, "skip" leaves them out, counted
# --------------------------------------------------------------------------------------


def _png(seed=0, size=(12, 10)) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(seed=0, size=(12, 10)) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), np.uint8)).save(buffer, "JPEG",
                                                                     quality=80)
    return buffer.getvalue()


_VALID = {"png": _png(), "jpg": _jpeg()}


def _damaged_folder(root):
    """a.png and d.jpg readable; b.png not an image; c.png truncated in its pixel data."""
    (root / "a.png").write_bytes(_png(1))
    (root / "b.png").write_bytes(b"not a png")
    (root / "c.png").write_bytes(_png(2)[:-30])
    (root / "d.jpg").write_bytes(_jpeg(3))
    return root


def test_fail_mode_names_a_file_that_is_no_image_and_suggests_skip(tmp_path):
    _damaged_folder(tmp_path)
    with pytest.raises(DatasetError) as e:
        load_dataset(str(tmp_path), resolution=8)
    assert str(e.value) == (
        f"1 of 4 images in {tmp_path} cannot be read: b.png (not an image Pillow can read: "
        "unknown format or corrupt header); fix or delete it, or pass --bad-images skip "
        "(bad_images='skip') to leave unreadable images out")


def test_fail_mode_names_a_truncated_file_when_it_is_read(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(1))
    (tmp_path / "c.png").write_bytes(_png(2)[:-30])
    source = ImageFolderSource(str(tmp_path), 8)  # headers are fine: no decoding yet
    assert source[0]["image"].shape == (8, 8, 3)
    with pytest.raises(DatasetError) as e:
        source[1]
    assert str(e.value) == (
        f"Cannot decode image {tmp_path / 'c.png'}: image file is truncated; fix or delete "
        "it, or pass --bad-images skip (bad_images='skip') to leave unreadable images out")


def test_skip_mode_leaves_bad_files_out_and_reports_them_once(tmp_path):
    _damaged_folder(tmp_path)
    with pytest.warns(UserWarning) as record:
        ds = load_dataset(str(tmp_path), resolution=8, bad_images="skip")
    assert ds.num_examples == 2
    assert ds.source.paths == [str(tmp_path / "a.png"), str(tmp_path / "d.jpg")]
    notes = ("skipped 2 unreadable: b.png (not an image Pillow can read: unknown format or "
             "corrupt header); c.png (image file is truncated)")
    assert ds.source.notes == notes and ds.description.endswith(notes)
    assert [str(w.message) for w in record] == [f"Image folder {tmp_path}: {notes}"]
    x, _ = ds.arrays()
    assert x.shape == (2, 8, 8, 3)


def test_a_folder_of_only_broken_files_is_an_error_in_both_modes(tmp_path):
    (tmp_path / "b.png").write_bytes(b"not a png")
    (tmp_path / "c.png").write_bytes(_png(2)[:-30])
    with pytest.raises(DatasetError, match=r"None of the 2 images in .* can be read: b\.png "
                                           r"\(not an image .*\); c\.png \(image file is "
                                           r"truncated\)"):
        load_dataset(str(tmp_path), bad_images="skip")
    with pytest.raises(DatasetError, match=r"1 of 2 images .* b\.png"):
        load_dataset(str(tmp_path), bad_images="fail")


def test_many_bad_files_are_counted_and_a_few_named(tmp_path):
    for i in range(8):
        (tmp_path / f"bad{i}.png").write_bytes(b"")
    (tmp_path / "good.png").write_bytes(_png())
    with pytest.warns(UserWarning, match=r"skipped 8 unreadable: bad0\.png .*bad4\.png "
                                         r"\([^)]*\); and 3 more$"):
        ImageFolderSource(str(tmp_path), 8, bad_images="skip")


def test_bad_images_choices(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    assert configs.BAD_IMAGES == folder_module.BAD_IMAGES
    with pytest.raises(DatasetError, match=r"bad_images must be one of fail, skip, got 'ignore'"):
        load_dataset(str(tmp_path), bad_images="ignore")
    with pytest.raises(DatasetError, match="bad_images must be one of"):
        load_dataset("ring8", bad_images="Skip")  # checked whatever the dataset
    for cls in (configs.TrainConfig, configs.GLOConfig, configs.CONFIGS["dcgan"]):
        assert cls().bad_images == "fail"
        with pytest.raises(ValueError, match=r"bad_images must be one of \('fail', 'skip'\)"):
            cls(bad_images="ignore")


@pytest.mark.filterwarnings("ignore::UserWarning")  # damaged headers may convert or skip
@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(sorted(_VALID)), data=st.data())
def test_fuzzed_image_is_read_or_is_a_dataset_error(tmp_path_factory, kind, data):
    root = tmp_path_factory.mktemp("folder")
    (root / "a_good.png").write_bytes(_VALID["png"])
    damaged = root / f"b_damaged.{kind}"
    damaged.write_bytes(damage(_VALID[kind], data.draw))

    # "fail": the folder opens or its error names the file; each read gives an image or an
    # error naming the file.
    read = None
    try:
        source = ImageFolderSource(str(root), 8)
    except DatasetError as e:
        assert "b_damaged" in str(e) and "--bad-images skip" in str(e)
    else:
        assert len(source) == 2
        assert source[0]["image"].shape == (8, 8, 3)
        try:
            read = source[1]["image"]
        except DatasetError as e:
            assert str(damaged) in str(e) and "--bad-images skip" in str(e)
        else:
            assert read.shape == (8, 8, 3) and read.dtype == np.uint8

    # "skip": the good file always stays; the damaged one stays exactly when "fail" read it,
    # and then gives the same pixels.
    source = ImageFolderSource(str(root), 8, bad_images="skip")
    assert len(source) + len(source.skipped) == 2
    assert (len(source) == 2) == (read is not None)
    for i in range(len(source)):
        image = source[i]["image"]
        assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    if read is not None:
        np.testing.assert_array_equal(source[1]["image"], read)
    else:
        assert source.skipped[0][0] == str(damaged)
