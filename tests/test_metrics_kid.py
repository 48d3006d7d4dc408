"""Tests of jaxgan.metrics.kid: the unbiased MMD^2 by hand, unbiasedness, separation."""

import itertools

import numpy as np
import pytest

from jaxgan.metrics.kid import kid, mmd2_unbiased, polynomial_kernel


def _mmd2_by_hand(x, y):
    k = lambda a, b: (a @ b / len(a) + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    sxy = sum(k(a, b) for a in x for b in y) / (m * n)
    return sxx + syy - 2 * sxy


def test_kernel_is_cubic_polynomial():
    a = np.array([[1.0, 2.0]])
    b = np.array([[3.0, -1.0]])
    # x.y / d + 1 = (3 - 2) / 2 + 1 = 1.5
    assert polynomial_kernel(a, b)[0, 0] == pytest.approx(1.5**3)


def test_mmd2_matches_hand_computation():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)) + 1.0
    assert mmd2_unbiased(x, y) == pytest.approx(_mmd2_by_hand(x, y), rel=1e-12)


def test_tiny_example():
    # d = 1: k(a, b) = (ab + 1)^3. x = {0, 1}, y = {1, 2}:
    # off-diagonal Kxx: k(0,1) = 1 (twice) -> 1; Kyy: k(1,2) = 27 -> 27;
    # Kxy: k(0,1) = 1, k(0,2) = 1, k(1,1) = 8, k(1,2) = 27 -> mean 37/4.
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert mmd2_unbiased(x, y) == pytest.approx(1 + 27 - 2 * 37 / 4)


def test_unbiased_on_one_distribution():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2000, 16)), rng.normal(size=(2000, 16))
    mean, std = kid(a, b, num_subsets=20, subset_size=500)
    assert std > 0
    assert abs(mean) < std


def test_separates_distributions():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16)) * 1.5 + 0.3
    mean, std = kid(a, b, num_subsets=10, subset_size=300)
    assert mean > 5 * std


def test_subset_size_clipped_and_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))
    r1 = kid(a, b, num_subsets=5, subset_size=1000, seed=7)
    r2 = kid(a, b, num_subsets=5, subset_size=1000, seed=7)
    assert r1 == r2
    # subset_size clipped to 50 = all of a: every subset of a is a itself.
    assert np.isfinite(r1[0])


def test_rejects_mismatched_features():
    with pytest.raises(ValueError):
        kid(np.zeros((10, 3)), np.zeros((10, 4)))
