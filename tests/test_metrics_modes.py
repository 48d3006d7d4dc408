"""Tests of jaxgan.metrics.modes (PacGAN's protocol) on hand-placed points."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxgan.metrics.modes import mode_metrics

STD = 0.01
ANGLES = 2 * np.pi * np.arange(8) / 8  # endpoint excluded: 8 distinct modes
RING = np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1)


def _near(centre, n, rng):
    return centre + rng.normal(size=(n, 2)) * STD * 0.5


def test_all_modes_hit():
    rng = np.random.default_rng(0)
    x = np.concatenate([_near(c, 100, rng) for c in RING])
    m = mode_metrics(x, RING, STD)
    assert m["modes_covered"] == 8
    assert m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(m["counts"], np.full(8, 100))


def test_all_on_one_mode():
    x = _near(RING[3], 2500, np.random.default_rng(1))
    m = mode_metrics(x, RING, STD)
    assert m["modes_covered"] == 1
    assert m["high_quality"] == 1.0
    assert m["reverse_kl"] == pytest.approx(np.log(8))


def test_points_far_off():
    x = np.random.default_rng(2).normal(size=(100, 2)) * 0.01 + 5.0
    m = mode_metrics(x, RING, STD)
    assert m["modes_covered"] == 0
    assert m["high_quality"] == 0.0
    assert np.isnan(m["reverse_kl"])


def test_mixed_hand_computed():
    # 30 on mode 0, 10 on mode 1, 60 halfway between modes (low quality).
    rng = np.random.default_rng(3)
    between = (RING[0] + RING[1]) / 2
    x = np.concatenate([_near(RING[0], 30, rng), _near(RING[1], 10, rng),
                        np.tile(between, (60, 1))])
    m = mode_metrics(x, RING, STD)
    assert m["modes_covered"] == 2
    assert m["high_quality"] == pytest.approx(0.4)
    q = np.array([0.75, 0.25])  # empty modes: 0 log 0 = 0
    assert m["reverse_kl"] == pytest.approx((q * np.log(8 * q)).sum())


def test_three_std_boundary():
    x = RING[0] + np.array([[2.9 * STD, 0.0], [3.1 * STD, 0.0]])
    m = mode_metrics(x, RING, STD)
    assert m["high_quality"] == 0.5
    assert mode_metrics(x, RING, STD, num_std=4.0)["high_quality"] == 1.0


def test_min_count():
    rng = np.random.default_rng(4)
    x = np.concatenate([_near(RING[0], 5, rng), _near(RING[1], 1, rng)])
    assert mode_metrics(x, RING, STD)["modes_covered"] == 2
    assert mode_metrics(x, RING, STD, min_count=2)["modes_covered"] == 1


def test_grid_25():
    grid = np.array([(i, j) for i in range(-4, 5, 2) for j in range(-4, 5, 2)], float)
    m = mode_metrics(grid + 0.01, grid, 0.05)
    assert (m["modes_covered"], m["high_quality"]) == (25, 1.0)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int64, (30,), elements=st.integers(0, 7)),
       hnp.arrays(np.float64, (30,), elements=st.floats(0, 5)))
def test_ranges(modes, radii):
    x = RING[modes] + radii[:, None] * STD * np.array([1.0, 0.0])
    m = mode_metrics(x, RING, STD)
    assert 0 <= m["modes_covered"] <= 8
    assert 0.0 <= m["high_quality"] <= 1.0
    if m["modes_covered"]:
        assert -1e-12 <= m["reverse_kl"] <= np.log(8) + 1e-12
