"""The jitted train step: compiles once, learns, is deterministic, honours n_critic, and
composes with Salimans et al. 2016's techniques (feature matching, minibatch discrimination,
historical averaging, one-sided label smoothing, virtual batch norm): each compiles once and
stays finite in the one step."""

import chex
import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

from jaxgan import configs
from jaxgan.configs import MixtureConfig, Techniques
from jaxgan.nets import MLPDiscriminator, MLPGenerator, layers
from jaxgan.nets.build import apply_network_techniques
from jaxgan.nets.conditional import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    ImageMLPDiscriminator,
    ImageMLPGenerator,
)
from jaxgan.nets.techniques import MinibatchDiscriminator
from jaxgan.objectives import get_objective, resolve
from jaxgan.state import GANState, init_state, split_networks
from jaxgan.step import make_sampler, make_step, make_train_step

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
    assert set(history[-1]) == {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm",
                                "g_grad_norm", "d_acc_real", "d_acc_fake", "spread"}
    chex.assert_tree_all_finite(history)
    for m in history:
        chex.assert_rank(list(m.values()), 0)


@pytest.mark.parametrize("objective", ["gan", "nsgan", "lsgan", "lsgan-pearson"])
def test_a_few_steps_lower_the_d_loss_on_a_fixed_batch(setup, objective):
    nets, state = setup
    obj = get_objective(objective)
    step_fn = make_train_step(obj, nets, n_critic=obj.n_critic)
    state = jax.tree.map(jnp.copy, state)
    _, history = run_steps(step_fn, state, 25, fixed_batch())
    first = float(history[0]["d_loss"])
    last = sum(float(m["d_loss"]) for m in history[-5:]) / 5
    assert last < first, (objective, first, last)
    # D separates: a higher output on the real batch than on fakes.
    assert float(history[-1]["d_real"]) > float(history[-1]["d_fake"])


def test_same_seed_gives_bit_identical_states(setup):
    nets, _ = setup
    step_fn = make_train_step(get_objective("lsgan"), nets, n_critic=1)
    finals = []
    for _ in range(2):
        _, state = init_state(CFG, (2,))
        state, _ = run_steps(step_fn, state, 3, fixed_batch())
        finals.append(state)
    chex.assert_trees_all_equal(finals[0], finals[1])
    _, other = init_state(configs.replace(CFG, seed=1), (2,))
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
    with pytest.raises(ValueError, match="n_critic"):
        make_train_step(get_objective("nsgan"), nets, n_critic=0)


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


def test_make_step_resolves_the_configs_critic_steps_smoothing_and_noise(setup):
    nets, state = setup
    assert make_step(configs.replace(CFG, objective="wgan-gp"), nets, jit=False)[1] == 5
    assert make_step(configs.replace(CFG, n_critic=2), nets, jit=False)[1] == 2

    def one_step(step_fn):
        return step_fn(jax.tree.map(jnp.copy, state), fixed_batch())

    # Label smoothing is folded into the objective, the latent distribution passed on.
    cfg = configs.replace(CFG, label_smoothing=0.9, z_dist="uniform")
    step_fn, n_critic = make_step(cfg, nets)
    assert n_critic == 1
    got, metrics = one_step(step_fn)
    smoothed = get_objective("nsgan").with_label_smoothing(0.9)
    want, _ = one_step(make_train_step(smoothed, nets, z_dist="uniform"))
    chex.assert_trees_all_equal(got, want)
    _, plain = one_step(make_train_step(get_objective("nsgan"), nets, z_dist="uniform"))
    assert float(metrics["d_loss"]) != float(plain["d_loss"])
    normal, _ = one_step(make_train_step(smoothed, nets))
    assert not jnp.array_equal(jax.tree.leaves(got.g_params)[0], jax.tree.leaves(normal.g_params)[0])


# --------------------------------------------------------------------------------------
# Salimans et al. 2016's techniques in the step
# --------------------------------------------------------------------------------------

TECH_CFG = MixtureConfig(objective="nsgan", hidden=16, z_dim=4, batch_size=32, d_lr=1e-3,
                         g_lr=1e-3)


def labelled_batch(n=32, seed=7):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 2)) * 0.1 + jnp.array([1.0, 0.0])
    return {"x": x, "y": jnp.arange(n, dtype=jnp.int32) % 8, "index": jnp.arange(n, dtype=jnp.int32)}


def test_historical_averaging_in_the_step_tracks_both_players():
    cfg = configs.replace(TECH_CFG, historical_avg=0.5)
    nets, state = init_state(cfg, (2,))
    chex.clear_trace_counter()
    raw, _ = make_step(cfg, nets, jit=False)
    step_fn = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    g_seen, d_seen = [state.g_params], [state.d_params]
    state = jax.tree.map(jnp.copy, state)
    for _ in range(4):
        state, metrics = step_fn(state, labelled_batch())
        g_seen.append(jax.tree.map(jnp.copy, state.g_params))
        d_seen.append(jax.tree.map(jnp.copy, state.d_params))
    chex.assert_tree_all_finite(metrics)
    assert {"d_hist_penalty", "g_hist_penalty"} <= set(metrics)
    for name, seen in (("g_hist", g_seen), ("d_hist", d_seen)):
        want = jax.tree.map(lambda *ps: jnp.mean(jnp.stack(ps), axis=0), *seen)
        chex.assert_trees_all_close(state.extra[name]["mean"], want, rtol=1e-5, atol=1e-7)
        assert int(state.extra[name]["count"]) == 5
    # The penalty the step reports is ||theta - mean||^2 with the mean before the update.
    mean_before = jax.tree.map(lambda *ps: jnp.mean(jnp.stack(ps), axis=0), *g_seen[:-1])
    sq = optax.tree.norm(jax.tree.map(lambda a, b: a - b, g_seen[-2], mean_before), squared=True)
    assert float(metrics["g_hist_penalty"]) == pytest.approx(float(sq), rel=1e-4)


def test_historical_averaging_needs_its_state():
    nets, state = init_state(TECH_CFG, (2,))
    step_fn = make_train_step(get_objective("nsgan"), nets, n_critic=1,
                              techniques=Techniques(historical_avg=1.0))
    with pytest.raises(ValueError, match="state.extra"):
        step_fn(state, labelled_batch())


def run_compiled(nets, state, cfg=TECH_CFG, steps=3, n=32, techniques=None):
    chex.clear_trace_counter()  # every test builds its own train_step
    if techniques is None:
        raw, _ = make_step(cfg, nets, jit=False)
    else:
        objective = get_objective(cfg.objective).with_label_smoothing(techniques.label_smoothing)
        raw = make_train_step(objective, nets, n_critic=1, techniques=techniques, jit=False)
    step_fn = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    state = jax.tree.map(jnp.copy, state)
    for _ in range(steps):
        state, metrics = step_fn(state, labelled_batch(n))
    chex.assert_tree_all_finite((state, metrics))
    assert int(state.step) == steps
    return state, metrics


@pytest.mark.parametrize(
    "switches",
    [
        dict(feature_matching=True, fm_layer="hidden/0", fm_reduce="sum", objective="lsgan"),
        dict(minibatch_disc=True, mbd_kernels=8, mbd_kernel_dim=3, label_smoothing=0.9,
             objective="lsgan"),
        dict(conditional=True, minibatch_disc=True, mbd_kernels=4, mbd_self_term=False,
             feature_matching=True, historical_avg=0.1, label_smoothing=0.9, n_critic=2),
    ],
    ids=["fm-layer", "mbd-ls-lsgan", "all-conditional-ncritic2"],
)
def test_each_switch_composes_with_the_step(switches):
    cfg = configs.replace(TECH_CFG, **switches)
    nets, state = init_state(cfg, (2,), num_classes=8)
    # The networks and the state carry the config's techniques.
    d = nnx.merge(nets.d_graph, state.d_params, state.d_stats)
    mbd = [m for _, m in nnx.iter_modules(d) if isinstance(m, MinibatchDiscriminator)]
    assert bool(mbd) == cfg.techniques.minibatch_disc
    assert set(state.extra) == ({"g_hist", "d_hist"} if cfg.techniques.historical_avg else set())
    n = 32 * (cfg.n_critic or 1)
    run_compiled(nets, state, cfg, n=n)


class BNPointGenerator(nnx.Module):
    """A generator of 2-D points with batch norm on a flat and on an image-shaped layer."""

    def __init__(self, rngs):
        self.z_dim, self.out_shape = 3, (2,)
        # No bias before BatchNorm, as in `BNPointDiscriminator` below (the two ways of
        # computing G's update moved it +-lr apart once the suite's compiler rounded them
        # differently).
        self.fc = nnx.Linear(3, 4 * 4 * 2, use_bias=False, rngs=rngs)
        self.bn_flat = nnx.BatchNorm(32, rngs=rngs)
        self.bn_map = nnx.BatchNorm(2, rngs=rngs)
        self.out = nnx.Linear(32, 2, rngs=rngs)

    def __call__(self, z):
        h = jnp.tanh(self.bn_flat(self.fc(z))).reshape(-1, 4, 4, 2)
        return self.out(jnp.tanh(self.bn_map(h)).reshape(z.shape[0], -1))


def test_virtual_batch_norm_composes_with_the_step():
    tech = Techniques(vbn=True, vbn_ref_size=16, minibatch_disc=True, mbd_kernels=4)
    rngs = nnx.Rngs(0)
    g, d = apply_network_techniques(
        BNPointGenerator(rngs), MLPDiscriminator(in_dim=2, hidden=8, rngs=rngs), tech, rngs, batch_size=32
    )
    nets, state = split_networks(g, d, optax.adam(1e-3), optax.adam(1e-3), jax.random.PRNGKey(1), tech)
    state, _ = run_compiled(nets, state, techniques=tech)
    # Samples of one example do not depend on the others drawn with it.
    z = jax.random.normal(jax.random.PRNGKey(2), (6, 3))
    sample = make_sampler(nets)
    chex.assert_trees_all_close(sample(state, z)[:2], sample(state, z[:2]), atol=1e-5)


def _dropout_pair(grouped: bool):
    # The user's cGAN MLPs (dropout after each hidden layer of D), narrowed for points;
    # ``grouped=False`` swaps in plain nnx.Dropout, which one call would draw differently.
    rngs = nnx.Rngs(0)
    g = ConditionalGenerator(ImageMLPGenerator(z_dim=8, hidden=(16,), out_shape=(2,),
                                               rngs=rngs), num_classes=8, embed_dim=4, rngs=rngs)
    body = ImageMLPDiscriminator(in_dim=6, hidden=(16, 8), dropout=0.5, rngs=rngs)
    if not grouped:
        body.dropout = nnx.Dropout(0.5)
    d = ConditionalDiscriminator(body, num_classes=8, embed_dim=4, as_channels=False,
                                 rngs=rngs)
    return split_networks(g, d, optax.adam(1e-3), optax.adam(1e-3), jax.random.PRNGKey(1))


class BNPointDiscriminator(nnx.Module):
    """A critic of 2-D points with batch norm on a flat and on an image-shaped layer, as
    LSGAN's MNIST D has on its convolution; ``norm``: the BatchNorm class."""
    ROWWISE = True  # its own code mixes no rows; its BatchNorms are checked apart

    def __init__(self, rngs, norm=layers.GroupedBatchNorm):
        # No bias before BatchNorm: its gradient is only rounding noise, whose sign Adam's
        # first step follows, so the two paths' rounding would move it +-lr apart.
        self.fc = nnx.Linear(2, 4 * 4 * 2, use_bias=False, rngs=rngs)
        self.bn_flat = norm(32, momentum=0.9, rngs=rngs)
        self.bn_map = norm(2, momentum=0.9, rngs=rngs)
        self.out = nnx.Linear(32, 1, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.leaky_relu(self.bn_flat(self.fc(x)), 0.2).reshape(-1, 4, 4, 2)
        return self.out(jnp.tanh(self.bn_map(h)).reshape(x.shape[0], -1))[:, 0]


def _batchnorm_pair(grouped: bool):
    rngs = nnx.Rngs(0)
    d = BNPointDiscriminator(rngs, layers.GroupedBatchNorm if grouped else nnx.BatchNorm)
    g = MLPGenerator(z_dim=3, hidden=16, rngs=rngs)
    # SGD, not Adam: Adam's first steps are about lr * sign(gradient), which turns float32
    # rounding of a gradient near 0 (the two paths reduce in other orders) into lr.
    return split_networks(g, d, optax.sgd(0.1), optax.sgd(0.1), jax.random.PRNGKey(1))


@pytest.mark.parametrize("case", ["plain", "conditional", "grouped-dropout", "plain-dropout",
                                  "grouped-batchnorm", "plain-batchnorm"])
def test_one_d_call_on_real_and_fake_equals_two(case):
    # An MLP D mixes no examples, so the D update scores both batches in one call: the
    # states after two steps must equal those of the two-call reference. With dropout the
    # merged call must draw each batch's masks from that batch's stream (GroupedDropout);
    # with BatchNorm it must normalise each batch by its own statistics and advance the
    # running ones real then fake (GroupedBatchNorm). A D with plain dropout or plain
    # BatchNorm keeps two calls.
    if case.endswith("dropout"):
        nets, state = _dropout_pair(grouped=case.startswith("grouped"))
    elif case.endswith("batchnorm"):
        nets, state = _batchnorm_pair(grouped=case.startswith("grouped"))
    else:
        cfg = configs.replace(CFG, conditional=case == "conditional", objective="lsgan")
        nets, state = init_state(cfg, (2,), num_classes=8 if case == "conditional" else None)
    assert nets.d_dropout == case.endswith("dropout")
    assert nets.d_merges_batches == (not case.startswith("plain-"))
    batch = labelled_batch(32)
    results = []
    for merge in (True, False):
        step_fn = make_train_step(get_objective("lsgan"), nets, merge_real_fake=merge)
        s = jax.tree.map(jnp.copy, state)
        for _ in range(2):
            s, metrics = step_fn(s, batch)
        results.append((s, metrics))
    chex.assert_trees_all_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def _bn_generator_pair(_cfg):
    rngs = nnx.Rngs(0)
    return split_networks(BNPointGenerator(rngs), MLPDiscriminator(in_dim=2, hidden=8, rngs=rngs),
                          optax.adam(1e-3), optax.adam(1e-3), jax.random.PRNGKey(1))


@pytest.mark.parametrize("switches, build", [
    (dict(objective="lsgan"), None),
    (dict(conditional=True, feature_matching=True, fm_layer="base/base/hidden/0",
          historical_avg=0.1, minibatch_disc=True, mbd_kernels=4, n_critic=2), None),
    (dict(objective="wgan-gp", n_critic=2), _bn_generator_pair),
], ids=["lsgan", "conditional-fm-hist-mbd-ncritic2", "batchnorm-g-wgangp-ncritic2"])
def test_the_g_update_on_the_d_updates_samples_equals_running_g_again(switches, build):
    # `reuse_fake` keeps G's forward pass of the last D update for the G update's gradient
    # (and G's new batch statistics); the reference runs G again on the same noise inside
    # the G update's loss. Two steps, so the second starts from a reused first.
    cfg = configs.replace(TECH_CFG, **switches)
    nets, state = build(cfg) if build else init_state(cfg, (2,), num_classes=8)
    objective, n_critic, _ = resolve(cfg)
    batch = labelled_batch(32 * n_critic)
    results = []
    for reuse in (True, False):
        step_fn = make_train_step(objective, nets, n_critic=n_critic,
                                  techniques=cfg.techniques, reuse_fake=reuse)
        s = jax.tree.map(jnp.copy, state)
        for _ in range(2):
            s, metrics = step_fn(s, batch)
        results.append((s, metrics))
    if build:  # G's running statistics moved: the reused pass gave the G update its stats
        assert not jnp.array_equal(jax.tree.leaves(results[0][0].g_stats)[0],
                                   jax.tree.leaves(state.g_stats)[0])
    chex.assert_trees_all_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_a_d_that_mixes_examples_is_called_once_per_batch():
    # With minibatch discrimination D compares examples within a call: merging real and
    # fake would let each see the other, so the step must keep two calls.
    cfg = configs.replace(CFG, minibatch_disc=True)
    nets, _ = init_state(cfg, (2,))
    assert not nets.d_merges_batches
