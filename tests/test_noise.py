"""Latent noise: the three distributions, figure rows, latent walks."""

import jax
import numpy as np
import pytest

from jaxgan import noise


@pytest.mark.parametrize("dist, low, high, mean, std", [
    ("normal", -np.inf, np.inf, 0.0, 1.0),
    ("uniform", -1.0, 1.0, 0.0, 1 / np.sqrt(3)),
    ("unit_uniform", 0.0, 1.0, 0.5, 1 / np.sqrt(12)),
])
def test_each_distribution_has_its_shape_and_range(dist, low, high, mean, std):
    z = np.asarray(noise.sample_z(jax.random.PRNGKey(0), (2000, 3), dist))
    assert z.shape == (2000, 3) and (z >= low).all() and (z <= high).all()
    assert abs(z.mean() - mean) < 0.05 and abs(z.std() - std) < 0.05
    if dist == "normal":
        assert (np.abs(z) > 1.0).mean() > 0.25  # unbounded: about 32% beyond one std
    np.testing.assert_array_equal(z, noise.sample_z(jax.random.PRNGKey(0), (2000, 3), dist))


def test_an_unknown_distribution_lists_the_valid_ones():
    with pytest.raises(ValueError, match="normal, uniform, unit_uniform"):
        noise.sample_z(jax.random.PRNGKey(0), (2, 2), "cauchy")


def test_class_rows_and_figure_noise():
    np.testing.assert_array_equal(noise.class_rows(3, 7), [0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(noise.class_rows(2, 4), [0, 0, 1, 1])
    np.testing.assert_array_equal(noise.class_rows(10, 80), np.repeat(np.arange(10), 8))
    a = noise.figure_noise(4, 5, 2, "normal")
    np.testing.assert_array_equal(a, noise.figure_noise(4, 5, 2, "normal"))
    assert not np.allclose(a, noise.sample_z(jax.random.PRNGKey(4), (5, 2)))  # not the training stream


def test_interpolation_strips_walk_in_straight_lines():
    z = np.asarray(noise.interpolation_strips(jax.random.PRNGKey(1), 4, 3, 5, "uniform"))
    assert z.shape == (3 * 5, 4)
    walks = z.reshape(3, 5, 4)
    steps = np.diff(walks, axis=1)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[:, :1], steps.shape), atol=1e-6)
    assert not np.allclose(walks[:, 0], walks[:, -1])
    np.testing.assert_allclose(walks[:, 2], (walks[:, 0] + walks[:, -1]) / 2, atol=1e-6)


def test_interpolation_strips_end_at_a_pair_of_draws_of_the_distribution():
    key = jax.random.PRNGKey(1)
    z = np.asarray(noise.interpolation_strips(key, 4, 3, 5, "unit_uniform")).reshape(3, 5, 4)
    # t = 0 and t = 1 are included: each strip starts and ends at a draw from ``dist``,
    # the start from the key's first half, the end from its second.
    k0, k1 = jax.random.split(key)
    np.testing.assert_array_equal(z[:, 0], noise.sample_z(k0, (3, 1, 4), "unit_uniform")[:, 0])
    np.testing.assert_allclose(z[:, -1], noise.sample_z(k1, (3, 1, 4), "unit_uniform")[:, 0],
                               atol=1e-6)
    assert ((z >= 0) & (z <= 1)).all()
    assert not np.allclose(z[0, 0], z[1, 0])  # each strip its own pair
    np.testing.assert_array_equal(z.reshape(15, 4),
                                  noise.interpolation_strips(key, 4, 3, 5, "unit_uniform"))
