"""Tests of jaxgan.metrics.score: classifier score, class entropy, conditional accuracy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxgan.metrics.score import class_entropy, classifier_score, conditional_accuracy


@pytest.mark.parametrize("k", [2, 10])
def test_one_hot_uniform_is_k(k):
    probs = np.eye(k)[np.arange(5 * k) % k]
    assert classifier_score(probs) == pytest.approx(k, rel=1e-12)


def test_constant_output_is_one():
    probs = np.tile([0.1, 0.6, 0.3], (7, 1))
    assert classifier_score(probs) == pytest.approx(1.0)
    assert classifier_score(np.tile(np.eye(4)[2], (9, 1))) == pytest.approx(1.0)


def test_hand_computed():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    # p(y) = (0.75, 0.25); KL_1 = log(1/0.75); KL_2 = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25).
    kl1 = np.log(1 / 0.75)
    kl2 = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(2.0)
    assert classifier_score(probs) == pytest.approx(np.exp((kl1 + kl2) / 2), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, (6, 4), elements=st.floats(-20, 20)))
def test_between_one_and_k(logits):
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    s = classifier_score(probs)
    assert 1.0 - 1e-9 <= s <= 4.0 + 1e-9


def test_class_entropy():
    assert class_entropy(np.arange(100) % 10, 10) == pytest.approx(np.log(10))
    assert class_entropy(np.full(50, 3), 10) == 0.0
    assert class_entropy(np.array([0, 0, 1, 1]), 10) == pytest.approx(np.log(2))
    # Probabilities are reduced to argmax counts.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert class_entropy(probs, 2) == pytest.approx(np.log(2))


def test_conditional_accuracy():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert conditional_accuracy(probs, np.array([0, 1, 1, 1])) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        conditional_accuracy(probs, np.array([0, 1]))
