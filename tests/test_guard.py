"""The divergence guard: under "skip" a step with non-finite metrics undone, for any state
dataclass (one seed or vmapped seeds); non-finite state fields named where a checkpoint is
about to keep them."""

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


def test_raise_policy_is_the_step_itself():
    # The loop checks the step's metrics; nothing is added to the compiled step.
    assert guard.guarded(toy_step) is toy_step


def test_a_nan_is_named_by_network_and_quantity():
    new, metrics = jax.jit(toy_step)(toy(), {"x": jnp.array([0.0, jnp.nan, 0.0])})
    assert guard.bad_names(jax.device_get(metrics)) == ["D's loss (d_loss)"]
    assert guard.nonfinite_fields(new) == ["D's parameters (d_params)"]
    assert guard.nonfinite_fields(toy()) == []
    stack = jax.tree.map(lambda a, b: jnp.stack([a, b]), toy(), new)  # any seed of a stack
    assert guard.nonfinite_fields(stack) == ["D's parameters (d_params)"]


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
    ("g_params", "G's parameters (g_params)"),
    ("d_opt", "D's optimiser state (d_opt)"),
    ("latents", "latents"),
    ("loss", "loss"),
])
def test_describe(name, said):
    assert guard.describe(name) == said
