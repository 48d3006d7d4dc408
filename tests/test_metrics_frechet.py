"""Tests of jaxgan.metrics.frechet: closed forms, invariances, degenerate covariances."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxgan.metrics.frechet import feature_stats, frechet_distance, gaussian_frechet


def _random_orthogonal(rng, d):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def test_diagonal_closed_form():
    # For diagonal covariances the product commutes: tr((S1 S2)^1/2) = sum sqrt(a_i b_i),
    # so d^2 = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    # |mu1 - mu2|^2 = 1 + 0 + 4 = 5; sum (sqrt a - sqrt b)^2 = 1 + 1 + 0 = 2.
    assert gaussian_frechet(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(7.0, abs=1e-12)


def test_one_dimensional():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    d = gaussian_frechet([1.5], [[0.25]], [-0.5], [[9.0]])
    assert d == pytest.approx(2.0**2 + (0.5 - 3.0) ** 2, abs=1e-12)


def test_rotation_invariant_non_diagonal():
    # Rotating both Gaussians by one orthogonal Q leaves the distance unchanged, so a full
    # (non-diagonal) covariance pair must give the diagonal closed form.
    rng = np.random.default_rng(0)
    q = _random_orthogonal(rng, 5)
    a, b = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = gaussian_frechet(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


def test_non_commuting_covariances_match_2x2_formula():
    # For 2x2 PSD A, B: tr((A B)^1/2) = sqrt(tr(AB) + 2 sqrt(det(AB))) (trace of the square
    # root of a 2x2 matrix with non-negative eigenvalues).
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    p = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(p) + 2 * np.sqrt(np.linalg.det(p)))
    expected = np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert gaussian_frechet(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(expected, rel=1e-12)


def test_same_set_is_zero():
    feats = np.random.default_rng(1).normal(size=(500, 32)) * 10.0
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_rank_deficient_covariance_is_finite():
    # N < F (or dead ReLU features) makes the covariance singular; the eigh route must not
    # produce nan or a negative distance.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(20, 64))
    b = np.maximum(rng.normal(size=(30, 64)) + 0.5, 0.0)
    b[:, :10] = 0.0
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_samples_approach_closed_form():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(20000, 4)) * np.array([1.0, 2.0, 0.5, 1.0])
    b = rng.normal(size=(20000, 4)) * np.array([1.0, 1.0, 1.0, 3.0]) + np.array([1, 0, 0, 0])
    expected = 1.0 + (2.0 - 1.0) ** 2 + (0.5 - 1.0) ** 2 + (1.0 - 3.0) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)


def test_feature_stats_unbiased_covariance():
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = feature_stats(x)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, (2, 12, 3), elements=st.floats(-10, 10)),
       hnp.arrays(np.float64, (2, 3), elements=st.floats(-10, 10)))
def test_symmetric_and_non_negative(factors, mus):
    s1, s2 = factors[0].T @ factors[0] / 12, factors[1].T @ factors[1] / 12
    d12 = gaussian_frechet(mus[0], s1, mus[1], s2)
    d21 = gaussian_frechet(mus[1], s2, mus[0], s1)
    scale = 1.0 + np.trace(s1) + np.trace(s2) + ((mus[0] - mus[1]) ** 2).sum()
    assert d12 >= 0.0 and d21 >= 0.0
    # Symmetric up to the rounding of the square roots of near-zero eigenvalues.
    assert abs(d12 - d21) <= 1e-6 * scale
    assert gaussian_frechet(mus[0], s1, mus[0], s1) <= 1e-6 * scale
