"""DiffAugment (Zhao et al. 2020, arXiv:2006.10738): the official code's transformations,
ranges and positions, differentiability, and per-example, key-driven randomness."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import augment, configs
from jaxgan.augment import POLICIES, diff_augment

KEY = jax.random.key(0)
SINGLE = [(p,) for p in POLICIES]
# One small image batch shape for the whole-policy tests: JAX compiles each operation once
# per shape, so sharing it keeps this file fast.
SHAPE = (8, 8, 8, 3)


def images(shape, key=1, low=-1.0, high=1.0):
    return jax.random.uniform(jax.random.key(key), shape, jnp.float32, low, high)


def np_translate(x, dy, dx):
    """Reference: ``out[i, j] = x[i - dy, j - dx]`` inside the image, 0 outside."""
    x = np.asarray(x)
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[:, i, j] = x[:, i - dy, j - dx]
    return out


def rectangle(h, w, cy, cx, size):
    """The official cutout region: the square around ``(cy, cx)`` clipped to the image."""
    rows = (np.arange(h) >= cy - size[0] // 2) & (np.arange(h) < cy - size[0] // 2 + size[0])
    cols = (np.arange(w) >= cx - size[1] // 2) & (np.arange(w) < cx - size[1] // 2 + size[1])
    return rows[:, None] & cols[None, :]


# --- off, policies, errors -----------------------------------------------------------


@pytest.mark.parametrize("off", [(), "", " , "])
def test_identity_when_off(off):
    x = images(SHAPE)
    assert diff_augment(x, KEY, policy=off) is x
    # Off means off for any data, e.g. the 2-D points of a mixture run.
    points = jnp.ones((5, 2))
    assert diff_augment(points, KEY, policy=off) is points


@settings(max_examples=20, deadline=None)
@given(st.permutations(POLICIES), st.integers(1, 3), st.sampled_from([",", "/", " , "]))
def test_string_policies_parse_like_tuples(order, k, sep):
    names = tuple(order[:k])
    assert configs.parse_diffaug(sep.join(names)) == names
    assert configs.parse_diffaug(list(names)) == names


def test_string_policy_gives_the_tuples_images():
    x = images(SHAPE)
    want = diff_augment(x, KEY, policy=("color", "translation"))
    for spelling in ("color,translation", "color/translation", " color , translation "):
        chex.assert_trees_all_equal(diff_augment(x, KEY, policy=spelling), want)


def test_bad_inputs_raise_helpfully():
    with pytest.raises(ValueError, match=r"images \(N, H, W, C\).*\(16, 2\)"):
        diff_augment(jnp.zeros((16, 2)), KEY)
    with pytest.raises(ValueError, match=r"images \(N, H, W, C\)"):
        diff_augment(jnp.zeros((2, 4, 4)), KEY, policy="cutout")
    with pytest.raises(ValueError, match="'colour'.*color, translation, cutout"):
        diff_augment(jnp.zeros((2, 4, 4, 3)), KEY, policy="colour,cutout")
    with pytest.raises(ValueError, match="'zoom'.*color, translation, cutout"):
        diff_augment(jnp.zeros((2, 4, 4, 3)), KEY, policy=("zoom",))
    with pytest.raises(ValueError, match="'cutout' given more than once"):
        diff_augment(jnp.zeros((2, 4, 4, 3)), KEY, policy="cutout,color,cutout")
    with pytest.raises(ValueError, match="float images"):
        diff_augment(jnp.zeros((2, 4, 4, 3), jnp.uint8), KEY)


def test_policies_apply_in_the_given_order_with_keys_of_their_own():
    x = images(SHAPE)
    k = {name: augment.policy_key(KEY, name) for name in POLICIES}
    want = augment.cutout(augment.translation(augment.color(x, k["color"]), k["translation"]),
                          k["cutout"])
    chex.assert_trees_all_equal(diff_augment(x, KEY), want)
    # The caller's order, as in the official code; a policy's draw does not depend on
    # which others are on.
    chex.assert_trees_all_equal(diff_augment(x, KEY, policy="cutout,color"),
                                augment.color(augment.cutout(x, k["cutout"]), k["color"]))
    # The three keys differ (a shared key would correlate the draws).
    assert len({tuple(np.asarray(jax.random.key_data(v))) for v in k.values()}) == 3


# --- gradients ------------------------------------------------------------------------


@pytest.mark.parametrize("policy", SINGLE + [POLICIES])
def test_gradient_reaches_the_generator(policy):
    # g(z) = W z as (N, 8, 8, 3) images; D a fixed random linear map.
    n, zdim, shape = SHAPE[0], 5, SHAPE[1:]
    w = jax.random.normal(jax.random.key(1), (zdim, int(np.prod(shape)))) * 0.1
    z = jax.random.normal(jax.random.key(2), (n, zdim))
    d = jax.random.normal(jax.random.key(3), (int(np.prod(shape)),))

    def loss(w):
        fake = (z @ w).reshape((n,) + shape)
        return jnp.sum(diff_augment(fake, KEY, policy=policy).reshape(n, -1) @ d)

    grad = jax.grad(loss)(w)
    assert np.all(np.isfinite(grad))
    assert float(jnp.linalg.norm(grad)) > 1e-3


def test_translate_gradient_moves_back_whole():
    # The gradient of a gather: each output pixel's gradient lands, unscaled, on the one
    # input pixel it came from (no interpolation); pixels shifted out get none.
    x, v = images((2, 5, 4, 2)), images((2, 5, 4, 2), key=2)
    dy, dx = jnp.array([1, -2]), jnp.array([-3, 1])
    grad = jax.grad(lambda x: jnp.sum(augment.translate(x, dy, dx) * v))(x)
    want = np.stack([np_translate(v[i:i + 1], -int(dy[i]), -int(dx[i]))[0] for i in range(2)])
    chex.assert_trees_all_equal(np.asarray(grad), want)


def test_cut_gradient_is_the_mask():
    x, v = images((2, 8, 8, 1)), images((2, 8, 8, 1), key=2)
    cy, cx = jnp.array([3, 0]), jnp.array([2, 7])
    grad = jax.grad(lambda x: jnp.sum(augment.cut(x, cy, cx, size=(3, 3)) * v))(x)
    keep = ~np.stack([rectangle(8, 8, 3, 2, (3, 3)), rectangle(8, 8, 0, 7, (3, 3))])[..., None]
    chex.assert_trees_all_equal(np.asarray(grad), np.where(keep, v, 0.0))


# --- translation ---------------------------------------------------------------------


def test_translate_by_hand():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    out = augment.translate(x, jnp.array([1]), jnp.array([-1]))[0, ..., 0]
    chex.assert_trees_all_equal(out, jnp.array([[0.0, 0, 0, 0],
                                                [1, 2, 3, 0],
                                                [5, 6, 7, 0],
                                                [9, 10, 11, 0]]))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(-6, 6), st.integers(-6, 6)), min_size=2, max_size=2))
def test_translate_matches_the_reference(shifts):
    x = images((2, 5, 4, 2))
    out = augment.translate(x, jnp.array([s[0] for s in shifts]),
                            jnp.array([s[1] for s in shifts]))
    want = np.concatenate([np_translate(x[i:i + 1], *s) for i, s in enumerate(shifts)])
    chex.assert_trees_all_equal(np.asarray(out), want)


def test_translation_shifts_whole_pixels_in_the_official_range():
    # 1/8 of 12 rows rounds to 2 (official int(12 / 8 + 0.5)); 1/8 of 8 columns is 1.
    x = images((256, 12, 8, 2), low=0.1)  # no zeros: only the padding is zero
    out = np.asarray(augment.translation(x, KEY))
    candidates = list(itertools.product(range(-4, 5), range(-4, 5)))
    moved = np.stack([np_translate(x, dy, dx) for dy, dx in candidates], axis=1)
    match = np.all(moved == out[:, None], axis=(2, 3, 4))  # (N, candidates)
    # Exactly one whole-pixel shift per example: moved, border zero, nothing interpolated.
    chex.assert_trees_all_equal(match.sum(axis=1), np.ones(len(x), int))
    found = [candidates[j] for j in match.argmax(axis=1)]
    dys, dxs = zip(*found)
    assert set(dys) == set(range(-2, 3)) and set(dxs) == {-1, 0, 1}
    chex.assert_trees_all_equal(augment.translation_shifts(KEY, x.shape),
                                (jnp.array(dys), jnp.array(dxs)))


# --- cutout --------------------------------------------------------------------------


def test_cutout_size_is_rounded_like_the_official_code():
    assert augment.cutout_size((1, 32, 32, 3)) == (16, 16)
    assert augment.cutout_size((1, 9, 7, 3)) == (5, 4)  # int(4.5 + 0.5), int(3.5 + 0.5)


def test_cut_by_hand():
    x = images((2, 8, 8, 1), low=0.1)
    out = np.asarray(augment.cut(x, jnp.array([4, 4]), jnp.array([4, 4]), size=(4, 4)))
    erased = np.all(out == 0, axis=-1)[0]
    want = np.zeros((8, 8), bool)
    want[2:6, 2:6] = True
    chex.assert_trees_all_equal(erased, want)
    chex.assert_trees_all_equal(out[0][~want], np.asarray(x)[0][~want])


def test_cutout_erases_a_clipped_square_at_an_official_centre():
    h, w = 10, 7
    size = augment.cutout_size((1, h, w, 1))
    assert size == (5, 4)
    x = np.asarray(images((256, h, w, 2), low=0.1))
    out = np.asarray(augment.cutout(jnp.asarray(x), KEY))
    # Centres the official code draws: [0, side - size % 2], i.e. rows 0..9, columns 0..7;
    # search a wider range, so that a centre outside it is caught.
    candidates = list(itertools.product(range(-4, h + 4), range(-4, w + 4)))
    masks = np.stack([rectangle(h, w, cy, cx, size) for cy, cx in candidates])
    centres, areas = [], []
    for i in range(len(x)):
        erased = out[i] == 0
        assert np.array_equal(erased[..., 0], erased[..., 1])  # whole pixels, all channels
        np.testing.assert_array_equal(out[i][~erased], x[i][~erased])  # the rest untouched
        hits = [c for c, m in zip(candidates, masks) if np.array_equal(m, erased[..., 0])]
        assert hits, f"example {i}: the erased pixels are not a clipped {size} square"
        centres.append(hits[0])
        areas.append(int(erased[..., 0].sum()))
    cys, cxs = zip(*centres)
    assert set(cys) == set(range(h)) and set(cxs) == set(range(w + 1))
    # Whole squares inside; at a corner, 3 of the 5 rows and 2 of the 4 columns.
    assert max(areas) == size[0] * size[1] and min(areas) >= 3 * 2
    chex.assert_trees_all_equal(augment.cutout_centres(KEY, x.shape),
                                (jnp.array(cys), jnp.array(cxs)))


# --- colour --------------------------------------------------------------------------


def _factor(out, x, mean):
    """Per image, the ``f`` with ``out - mean = f (x - mean)`` (least squares)."""
    a, b = (out - mean).reshape(len(x), -1), (x - mean).reshape(len(x), -1)
    return np.sum(a * b, axis=1) / np.sum(b * b, axis=1)


def test_brightness_adds_one_draw_per_image_in_the_official_range():
    x = np.asarray(images((64, 4, 4, 3)))
    out = np.asarray(augment.brightness(jnp.asarray(x), KEY))
    shift = (out - x).reshape(64, -1)
    np.testing.assert_allclose(shift, shift[:, :1].repeat(shift.shape[1], 1), atol=1e-6)
    b = shift[:, 0]
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)) - x.mean(axis=(1, 2, 3)), b, atol=1e-6)
    assert np.all(b >= -0.5) and np.all(b < 0.5)
    assert b.min() < -0.4 and b.max() > 0.4  # U(-0.5, 0.5), not a narrower band


def test_saturation_keeps_each_pixels_channel_mean():
    x = np.asarray(images((64, 4, 4, 3)))
    out = np.asarray(augment.saturation(jnp.asarray(x), KEY))
    mean = x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(out.mean(axis=-1, keepdims=True), mean, atol=1e-6)
    s = _factor(out, x, mean)
    np.testing.assert_allclose(out - mean, s[:, None, None, None] * (x - mean), atol=1e-5)
    assert np.all(s >= 0) and np.all(s < 2)
    assert s.min() < 0.2 and s.max() > 1.8


def test_contrast_keeps_each_images_mean():
    x = np.asarray(images((64, 4, 4, 3)))
    out = np.asarray(augment.contrast(jnp.asarray(x), KEY))
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3), keepdims=True), mean, atol=1e-6)
    c = _factor(out, x, mean)
    np.testing.assert_allclose(out - mean, c[:, None, None, None] * (x - mean), atol=1e-5)
    assert np.all(c >= 0.5) and np.all(c < 1.5)
    assert c.min() < 0.6 and c.max() > 1.4


def test_color_is_brightness_saturation_contrast():
    x = images((64, 4, 4, 3))
    kb, ks, kc = jax.random.split(KEY, 3)
    want = augment.contrast(augment.saturation(augment.brightness(x, kb), ks), kc)
    chex.assert_trees_all_equal(augment.color(x, KEY), want)


# --- randomness, shapes, transformations ---------------------------------------------


@pytest.mark.parametrize("policy", SINGLE + [POLICIES])
def test_draws_are_per_example_and_keyed(policy):
    x = jnp.repeat(images((1,) + SHAPE[1:]), SHAPE[0], axis=0)  # copies of one image
    out = np.asarray(diff_augment(x, KEY, policy=policy))
    distinct = len({row.tobytes() for row in out})
    # Colour draws are continuous: all differ; translations / cutouts are few enough
    # (9 shifts, 81 centres at 8 x 8) that two may coincide.
    assert distinct == len(x) if "color" in policy else distinct >= len(x) // 2
    chex.assert_trees_all_equal(diff_augment(x, KEY, policy=policy), out)
    assert not np.array_equal(diff_augment(x, jax.random.key(7), policy=policy), out)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_shape_and_dtype_kept(dtype):
    x = images(SHAPE).astype(dtype)
    out = diff_augment(x, KEY)
    chex.assert_shape(out, x.shape)
    chex.assert_type(out, dtype)
    assert np.all(np.isfinite(np.asarray(out, np.float32)))


def test_jit_and_vmap_over_seeds():
    x = images(SHAPE)
    jitted = jax.jit(diff_augment, static_argnames="policy")
    # No host round trip: nothing is read back to Python while augmenting.
    with jax.transfer_guard_device_to_host("disallow"):
        out = jitted(x, KEY, policy="color,translation,cutout")
        eager = diff_augment(x, KEY)
    np.testing.assert_allclose(out, eager, atol=1e-6)

    # A leading seed axis: over the key alone, and over key and images.
    @jax.jit
    def per_seed(x, xs, keys):
        return (jax.vmap(lambda k: diff_augment(x, k))(keys),
                jax.vmap(lambda a, k: diff_augment(a, k))(xs, keys))

    keys = jax.random.split(KEY, 3)
    xs = jnp.stack([x, -x, 0.5 * x])
    same_x, both = per_seed(x, xs, keys)
    np.testing.assert_allclose(same_x, jnp.stack([diff_augment(x, k) for k in keys]), atol=1e-6)
    np.testing.assert_allclose(both, jnp.stack([diff_augment(a, k) for a, k in zip(xs, keys)]),
                               atol=1e-6)
