"""The ring-8 and grid-25 mixtures (PacGAN's settings)."""

import itertools

import chex
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan.data import DatasetError, load_dataset, mixture_dataset, mixtures


def test_ring8_has_8_distinct_modes_on_the_unit_circle():
    c = mixtures.centres("ring8")
    assert c.shape == (8, 2) and c.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-6)
    distances = np.linalg.norm(c[:, None] - c[None], axis=-1)[~np.eye(8, dtype=bool)]
    # Neighbours on a unit octagon are 2 sin(pi / 8) apart: no duplicated endpoint.
    np.testing.assert_allclose(distances.min(), 2 * np.sin(np.pi / 8), rtol=1e-5)
    np.testing.assert_allclose(c[0], [1.0, 0.0], atol=1e-7)
    assert mixtures.std("ring8") == 0.01


def test_ring_radius_parameter():
    c = mixtures.centres("ring8", radius=2.0)  # Unrolled GAN's paper.
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 2.0, rtol=1e-6)
    ds = mixture_dataset("ring8", radius=2.0, std=0.02)
    assert ds.std == 0.02 and ds.num_classes == 8


def test_grid25():
    c = mixtures.centres("grid25")
    assert c.shape == (25, 2)
    expected = {(float(a), float(b)) for a, b in itertools.product([-4, -2, 0, 2, 4], repeat=2)}
    assert {tuple(map(float, p)) for p in c} == expected
    assert mixtures.std("grid25") == 0.05


def test_unknown_mixture():
    with pytest.raises(DatasetError, match="ring8"):
        mixtures.centres("ring7")


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(["ring8", "grid25"]), seed=st.integers(0, 2**31 - 1))
def test_samples_lie_near_their_own_centre(name, seed):
    c, s = mixtures.centres(name), mixtures.std(name)
    x, y = mixtures.sample_mixture(jax.random.key(seed), 256, c, s)
    chex.assert_shape(x, (256, 2))
    chex.assert_type([x, y], [np.float32, np.int32])
    x, y = np.asarray(x), np.asarray(y)
    assert y.min() >= 0 and y.max() < len(c)
    # 6 std in 2-D: exceeded with probability exp(-18) per sample.
    assert np.all(np.linalg.norm(x - c[y], axis=1) < 6 * s)
    nearest = np.argmin(np.linalg.norm(x[:, None] - c[None], axis=-1), axis=1)
    np.testing.assert_array_equal(nearest, y)


def test_sample_std_and_uniform_modes():
    c = mixtures.centres("grid25")
    x, y = mixtures.sample_mixture(jax.random.key(0), 50_000, c, 0.05)
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_allclose((x - c[y]).std(), 0.05, rtol=0.02)
    counts = np.bincount(y, minlength=25)
    assert counts.min() > 0.8 * 2000 and counts.max() < 1.2 * 2000


def test_sample_mixture_is_pure_and_jittable():
    c = mixtures.centres("ring8")
    f = jax.jit(mixtures.sample_mixture, static_argnums=1)
    a = f(jax.random.key(3), 16, c, 0.01)
    b = mixtures.sample_mixture(jax.random.key(3), 16, c, 0.01)
    chex.assert_trees_all_close(a, b)


def test_mixture_dataset_batches_are_deterministic_per_seed():
    ds = load_dataset("ring8")
    assert ds.example_shape == (2,) and ds.num_examples is None and ds.num_classes == 8
    assert ds.steps_per_epoch(512) == 1000
    first = [next(ds.batches(64, seed=1)) for _ in range(2)]
    chex.assert_trees_all_equal(first[0], first[1])
    other = next(ds.batches(64, seed=2))
    assert not np.array_equal(first[0]["x"], other["x"])
    np.testing.assert_array_equal(first[0]["index"], -1)
    # Batch s is sample_mixture(fold_in(key(seed), s), ...).
    it = ds.batches(64, seed=1, start_step=5)
    x, y = mixtures.sample_mixture(jax.random.fold_in(jax.random.key(1), 5), 64, ds.centres,
                                   ds.std)
    batch = next(it)
    np.testing.assert_array_equal(batch["x"], x)
    np.testing.assert_array_equal(batch["y"], y)


@pytest.mark.parametrize("start,shard", [(0, (0, 1)), (7, (0, 1)), (23, (1, 2))])
def test_mixture_batches_drawn_in_blocks_are_the_step_by_step_ones(start, shard):
    """`batches` draws `MIXTURE_BLOCK` steps a call; batch s is still `map_dataset`'s s-th,
    bit for bit, from any start (inside a block too) and for any reader's rows."""
    from jaxgan.data.pipeline import MIXTURE_BLOCK

    ds = load_dataset("ring8")
    steps = 2 * MIXTURE_BLOCK + 3
    reference = ds.map_dataset(64, seed=4, shard=shard)
    got = list(itertools.islice(ds.batches(64, seed=4, start_step=start, shard=shard), steps))
    for i, batch in enumerate(got):
        want = reference[start + i]
        assert set(batch) == set(want)
        for k in want:
            assert batch[k].dtype == want[k].dtype, k
            np.testing.assert_array_equal(batch[k], want[k], err_msg=f"step {start + i}: {k}")


def test_mixture_has_no_arrays_and_no_resolution():
    with pytest.raises(DatasetError, match="infinite"):
        load_dataset("grid25").arrays()
    with pytest.raises(DatasetError, match="resolution"):
        load_dataset("grid25", resolution=32)
