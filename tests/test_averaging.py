"""Parameter averages: historical averaging's running mean and its penalty (Salimans et al.
2016, Sec. 3.3), and the bias-corrected moving average (EMA) of the K+1 GAN's D."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import averaging

# --------------------------------------------------------------------------------------
# Historical averaging: running mean and penalty
# --------------------------------------------------------------------------------------


def test_history_mean_is_the_mean_of_the_parameter_history():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    keys = jax.random.split(jax.random.PRNGKey(0), 50)
    seen = [params]
    hist = averaging.running_mean_init(params)
    for k in keys:
        params = jax.tree.map(lambda p: p + jax.random.normal(k, p.shape), params)
        seen.append(params)
        hist = averaging.running_mean_update(hist, params)
    want = jax.tree.map(lambda *ps: np.mean(np.stack(ps), axis=0), *seen)
    chex.assert_trees_all_close(hist["mean"], want, rtol=1e-5, atol=1e-6)
    assert int(hist["count"]) == 51


def test_history_penalty_value_and_gradient():
    mean = {"w": jnp.array([1.0, -2.0])}
    theta = {"w": jnp.array([0.5, 1.0])}
    hist = {"mean": mean, "count": jnp.int32(3)}
    assert float(averaging.history_penalty(theta, hist)) == pytest.approx(0.25 + 9.0)
    grad = jax.grad(averaging.history_penalty)(theta, hist)
    chex.assert_trees_all_close(grad["w"], 2 * (theta["w"] - mean["w"]))
    into_past = jax.grad(lambda m: averaging.history_penalty(theta, {"mean": m, "count": 3}))(mean)
    chex.assert_trees_all_equal(into_past["w"], jnp.zeros(2))  # the mean is a constant


# --------------------------------------------------------------------------------------
# Moving average (EMA), bias-corrected when read
# --------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(rate=st.floats(1e-3, 0.9), steps=st.integers(1, 12))
def test_ema_read_is_the_normalised_weighted_average_of_the_history(rate, steps):
    thetas = [jnp.array([float(i), -0.5 * i * i]) for i in range(1, steps + 1)]
    avg = averaging.ema_init({"w": thetas[0]})
    chex.assert_trees_all_equal(avg, {"w": jnp.zeros(2)})  # starts at zero
    for t in thetas:
        avg = averaging.ema_update(avg, {"w": t}, rate)
    # After k updates from zero: sum_i rate (1 - rate)^(k - i) theta_i, weights normalised.
    w = np.array([rate * (1 - rate) ** (steps - i) for i in range(1, steps + 1)])
    want = (w[:, None] * np.stack(thetas)).sum(0) / w.sum()
    got = averaging.ema_read(avg, {"w": thetas[-1]}, jnp.int32(steps), rate)
    chex.assert_trees_all_close(got["w"], jnp.asarray(want, jnp.float32), rtol=1e-4, atol=1e-5)
    # Jitted (the step a traced scalar) it reads the same.
    jitted = jax.jit(averaging.ema_read, static_argnums=3)(avg, {"w": thetas[-1]},
                                                            jnp.int32(steps), rate)
    chex.assert_trees_all_close(jitted, got, rtol=1e-6)


def test_ema_read_is_the_current_params_at_step_zero_or_rate_zero():
    params = {"w": jnp.array([1.0, 2.0])}
    zero = averaging.ema_init(params)
    chex.assert_trees_all_equal(averaging.ema_read(zero, params, jnp.int32(0), 0.1), params)
    assert averaging.ema_read(zero, params, jnp.int32(5), 0.0) is params
    # After an update, step > 0: the average, not the current params.
    avg = averaging.ema_update(zero, {"w": jnp.array([3.0, 5.0])}, 0.1)
    chex.assert_trees_all_close(averaging.ema_read(avg, params, jnp.int32(1), 0.1),
                                {"w": jnp.array([3.0, 5.0])}, rtol=1e-6)


# --------------------------------------------------------------------------------------
# G's EMA (jaxgan.configs.Stabilisers.g_ema): the average carries its own normaliser
# --------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.floats(0.001, 0.5), st.integers(1, 40))
def test_ema_tracker_is_the_closed_form_average_of_the_history(rate, steps):
    """After k updates with theta_1..theta_k: sum_i rate (1 - rate)^(k - i) theta_i over
    1 - (1 - rate)^k (Karras et al. 2018's EMA, bias-corrected), the same as `ema_read`."""
    params = {"w": jnp.zeros((2, 3))}
    tracker, avg = averaging.ema_tracker_init(params), averaging.ema_init(params)
    history = []
    for k in jax.random.split(jax.random.PRNGKey(steps), steps):
        params = {"w": params["w"] + jax.random.normal(k, (2, 3))}
        history.append(np.asarray(params["w"], np.float64))
        tracker = averaging.ema_tracker_update(tracker, params, rate)
        avg = averaging.ema_update(avg, params, rate)
    weights = np.array([rate * (1 - rate) ** (steps - i) for i in range(1, steps + 1)])
    want = np.tensordot(weights, np.stack(history), axes=1) / weights.sum()
    got = averaging.ema_tracker_read(tracker, params)["w"]
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(got, averaging.ema_read(avg, params, jnp.array(steps), rate)["w"],
                               rtol=1e-5, atol=1e-6)
    assert float(tracker["norm"]) == pytest.approx(1 - (1 - rate) ** steps, rel=1e-5)


def test_ema_tracker_reads_the_current_params_before_any_update():
    params = {"w": jnp.arange(3.0)}
    chex.assert_trees_all_equal(
        averaging.ema_tracker_read(averaging.ema_tracker_init(params), params), params)
