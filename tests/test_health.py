"""GAN health signals and the monitor that warns (or stops) on a won D or a collapsed G."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import health


def test_accuracy_counts_each_side_of_the_decision():
    real = jnp.array([1.0, 2.0, -1.0, 3.0])
    fake = jnp.array([-1.0, 0.7, 0.2, -3.0])
    acc_real, acc_fake = health.accuracy(real, fake)
    assert float(acc_real) == 0.75 and float(acc_fake) == 0.5
    assert float(health.accuracy(real, fake, decision=0.5)[1]) == 0.75


def test_spread_is_one_for_the_data_and_zero_for_a_point():
    x = jax.random.normal(jax.random.PRNGKey(0), (256, 4, 4, 1))
    y = jax.random.normal(jax.random.PRNGKey(1), (256, 4, 4, 1))
    assert abs(float(health.spread(x, y)) - 1.0) < 0.1
    assert float(health.spread(x, jnp.ones_like(x))) == 0.0
    assert abs(float(health.spread(x, 0.1 * y)) - 0.1) < 0.01


def test_label_entropy_is_one_for_all_classes_and_zero_for_one():
    k = 10
    assert abs(float(health.label_entropy(100.0 * jnp.eye(k))) - 1.0) < 1e-5
    one = jnp.zeros((32, k)).at[:, 3].set(100.0)
    assert float(health.label_entropy(one)) < 1e-5


def record(step, **values):
    return {"step": step, **values}


def test_the_monitor_warns_once_per_episode_after_its_patience():
    said = []
    monitor = health.Monitor(patience=2, warn=said.append)
    won = {"d_acc_real": 1.0, "d_acc_fake": 0.995, "spread": 0.8}
    for step, values in [(50, won), (100, won), (150, won), (200, {"d_acc_real": 0.5,
                         "d_acc_fake": 0.5, "spread": 0.8}), (250, won), (300, won)]:
        monitor(record(step, **values))
    assert [s for s, _ in monitor.events] == [100, 300]
    assert "at step 100: D wins: it tells real from fake almost perfectly" in said[0]


def test_a_collapse_of_any_seed_is_seen_and_halt_stops():
    monitor = health.Monitor(patience=1, halt=True, warn=lambda m: None)
    monitor(record(50, spread=[0.9, 0.8]))
    with pytest.raises(health.Collapsed, match="at step 100: G's samples collapsed: their "
                       "spread is 0.01"):
        monitor(record(100, spread=[0.9, 0.01]))


def test_label_entropy_collapse_is_named():
    said = []
    health.Monitor(patience=1, warn=said.append)(record(7, label_entropy=0.1))
    assert "few classes" in said[0] and np.isfinite(0.1)


def test_a_run_blowing_up_without_a_nan_is_named():
    said = []
    monitor = health.Monitor(patience=1, warn=said.append, label="nsgan")
    monitor(record(4, d_loss=[4.8e30, 1.0], g_grad_norm=[0.0, 0.1], spread=[140.0, 1.0]))
    text = "\n".join(said)
    assert "nsgan at step 4" in text and "losses exploded (|loss| up to 4.8e+30" in text
    assert "gradients are exactly zero" in text and "140 times wider" in text


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 7)), min_size=1, max_size=4),
       st.integers(0, 2**31 - 1))
def test_grad_norm_is_the_global_norm(shapes, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
    tree = {f"w{i}": jax.random.normal(k, s) for i, (k, s) in enumerate(zip(keys, shapes))}
    expected = np.sqrt(sum(float(jnp.sum(jnp.square(x))) for x in tree.values()))
    np.testing.assert_allclose(float(jax.jit(health.grad_norm)(tree)), expected, rtol=1e-5)
