"""Salimans et al. 2016's techniques as switches of the one train step: feature matching,
minibatch discrimination, historical averaging, one-sided label smoothing, virtual batch
norm; each composes with the step (compiles once, stays finite)."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import averaging, configs, losses
from jaxgan.configs import MixtureConfig, TrainConfig, Techniques
from jaxgan.nets import MLPDiscriminator
from jaxgan.nets import features
from jaxgan.nets.build import apply_network_techniques
from jaxgan.objectives import get_objective
from jaxgan.state import init_state, split_networks
from jaxgan.step import make_sampler, make_step, make_train_step

CFG = MixtureConfig(objective="nsgan", hidden=16, z_dim=4, batch_size=32, d_lr=1e-3, g_lr=1e-3)


def batch(n=32, seed=7):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 2)) * 0.1 + jnp.array([1.0, 0.0])
    return {"x": x, "y": jnp.arange(n, dtype=jnp.int32) % 8, "index": jnp.arange(n, dtype=jnp.int32)}


# --------------------------------------------------------------------------------------
# Feature matching
# --------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 100.0))
def test_feature_matching_is_zero_when_feature_means_match(seed, scale):
    rng = np.random.default_rng(seed)
    real = (rng.normal(size=(6, 5)) * scale).astype(np.float32)
    # Other examples, other spread, the same batch means.
    fake = rng.normal(size=(6, 5)).astype(np.float32) * scale
    fake = fake - fake.mean(0) + real.mean(0)
    for reduce in ("mean", "sum"):
        assert float(losses.feature_matching(real, fake, reduce=reduce)) < 1e-8 * scale**2
        assert float(losses.feature_matching(real, real + 1.0, reduce=reduce)) > 0.5


def test_feature_matching_hand_values_and_reductions():
    real = jnp.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0]])  # means (2, 2, 0)
    fake = jnp.array([[0.0, 0.0, 0.0]])
    assert float(losses.feature_matching(real, fake, reduce="sum")) == pytest.approx(8.0)
    assert float(losses.feature_matching(real, fake)) == pytest.approx(8.0 / 3)  # official
    with pytest.raises(ValueError, match="reduce"):
        losses.feature_matching(real, fake, reduce="max")


def test_feature_layer_by_path():
    d = MLPDiscriminator(in_dim=2, hidden=8, rngs=nnx.Rngs(0))
    x = jnp.ones((3, 2))
    assert features.feature_layers(d, x) == ["features", "hidden/0", "hidden/1"]
    chex.assert_trees_all_equal(features.layer_features(d, "features", x), d.features(x))
    chex.assert_trees_all_close(features.layer_features(d, "hidden/0", x), d.hidden[0](x))
    with pytest.raises(ValueError, match="hidden/1"):
        features.layer_features(d, "out", x)


# --------------------------------------------------------------------------------------
# One-sided label smoothing
# --------------------------------------------------------------------------------------


def test_label_smoothing_leaves_fake_targets_at_zero():
    nsgan = get_objective("nsgan")
    smoothed = nsgan.with_label_smoothing(0.9)
    real, fake = jnp.array([2.0, -1.0, 0.3]), jnp.array([-3.0, 0.5, 4.0])

    def grad(objective):
        return jax.jit(jax.grad(lambda r, f: jnp.sum(objective.d_loss(r, f)), argnums=(0, 1)))(
            real, fake
        )

    g_real, g_fake = grad(smoothed)
    _, g_fake_plain = grad(nsgan)
    # Fake targets stay 0: the fake logits' gradient is sigmoid(l_fake), unchanged.
    chex.assert_trees_all_close(g_fake, g_fake_plain)
    chex.assert_trees_all_close(g_fake, jax.nn.sigmoid(fake), rtol=1e-6)
    # Real targets become 0.9: gradient sigmoid(l) - 0.9, zero at logit(0.9).
    chex.assert_trees_all_close(g_real, jax.nn.sigmoid(real) - 0.9, rtol=1e-5, atol=1e-6)
    assert smoothed.g_loss is nsgan.g_loss and nsgan.with_label_smoothing(1.0) is nsgan


def test_label_smoothing_for_least_squares_and_none_for_hinge():
    lsgan = get_objective("lsgan").with_label_smoothing(0.9)  # 0-1 coding: b 1 -> 0.9
    assert float(lsgan.d_loss(jnp.float32(0.9), jnp.float32(0.0))) == pytest.approx(0.0, abs=1e-12)
    pearson = get_objective("lsgan-pearson").with_label_smoothing(0.9)  # b 1 -> 0.8, a = -1
    assert float(pearson.d_loss(jnp.float32(0.8), jnp.float32(-1.0))) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="no real target"):
        get_objective("hinge").with_label_smoothing(0.9)
    with pytest.raises(ValueError, match="label_smoothing"):
        Techniques(label_smoothing=1.5)


# --------------------------------------------------------------------------------------
# Historical averaging
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


def test_historical_averaging_in_the_step_tracks_both_players():
    cfg = configs.replace(CFG, historical_avg=0.5)
    nets, state = init_state(cfg, (2,))
    chex.clear_trace_counter()
    raw, _ = make_step(cfg, nets, jit=False)
    step_fn = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    g_seen, d_seen = [state.g_params], [state.d_params]
    state = jax.tree.map(jnp.copy, state)
    for _ in range(4):
        state, metrics = step_fn(state, batch())
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
    nets, state = init_state(CFG, (2,))
    step_fn = make_train_step(get_objective("nsgan"), nets, techniques=Techniques(historical_avg=1.0))
    with pytest.raises(ValueError, match="state.extra"):
        step_fn(state, batch())


# --------------------------------------------------------------------------------------
# Every switch composes with the one step
# --------------------------------------------------------------------------------------


def run_compiled(nets, state, cfg=CFG, steps=3, n=32, techniques=None):
    chex.clear_trace_counter()  # every test builds its own train_step
    if techniques is None:
        raw, _ = make_step(cfg, nets, jit=False)
    else:
        raw = make_train_step(get_objective(cfg.objective), nets, techniques=techniques, jit=False)
    step_fn = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    state = jax.tree.map(jnp.copy, state)
    for _ in range(steps):
        state, metrics = step_fn(state, batch(n))
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
    cfg = configs.replace(CFG, **switches)
    nets, state = init_state(cfg, (2,), num_classes=8)
    n = 32 * (cfg.n_critic or 1)
    run_compiled(nets, state, cfg, n=n)


class BNPointGenerator(nnx.Module):
    """A generator of 2-D points with batch norm on a flat and on an image-shaped layer."""

    def __init__(self, rngs):
        self.z_dim, self.out_shape = 3, (2,)
        self.fc = nnx.Linear(3, 4 * 4 * 2, rngs=rngs)
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


def test_every_technique_is_a_flat_config_field():
    # The CLI's flags and compare's +switches name the nested techniques by their own names.
    types = configs.field_types(TrainConfig)
    for f in dataclasses.fields(Techniques):
        assert f.name in types, f.name
    cfg = configs.replace(CFG, feature_matching=True, steps=3)
    assert cfg.techniques.feature_matching and cfg.steps == 3
    with pytest.raises(ValueError, match="no field"):
        configs.replace(CFG, feature_matchin=True)


def test_techniques_from_config_and_names():
    t = Techniques(feature_matching=True, historical_avg=0.1, label_smoothing=0.9)
    assert t.names == ("fm", "ha", "ls") and Techniques().names == ()
    # A config.json written before the techniques were nested still loads.
    import json
    flat = json.loads(MixtureConfig(techniques=t).to_json())
    flat.update(flat.pop("techniques"))
    assert configs.from_dict(flat).techniques == t
    with pytest.raises(ValueError, match="fm_reduce"):
        Techniques(fm_reduce="max")
    with pytest.raises(ValueError, match="no BatchNorm"):
        init_state(configs.replace(MixtureConfig(hidden=8, z_dim=2), vbn=True), (2,))

