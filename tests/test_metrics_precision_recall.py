"""Tests of jaxgan.metrics.precision_recall on hand-built point clouds."""

import numpy as np
import pytest

from jaxgan.metrics.precision_recall import knn_radii, precision_recall


def test_identical_clouds():
    x = np.random.default_rng(0).normal(size=(500, 16))
    assert precision_recall(x, x.copy(), k=3) == (1.0, 1.0)


def test_disjoint_far_clouds():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 8))
    fake = rng.normal(size=(300, 8)) + 100.0
    assert precision_recall(real, fake) == (0.0, 0.0)


def test_fake_covering_half_of_real():
    # Real fills [0, 2] x [0, 1]; fake fills [0, 1] x [0, 1]: every fake sample is real-like
    # (precision ~1) but only the left half of the real samples is reached (recall ~0.5).
    rng = np.random.default_rng(2)
    real = rng.uniform(size=(4000, 2)) * np.array([2.0, 1.0])
    fake = rng.uniform(size=(2000, 2))
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.97
    assert recall == pytest.approx(0.5, abs=0.03)


def test_blocking_does_not_change_result():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(300, 5)), rng.normal(size=(250, 5)) * 1.3
    assert precision_recall(real, fake, block=7) == precision_recall(real, fake, block=4096)


def test_knn_radii_brute_force():
    x = np.random.default_rng(4).normal(size=(60, 3)).astype(np.float32)
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    expected = np.sort(d2, axis=1)[:, 2]  # 3rd nearest other point
    np.testing.assert_allclose(knn_radii(x, k=3, block=16), expected, rtol=1e-4, atol=1e-5)
