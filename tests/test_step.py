"""The jitted train step: compiles once, learns, is deterministic, honours n_critic."""

import chex
import jax
import jax.numpy as jnp
import pytest

from jaxgan.configs import MixtureConfig
from jaxgan.objectives import get_objective
from jaxgan.state import GANState, init_state
from jaxgan.step import make_sampler, make_train_step

CFG = MixtureConfig(objective="nsgan", hidden=32, z_dim=8, batch_size=64, d_lr=1e-3, g_lr=1e-3)


def fixed_batch(n=64):
    x = jax.random.normal(jax.random.PRNGKey(7), (n, 2)) * 0.1 + jnp.array([1.0, 0.0])
    return {"x": x, "y": jnp.zeros(n, jnp.int32), "index": jnp.arange(n, dtype=jnp.int32)}


@pytest.fixture(scope="module")
def setup():
    nets, state = init_state(CFG, (2,))
    return nets, state


def run_steps(step_fn, state, n, batch):
    history = []
    for _ in range(n):
        state, metrics = step_fn(state, batch)
        history.append(metrics)
    return state, history


def test_state_is_one_pytree_of_arrays(setup):
    _, state = setup
    assert isinstance(state, GANState)
    leaves = jax.tree.leaves(state)
    assert leaves and all(isinstance(x, jax.Array) for x in leaves)
    chex.assert_tree_all_finite(state)


def test_step_compiles_once_and_reports_metrics(setup):
    nets, state = setup
    raw = make_train_step(get_objective("nsgan"), nets, jit=False)
    step_fn = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    state = jax.tree.map(jnp.copy, state)  # donated below: keep the fixture's buffers
    state, history = run_steps(step_fn, state, 3, fixed_batch())
    assert int(state.step) == 3
    assert set(history[-1]) == {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"}
    chex.assert_tree_all_finite(history)
    for m in history:
        chex.assert_rank(list(m.values()), 0)


@pytest.mark.parametrize("objective", ["gan", "nsgan", "lsgan", "lsgan-pearson"])
def test_a_few_steps_lower_the_d_loss_on_a_fixed_batch(setup, objective):
    nets, state = setup
    step_fn = make_train_step(get_objective(objective), nets, n_critic=get_objective(objective).n_critic)
    state = jax.tree.map(jnp.copy, state)
    _, history = run_steps(step_fn, state, 25, fixed_batch())
    first = float(history[0]["d_loss"])
    last = sum(float(m["d_loss"]) for m in history[-5:]) / 5
    assert last < first, (objective, first, last)
    # D separates: a higher output on the real batch than on fakes.
    assert float(history[-1]["d_real"]) > float(history[-1]["d_fake"])


def test_same_seed_gives_bit_identical_states(setup):
    nets, _ = setup
    step_fn = make_train_step(get_objective("lsgan"), nets, n_critic=get_objective("lsgan").n_critic)
    finals = []
    for _ in range(2):
        _, state = init_state(CFG, (2,))
        state, _ = run_steps(step_fn, state, 3, fixed_batch())
        finals.append(state)
    chex.assert_trees_all_equal(finals[0], finals[1])
    _, other = init_state(CFG.__class__(**{**CFG.__dict__, "seed": 1}), (2,))
    other, _ = run_steps(step_fn, other, 3, fixed_batch())
    assert not jnp.array_equal(
        jax.tree.leaves(other.g_params)[0], jax.tree.leaves(finals[0].g_params)[0]
    )


def test_n_critic_runs_k_d_updates_per_g_update(setup):
    nets, state = setup
    step_fn = make_train_step(get_objective("nsgan"), nets, n_critic=2)
    state = jax.tree.map(jnp.copy, state)
    new, _ = step_fn(state, fixed_batch(128))
    # Adam's count advances once per update.
    assert int(jax.tree.leaves(new.d_opt[0].count)[0]) == 2
    assert int(jax.tree.leaves(new.g_opt[0].count)[0]) == 1
    with pytest.raises(ValueError, match="n_critic"):
        step_fn(new, fixed_batch(63))


def test_sampler_is_deterministic_and_shaped(setup):
    nets, state = setup
    sample = make_sampler(nets)
    z = jax.random.normal(jax.random.PRNGKey(0), (5, nets.z_dim))
    x = sample(state, z)
    chex.assert_shape(x, (5, 2))
    chex.assert_trees_all_equal(x, sample(state, z))


@pytest.mark.parametrize("objective", ["hinge", "wgan-gp"])
def test_reference_objectives_train_through_the_one_step(setup, objective):
    nets, state = setup
    obj = get_objective(objective)
    step_fn = make_train_step(obj, nets, n_critic=obj.n_critic)
    state = jax.tree.map(jnp.copy, state)
    batch = fixed_batch(64 * obj.n_critic)
    state, history = run_steps(step_fn, state, 10, batch)
    chex.assert_tree_all_finite(history)
    assert int(jax.tree.leaves(state.d_opt[0].count)[0]) == 10 * obj.n_critic
    assert float(history[-1]["d_real"]) > float(history[-1]["d_fake"])
