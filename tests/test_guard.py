"""The divergence guard: flags of non-finite metrics and state fields computed in the step,
and under "skip" the step undone, for any state dataclass (one seed or vmapped seeds)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import guard


@struct.dataclass
class Toy:
    step: jnp.ndarray
    d_params: jnp.ndarray
    g_params: jnp.ndarray


def toy_step(state, batch):
    # D's parameters take the batch (a NaN in it poisons them); G's are only scaled.
    d = state.d_params + batch["x"]
    new = state.replace(step=state.step + 1, d_params=d, g_params=state.g_params * 2)
    return new, {"d_loss": jnp.sum(d), "g_grad_norm": jnp.linalg.norm(state.g_params)}


def toy():
    return Toy(jnp.zeros((), jnp.int32), jnp.zeros(3), jnp.ones(2))


def test_raise_policy_changes_nothing_and_adds_one_flag_per_state_field():
    state, batch = toy(), {"x": jnp.arange(3.0)}
    plain_state, plain = toy_step(state, batch)
    new, metrics = jax.jit(guard.guarded(toy_step))(state, batch)
    chex.assert_trees_all_equal(new, plain_state)
    assert {k: metrics[k] for k in plain} == plain
    assert {k for k in metrics if k.startswith(guard.HIDDEN)} == {
        "_nonfinite/step", "_nonfinite/d_params", "_nonfinite/g_params"}
    assert not any(bool(v) for k, v in metrics.items() if k.startswith(guard.HIDDEN))


def test_a_nan_is_named_by_network_and_quantity():
    _, metrics = jax.jit(guard.guarded(toy_step))(toy(), {"x": jnp.array([0.0, jnp.nan, 0.0])})
    host = jax.device_get(metrics)
    assert guard.bad_names(host) == ["D's loss (d_loss)", "D's parameters (d_params)"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.5, np.nan, np.inf, -np.inf]), min_size=3, max_size=3))
def test_skip_undoes_exactly_the_steps_with_a_non_finite_value(values):
    state = toy()
    new, metrics = jax.jit(guard.guarded(toy_step, "skip"))(state, {"x": jnp.array(values)})
    bad = not np.all(np.isfinite(values))
    assert int(metrics[guard.SKIPPED]) == bad
    assert int(new.step) == 1  # the data and the noise move on either way
    expected = state if bad else toy_step(state, {"x": jnp.array(values)})[0]
    chex.assert_trees_all_equal(new.d_params, expected.d_params)
    chex.assert_trees_all_equal(new.g_params, expected.g_params)


def test_skip_is_per_seed_under_vmap():
    states = jax.tree.map(lambda a, b: jnp.stack([a, b]), toy(), toy())
    x = jnp.array([[1.0, 1.0, 1.0], [1.0, jnp.nan, 1.0]])
    new, metrics = jax.jit(jax.vmap(guard.guarded(toy_step, "skip")))(states, {"x": x})
    np.testing.assert_array_equal(metrics[guard.SKIPPED], [0, 1])
    np.testing.assert_array_equal(new.d_params, [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(new.step, [1, 1])


def test_an_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="raise, skip"):
        guard.guarded(toy_step, "ignore")


@pytest.mark.parametrize("name, said", [
    ("d_grad_norm", "D's gradients (d_grad_norm)"),
    ("_nonfinite/g_params", "G's parameters (g_params)"),
    ("_nonfinite/d_opt", "D's optimiser state (d_opt)"),
    ("_nonfinite/latents", "latents"),
    ("loss", "loss"),
])
def test_describe(name, said):
    assert guard.describe(name) == said
