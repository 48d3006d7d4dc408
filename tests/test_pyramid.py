"""The Laplacian pyramid and GLO's losses: shapes, exactness, hand values, the paper's facts."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxgan import pyramid


def strokes(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """Digit-like images: 1-3 thick bright segments on a dark background, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.full((n, size, size, 1), -1.0, np.float32)
    for i in range(n):
        ink = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(1, 4)):
            p, q = rng.uniform(4, size - 4, 2), rng.uniform(4, size - 4, 2)
            t = np.clip(((yy - p[0]) * (q[0] - p[0]) + (xx - p[1]) * (q[1] - p[1]))
                        / max(np.sum((q - p) ** 2), 1e-6), 0, 1)
            dist = np.hypot(yy - p[0] - t * (q[0] - p[0]), xx - p[1] - t * (q[1] - p[1]))
            ink = np.maximum(ink, np.clip(2.0 - dist, 0, 1))  # ~3 px wide, antialiased
        out[i, ..., 0] = 2 * ink - 1
    return out


def shapes(shape, levels):
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return [p.shape for p in jax.eval_shape(lambda a: pyramid.laplacian_pyramid(a, levels), x)]


def test_pyramid_shapes():
    assert shapes((2, 28, 28, 1), 4) == [(2, 28, 28, 1), (2, 14, 14, 1), (2, 7, 7, 1), (2, 4, 4, 1)]
    assert [s[1] for s in shapes((3, 32, 32, 3), 5)] == [32, 16, 8, 4, 2]
    assert shapes((3, 32, 32, 3), 1) == [(3, 32, 32, 3)]
    with pytest.raises(ValueError, match="too many"):
        shapes((1, 4, 4, 1), 4)


_pyramid4 = jax.jit(lambda x: pyramid.laplacian_pyramid(x, 4))
_round_trip = jax.jit(lambda x: pyramid.reconstruct(pyramid.laplacian_pyramid(x, 4)))


@pytest.mark.parametrize("size", [28, 13])
def test_pyramid_is_invertible_and_constants_live_in_the_residual(size):
    x = jax.random.uniform(jax.random.PRNGKey(size), (2, size, size, 3), minval=-1, maxval=1)
    chex.assert_trees_all_close(_round_trip(x), x, atol=1e-5)
    flat = _pyramid4(jnp.full((1, size, size, 1), 0.3))
    for band in flat[:-1]:
        chex.assert_trees_all_close(band, jnp.zeros_like(band), atol=1e-6)
    chex.assert_trees_all_close(flat[-1], jnp.full_like(flat[-1], 0.3), atol=1e-6)


class LossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_hand_values(self):
        x = jnp.zeros((1, 8, 8, 1))
        # A constant difference c lives only in the 2x2 residual (level 2), weighted 2^(2*2).
        lap1 = self.variant(lambda a, b: pyramid.lap1(a, b, levels=3, weight_exponent=2.0))
        chex.assert_trees_all_close(lap1(x + 0.5, x), jnp.array([0.5 * 4 * 16]), rtol=1e-5)
        fine = self.variant(lambda a, b: pyramid.lap1(a, b, levels=3, weight_exponent=-2.0))
        chex.assert_trees_all_close(fine(x + 0.5, x), jnp.array([0.5 * 4 / 16]), rtol=1e-5)
        # One level is plain L1.
        y = x.at[0, 3, 4, 0].set(-2.0)
        one = self.variant(lambda a, b: pyramid.lap1(a, b, levels=1))
        chex.assert_trees_all_close(one(x, y), jnp.array([2.0]))
        l2 = self.variant(pyramid.l2)
        chex.assert_trees_all_close(l2(x, y), jnp.array([4.0]))
        both = self.variant(lambda a, b: pyramid.reconstruction_loss(
            a, b, lap1_weight=0.5, l2_weight=2.0, levels=1, pixel_mean=True))
        chex.assert_trees_all_close(both(x, y), jnp.array([(0.5 * 2.0 + 2.0 * 4.0) / 64]))

    def test_gradients(self):
        # float64 and a small step, so finite differences do not straddle |.|'s kink.
        with jax.enable_x64(True):
            x, y = (jax.random.uniform(k, (2, 16, 16, 1), jnp.float64, minval=-1, maxval=1)
                    for k in jax.random.split(jax.random.PRNGKey(0), 2))
            loss = jax.jit(lambda a: pyramid.reconstruction_loss(a, y, levels=3, l2_weight=0.5))
            check_grads(loss, (x,), order=1, modes=["rev"], eps=1e-6)


_lap1 = jax.jit(pyramid.lap1, static_argnames=("levels", "weight_exponent"))
images = st.integers(0, 2**31 - 1).map(
    lambda s: np.random.default_rng(s).uniform(-1, 1, (2, 12, 12, 2)).astype(np.float32))


@settings(max_examples=20, deadline=None)
@given(images, images, st.sampled_from([1, 2, 3]), st.sampled_from([2.0, 0.0, -2.0]))
def test_lap1_is_zero_iff_equal_and_symmetric(x, y, levels, e):
    assume(not np.array_equal(x, y))
    f = lambda a, b: _lap1(a, b, levels=levels, weight_exponent=e)  # noqa: E731
    chex.assert_trees_all_equal(f(x, x), jnp.zeros(2))
    d = f(x, y)
    assert np.all(np.asarray(d) > 0)
    chex.assert_trees_all_close(d, f(y, x), rtol=1e-6)
    # A single changed pixel is seen: the pyramid is invertible.
    z = x.copy()
    z[1, 5, 7, 1] += 1e-2
    assert float(f(x, z)[1]) > 0 and float(f(x, z)[0]) == 0


def relative_shift_costs(x, *, levels=4, weight_exponent=2.0):
    """Each distance (made a norm: sqrt of L2) of a one-pixel shift, over its value for an
    unrelated image (the next one in the batch)."""
    x = jnp.asarray(x)
    shifted, other = jnp.roll(x, 1, axis=2), jnp.roll(x, 1, axis=0)
    lap = lambda a, b: _lap1(a, b, levels=levels, weight_exponent=weight_exponent)  # noqa
    l2 = jax.jit(pyramid.l2)
    return (np.asarray(lap(x, shifted) / lap(x, other)),
            np.sqrt(np.asarray(l2(x, shifted) / l2(x, other))))


def test_a_one_pixel_shift_costs_less_under_lap1_than_under_l2():
    # Bojanowski et al. Sec. 3.3: Lap1 tolerates small misalignments that L2 punishes, which
    # is why L2 reconstructions are blurrier. Both are compared as norms (degree-1
    # homogeneous: L2's square root), relative to their value for an unrelated image.
    lap, l2 = relative_shift_costs(strokes(64))
    assert np.mean(lap < l2) > 0.9 and np.mean(lap) < 0.9 * np.mean(l2)
    # The 2^(-2j) reading (fine levels dominate) loses the property: the default is 2^(2j).
    lap_fine, _ = relative_shift_costs(strokes(64), weight_exponent=-2.0)
    assert np.mean(lap_fine) > np.mean(lap)


def test_the_shift_fact_on_real_digits(mnist_dir):
    from jaxgan.data import load_dataset

    ds = load_dataset("mnist", data_dir=str(mnist_dir), split="test")
    x = np.stack([ds.source[i]["image"] for i in range(256)]).astype(np.float32) / 127.5 - 1
    lap, l2 = relative_shift_costs(x)
    assert np.mean(lap < l2) > 0.95 and np.mean(lap) < 0.85 * np.mean(l2)
