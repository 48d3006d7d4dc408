"""The stabilisers (`jaxgan.configs.Stabilisers`) in the one step: G's EMA is the closed-form
average of G's history and draws the samples; R1 / R2 add exactly the input-gradient
penalty of D, lazily when asked; DiffAugment reaches G's gradient; spectral norm is built
into D; relativistic objectives train; every switch is a flag and a compare switch."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxgan import cli, comparison, configs, losses
from jaxgan.averaging import ema_tracker_read
from jaxgan.configs import MixtureConfig, Stabilisers
from jaxgan.functional import apply
from jaxgan.nets.conditional import (
    AuxiliaryClassifierDiscriminator,
    ProjectionDiscriminator,
)
from jaxgan.objectives import get_objective
from jaxgan.state import init_state
from jaxgan.step import make_sampler, make_step, make_train_step

CFG = MixtureConfig(objective="nsgan", hidden=16, z_dim=4, batch_size=32, d_lr=1e-3,
                    g_lr=1e-3)


def batch(n=32, seed=7):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 2)) * 0.1 + jnp.array([1.0, 0.0])
    return {"x": x}


def steps(cfg, n, shape=(2,), make_batch=batch, num_classes=None):
    nets, state = init_state(cfg, shape, num_classes)
    step, _ = make_step(cfg, nets)
    history, metrics = [], []
    for i in range(n):
        state, m = step(state, make_batch(seed=i))
        history.append(jax.device_get(state.g_params))
        metrics.append(jax.device_get(m))
    return nets, state, history, metrics


def test_the_stabilisers_are_off_by_default_and_checked():
    assert Stabilisers().names == ()
    on = Stabilisers(spectral_norm=True, g_ema=0.999, r1=10, r2=1, diffaug="color/cutout")
    assert on.names == ("sn", "ema", "r1", "r2", "diffaug")
    assert on.diffaug_policy == ("color", "cutout")
    for bad in ({"g_ema": 1.0}, {"r1": -1.0}, {"reg_every": 0}, {"diffaug": "colour"},
                {"diffaug": "cutout,cutout"}):
        with pytest.raises(ValueError):
            Stabilisers(**bad)
    # A run written before the stabilisers existed loads with them off.
    d = json.loads(configs.to_json(CFG))
    d.pop("stabilisers")
    assert configs.from_dict(d).stabilisers == Stabilisers()


def test_g_ema_is_the_closed_form_average_and_draws_the_samples():
    decay = 0.8
    cfg = configs.replace(CFG, g_ema=decay)
    nets, state, history, _ = steps(cfg, 6)
    rate = 1 - decay
    k = len(history)
    weights = np.array([rate * decay ** (k - i) for i in range(1, k + 1)])
    want = jax.tree.map(lambda *ps: np.tensordot(weights, np.stack(ps), axes=1) / weights.sum(),
                        *history)
    got = ema_tracker_read(state.extra["g_ema"], state.g_params)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
    # Samples come from the average, not from G's current parameters.
    z = jax.random.normal(jax.random.PRNGKey(0), (5, cfg.z_dim))
    drawn = make_sampler(nets)(state, z)
    np.testing.assert_allclose(drawn, apply(nets.g_eval, got, state.g_stats, z)[0], rtol=1e-5)
    current = apply(nets.g_eval, state.g_params, state.g_stats, z)[0]
    assert float(jnp.max(jnp.abs(drawn - current))) > 1e-4


@pytest.mark.parametrize("which", ["r1", "r2"])
def test_r1_and_r2_add_the_input_gradient_penalty_lazily(which):
    cfg = configs.replace(CFG, **{which: 4.0})
    nets, state = init_state(cfg, (2,))
    step, _ = make_step(cfg, nets, jit=False)
    # What the penalty must be: D before the update, on the real batch (R1); R2's fakes are
    # drawn inside the step, so R2 is checked by its effect on D's loss below.
    if which == "r1":
        def critic(x):
            return apply(nets.d_graph, state.d_params, state.d_stats, x)[0]
        want = float(jnp.mean(losses.input_gradient_penalty(critic, batch()["x"])))
    plain, _ = make_step(CFG, nets, jit=False)
    _, m = step(jax.tree.map(jnp.copy, state), batch())
    _, m0 = plain(jax.tree.map(jnp.copy, state), batch())
    pen = float(m[f"{which}_penalty"])
    assert pen > 0
    if which == "r1":
        np.testing.assert_allclose(pen, want, rtol=1e-5)
    np.testing.assert_allclose(float(m["d_loss"]), float(m0["d_loss"]) + 0.5 * 4.0 * pen,
                               rtol=1e-5)
    # Lazy: every 2nd D update, weighted by 2, so the mean over updates is the same penalty.
    lazy = configs.replace(cfg, reg_every=2)
    _, _, _, ms = steps(lazy, 4)
    taken = [float(m[f"{which}_penalty"]) for m in ms]
    assert taken[1] == taken[3] == 0.0 and taken[0] > 0 and taken[2] > 0


def test_diffaug_reaches_g_and_is_refused_for_points():
    cfg = configs.DCGANConfig(dataset="mnist", resolution=32, width=4, batch_size=4, z_dim=8,
                              stabilisers=Stabilisers(diffaug="color,translation,cutout"))

    def images(seed=0):
        return {"x": jax.random.uniform(jax.random.PRNGKey(seed), (4, 32, 32, 1), minval=-1)}

    _, state, _, ms = steps(cfg, 2, shape=(32, 32, 1), make_batch=images)
    chex.assert_tree_all_finite((state, ms))
    assert float(ms[-1]["g_grad_norm"]) > 0
    with pytest.raises(ValueError, match="images"):
        init_state(configs.replace(CFG, diffaug="color"), (2,))


def test_spectral_norm_is_built_into_d():
    """The wiring; `tests/test_nets_spectral.py` checks the normalised weights' norms."""
    cfg = configs.replace(CFG, spectral_norm=True)
    nets, state, _, ms = steps(cfg, 30)
    chex.assert_tree_all_finite(ms)
    sigmas = [v for path, v in jax.tree_util.tree_leaves_with_path(state.d_stats)
              if "sigma" in jax.tree_util.keystr(path)]
    assert sigmas, "no spectral-norm statistics in D's state"
    assert "SpectralNorm" in repr(nets.d_graph)


@pytest.mark.parametrize("objective", ["ragan", "ralsgan", "rahinge"])
def test_relativistic_objectives_train_in_the_one_step(objective):
    _, state, _, ms = steps(configs.replace(CFG, objective=objective), 20)
    chex.assert_tree_all_finite((state, ms))
    assert float(ms[-1]["d_loss"]) < float(ms[0]["d_loss"])


def test_every_stabiliser_is_a_flag_and_a_compare_switch(tmp_path, capsys):
    base = comparison.base_config("ring8")
    entry = comparison.parse_entry("hinge+sn+ema+r1+diffaug", base)
    assert entry.stabilisers == Stabilisers(spectral_norm=True, g_ema=0.999, r1=10.0,
                                            diffaug="color/translation/cutout")
    assert comparison.parse_entry("hinge+r1=0.5+reg_every=4", base).stabilisers == Stabilisers(
        r1=0.5, reg_every=4)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--spectral-norm", "--g-ema", "--r1", "--r2", "--reg-every", "--diffaug"):
        assert flag in text, flag
    assert dataclasses.fields(configs.TrainConfig)[-1].name == "stabilisers"


def test_compare_hinge_with_and_without_sn_and_ema_on_mnist(mnist_dir, tmp_path,
                                                            monkeypatch):
    """The issue's command, with a few dozen steps of small batches and the cGAN's MLPs
    (used unconditionally: they compile in seconds where the LSGAN convnets take tens); the
    README's run is the long one, on the default networks. Scoring images is the evaluator's
    job, tested in test_scoring; here each seed is scored by its samples' mean pixel, drawn
    the way the comparison draws them (G's EMA where there is one)."""
    def evaluator(dataset, data_dir):
        def run(nets, state, cfg):
            z = jnp.zeros((16, nets.z_dim))
            seeds = jax.tree.leaves(state.step)[0].shape[0]
            return [{"mean_pixel": float(jnp.mean(make_sampler(nets)(
                jax.tree.map(lambda x: x[i], state), z)))} for i in range(seeds)]
        return run

    monkeypatch.setattr(comparison, "make_evaluator", evaluator)
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--objectives", "hinge,hinge+sn,hinge+sn+ema", "--dataset",
                     "mnist", "--data-dir", str(mnist_dir), "--seeds", "1", "--steps", "40",
                     "--log-every", "20", "--set", "batch_size=8", "--set", "arch=cgan_mlp",
                     "--out", str(out), "--no-progress"]) == 0
    table = (out / "table.md").read_text()
    for entry in ("hinge", "hinge+sn", "hinge+sn+ema"):
        assert f"| {entry} |" in table
    results = json.loads((out / "per_seed.json").read_text())
    scores = {e: results[e]["evals"][-1]["metrics"][0]["mean_pixel"]
              for e in ("hinge", "hinge+sn", "hinge+sn+ema")}
    assert all(np.isfinite(v) for v in scores.values()) and len(set(scores.values())) == 3
    d_losses = {e: results[e]["losses"][-1]["d_loss"] for e in scores}
    assert len(set(map(str, d_losses.values()))) >= 2  # sn changes D's training


def test_the_projection_discriminator_adds_the_label_after_the_features():
    """Miyato & Koyama 2018, Eq. 3: D(x, y) = head(phi(x)) + embed(y) . phi(x), so two
    labels' outputs on one x differ by (embed(y1) - embed(y2)) . phi(x), and D's body is the
    unconditional one (built for the plain input)."""
    cfg = configs.replace(CFG, conditional=True, cond_d="projection", spectral_norm=True)
    nets, state = init_state(cfg, (2,), num_classes=8)
    d = nnx.merge(nets.d_graph, state.d_params, state.d_stats)
    assert isinstance(d, ProjectionDiscriminator)
    x = jax.random.normal(jax.random.PRNGKey(3), (5, 2))
    eval_d = nnx.merge(nets.d_eval, state.d_params, state.d_stats)
    y1, y2 = jnp.full(5, 1), jnp.full(5, 6)
    f = eval_d.features(x, y1)
    e = eval_d.embed.embedding[...]
    np.testing.assert_allclose(eval_d(x, y1) - eval_d(x, y2), f @ (e[1] - e[6]), rtol=1e-4,
                               atol=1e-5)
    assert not isinstance(eval_d.embed, nnx.SpectralNorm)  # embeddings stay as they are
    _, _, _, ms = steps(cfg, 3, make_batch=lambda seed: {
        **batch(seed=seed), "y": jnp.arange(32) % 8}, num_classes=8)
    chex.assert_tree_all_finite(ms)
    with pytest.raises(ValueError, match="minibatch"):
        init_state(configs.replace(cfg, minibatch_disc=True), (2,), num_classes=8)
    assert comparison.parse_entry("nsgan+cond+proj", comparison.base_config("ring8")).cond_d == \
        "projection"
    with pytest.raises(ValueError, match="cond_d"):
        configs.replace(CFG, cond_d="acgan-ish")
    with pytest.raises(ValueError, match="--conditional"):
        configs.replace(CFG, cond_d="projection")


def ring(n, seed=0):
    """n labelled points of ring8's modes (radius 1), class = mode."""
    y = jnp.arange(n) % 8
    angle = 2 * jnp.pi * y / 8
    x = jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)
    return {"x": x + 0.02 * jax.random.normal(jax.random.PRNGKey(seed), (n, 2)), "y": y}


def test_acgan_adds_the_class_loss_on_real_and_fake_to_d_and_on_fake_to_g(monkeypatch):
    """Odena et al. 2017, Eq. 2: D's loss is the objective's plus the class cross-entropy on
    real data (their labels) and on generated data (the labels G was given); G's adds the
    one on its samples. D sees no label. Checked by recording what the step hands the
    objective and the class loss, against D applied outside the step and an independent
    cross-entropy (optax's)."""
    cfg = configs.replace(CFG, conditional=True, cond_d="acgan", batch_size=16)
    nets, state = init_state(cfg, (2,), num_classes=8)
    assert nets.d_classifies
    d = nnx.merge(nets.d_eval, state.d_params, state.d_stats)
    assert isinstance(d, AuxiliaryClassifierDiscriminator)
    b = ring(16)
    source, classes = d(b["x"], b["y"])
    chex.assert_shape(classes, (16, 8))
    chex.assert_trees_all_close(d(b["x"], (b["y"] + 3) % 8), (source, classes))  # no label in
    seen = {"source": [], "class": []}
    plain = get_objective("nsgan")

    # The losses run under value_and_grad: debug callbacks read their inputs' values.
    def d_loss(real, fake):
        jax.debug.callback(lambda *a: seen["source"].append(a), real, fake)
        return plain.d_loss(real, fake)

    original = losses.class_cross_entropy

    def class_ce(logits, labels):
        jax.debug.callback(lambda *a: seen["class"].append(a), logits, labels)
        return original(logits, labels)

    monkeypatch.setattr(losses, "class_cross_entropy", class_ce)
    step = make_train_step(dataclasses.replace(plain, d_loss=d_loss), nets, jit=False)
    _, m = step(jax.tree.map(jnp.copy, state), b)
    (real_cls, real_y), (fake_cls, fake_y), (g_cls, g_y) = seen["class"]
    (real_src, fake_src), = seen["source"]
    # The real batch, with its labels, through D as it was before the update (its MLP has
    # no batch statistics nor dropout, so train mode computes what the eval view does).
    np.testing.assert_array_equal(real_y, b["y"])
    chex.assert_trees_all_close((real_src, real_cls), (source, classes), rtol=1e-5, atol=1e-6)

    def ce(logits, labels):
        return float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels)))

    want_class = ce(real_cls, real_y) + ce(fake_cls, fake_y)
    np.testing.assert_allclose(float(m["d_class_loss"]), want_class, rtol=1e-5)
    np.testing.assert_allclose(float(m["d_loss"]),
                               float(jnp.mean(plain.d_loss(real_src, fake_src))) + want_class,
                               rtol=1e-5)
    np.testing.assert_allclose(float(m["g_class_loss"]), ce(g_cls, g_y), rtol=1e-5)
    assert g_y.shape == (16,) and int(jnp.min(g_y)) >= 0 and int(jnp.max(g_y)) < 8
    with pytest.raises(ValueError, match="minibatch"):
        init_state(configs.replace(cfg, minibatch_disc=True), (2,), num_classes=8)
    assert comparison.parse_entry("nsgan+cond+acgan", comparison.base_config("ring8")).cond_d \
        == "acgan"


def test_acgan_learns_the_classes_and_g_draws_each_label_from_its_mode():
    """On ring8 with each mode its class: after 400 steps D's class head names the mode of
    real points, and G's samples of label k lie nearest mode k, the conditioning AC-GAN's
    class loss gives G (its D never sees the label)."""
    cfg = configs.replace(CFG, conditional=True, cond_d="acgan", batch_size=64, hidden=32)
    nets, state = init_state(cfg, (2,), num_classes=8)
    step, _ = make_step(cfg, nets)
    for i in range(400):
        state, m = step(state, ring(64, seed=i))
    test = ring(256, seed=10_000)
    d = nnx.merge(nets.d_eval, state.d_params, state.d_stats)
    accuracy = float(jnp.mean(jnp.argmax(d(test["x"], test["y"])[1], -1) == test["y"]))
    assert accuracy > 0.9, accuracy
    z = jax.random.normal(jax.random.PRNGKey(1), (256, nets.z_dim))
    x = make_sampler(nets)(state, z, test["y"])
    modes = ring(8)["x"]
    nearest = jnp.argmin(jnp.sum((x[:, None] - modes[None]) ** 2, -1), -1)
    on_label = float(jnp.mean(nearest == test["y"]))
    assert on_label > 0.5, on_label  # chance: 1/8
