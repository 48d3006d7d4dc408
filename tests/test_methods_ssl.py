"""The semi-supervised K+1 GAN (`jaxgan.methods.ssl`): its losses, the step, the averaged D,
the classifier's test error, the sampler, and a run through `jaxgan.runs`."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from images import sampled_digits

from jaxgan import configs, losses, runs, scoring
from jaxgan.configs import SSLConfig, sizes
from jaxgan.methods import ssl
from jaxgan.plots import read_metrics
from jaxgan.state import GANState

logit_rows = st.lists(
    st.lists(st.floats(-8.0, 8.0, allow_nan=False), min_size=3, max_size=3), min_size=2, max_size=2
)


class SSLLossTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_unsup_loss_is_gan_loss_with_d_z_over_z_plus_1(self):
        rng = np.random.default_rng(0)
        real, fake = rng.normal(0, 3, (5, 4)), rng.normal(0, 3, (5, 4))
        got = self.variant(losses.ssl_d_unsup_loss)(jnp.asarray(real, jnp.float32),
                                                    jnp.asarray(fake, jnp.float32))
        # Naively, in float64: D = Z / (Z + 1).
        d_real = np.exp(real).sum(1) / (np.exp(real).sum(1) + 1)
        d_fake = np.exp(fake).sum(1) / (np.exp(fake).sum(1) + 1)
        np.testing.assert_allclose(got, -np.log(d_real) - np.log(1 - d_fake), rtol=1e-5)
        # An explicit (K+1)-way softmax whose fake logit is 0.
        def p_fake(l):
            full = np.concatenate([l, np.zeros((len(l), 1))], axis=1)
            e = np.exp(full - full.max(1, keepdims=True))
            return (e / e.sum(1, keepdims=True))[:, -1]

        np.testing.assert_allclose(
            got, -np.log(1 - p_fake(real)) - np.log(p_fake(fake)), rtol=1e-5
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_losses_finite_at_extreme_logits(self):
        extreme = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [100.0, 90.0, -3.0]])
        unsup = self.variant(lambda r, f: jnp.mean(losses.ssl_d_unsup_loss(r, f)))
        sup = self.variant(lambda l: jnp.mean(losses.ssl_sup_loss(l, jnp.array([1, 0, 2]))))
        chex.assert_tree_all_finite((unsup(extreme, extreme[::-1]), sup(extreme)))
        chex.assert_tree_all_finite(jax.grad(unsup, argnums=(0, 1))(extreme, extreme[::-1]))
        chex.assert_tree_all_finite(jax.grad(sup)(extreme))
        # A confident real logit costs nothing, a confidently "fake" real example a lot.
        assert float(losses.ssl_d_unsup_loss(extreme[:1], extreme[1:2])[0]) < 1e-6


@settings(max_examples=30, deadline=None)
@given(logit_rows, st.integers(0, 2))
def test_sup_loss_is_cross_entropy_over_k_classes(rows, label):
    l = np.asarray(rows, np.float64)
    p = np.exp(l - l.max(1, keepdims=True))
    want = -np.log(p / p.sum(1, keepdims=True))[:, label]
    got = losses.ssl_sup_loss(jnp.asarray(l, jnp.float32), jnp.full((2,), label))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_averaged_params_are_the_bias_corrected_moving_average():
    rate = 0.1
    thetas = [jnp.array([float(i), -2.0 * i]) for i in range(1, 6)]
    avg = jnp.zeros(2)
    for t in thetas:
        avg = avg + rate * (t - avg)
    state = GANState(step=jnp.int32(5), key=None, g_params={}, g_stats={},
                     d_params={"w": thetas[-1]}, d_stats={}, g_opt=(), d_opt=(),
                     extra={"d_avg": {"w": avg}})
    w = np.array([rate * (1 - rate) ** (5 - i) for i in range(1, 6)])
    want = (w[:, None] * np.stack(thetas)).sum(0) / w.sum()
    np.testing.assert_allclose(ssl.averaged_d_params(state, rate)["w"], want, rtol=1e-5)
    chex.assert_trees_all_equal(ssl.averaged_d_params(state, 0.0)["w"], thetas[-1])
    fresh = state.replace(step=jnp.int32(0))
    chex.assert_trees_all_equal(ssl.averaged_d_params(fresh, rate)["w"], thetas[-1])


SMALL = SSLConfig(d_hidden="32,16", g_hidden="16", z_dim=8, batch_size=20, labels=20,
                  ema_rate=0.1)


@pytest.fixture(scope="module")
def trained():
    """SMALL after 30 steps on one fixed batch, the step compiled once."""
    rng = np.random.default_rng(0)
    x_init = rng.uniform(-1, 1, (50, 28, 28, 1)).astype(np.float32)
    nets, state = ssl.init_state(SMALL, x_init, num_classes=10)
    chex.assert_tree_all_finite(state)
    raw = ssl.make_train_step(SMALL, nets, jit=False)
    step_fn = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=0)
    x_lab = rng.uniform(-1, 1, (20, 28, 28, 1)).astype(np.float32)
    y_lab = np.arange(20, dtype=np.int32) % 10
    batch = {"x_lab": x_lab, "y_lab": y_lab, "x_unl": x_init[:20], "x_unl2": x_init[20:40]}
    history = []
    for _ in range(30):
        state, m = step_fn(state, batch)
        history.append(m)
    return nets, state, history, batch


def test_step_compiles_once_learns_labels_and_is_finite(trained):
    _, state, history, _ = trained
    chex.assert_tree_all_finite((state, history))
    assert int(state.step) == 30
    assert {"loss_lab", "loss_unl", "train_err", "g_loss", "d_real", "d_fake"} <= set(history[-1])
    assert float(history[-1]["loss_lab"]) < float(history[0]["loss_lab"])
    # The moving average was updated every step: it is neither zero nor D's current weights.
    assert not all(np.allclose(a, 0) for a in jax.tree.leaves(state.extra["d_avg"]))
    avg = ssl.averaged_d_params(state, SMALL.ema_rate)
    assert not all(np.allclose(a, p) for a, p in zip(jax.tree.leaves(avg),
                                                      jax.tree.leaves(state.d_params)))


def test_classifier_test_error_and_sampler(trained):
    nets, state, _, batch = trained
    x_lab, y_lab = batch["x_lab"], batch["y_lab"]
    predict = ssl.make_classifier(nets)
    err = ssl.test_error(predict, state.d_params, state.d_stats, x_lab, y_lab, chunk=7)
    assert err < 0.5  # 20 memorisable examples, most right after 30 steps
    # In chunks (the last one padded) or at once: the same predictions.
    pred = np.asarray(predict(state.d_params, state.d_stats, jnp.asarray(x_lab)))
    assert err == pytest.approx(np.mean(pred != y_lab))
    avg = ssl.averaged_d_params(state, SMALL.ema_rate)
    assert 0.0 <= ssl.test_error(predict, avg, state.d_stats, x_lab, y_lab) <= 1.0
    x = ssl.make_sampler(nets)(state, ssl.sample_z(jax.random.PRNGKey(0), 4, 8))
    chex.assert_shape(x, (4, 28, 28, 1))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    z = ssl.sample_z(jax.random.PRNGKey(1), 1000, 8)
    assert float(z.min()) >= 0.0 and float(z.max()) < 1.0  # the official U(0, 1) noise
    chex.assert_trees_all_close(ssl.to_unit(jnp.array([-1.0, 0.0, 1.0])),
                                jnp.array([0.0, 0.5, 1.0]))


def test_config_validation():
    with pytest.raises(ValueError, match="unlabelled"):
        SSLConfig(unlabelled="some")
    with pytest.raises(ValueError, match="d_hidden"):
        SSLConfig(d_hidden="10,,2")
    assert sizes("1000,500") == (1000, 500)
    assert SSLConfig(seed=4).subset_seed == 4 and SSLConfig(seed=4, label_seed=1).subset_seed == 1


def test_train_load_sample_and_evaluate_on_mnist(mnist_dir, tmp_path, fast_evaluator):
    cfg = SSLConfig(data_dir=str(mnist_dir), d_hidden="32,16", g_hidden="16", labels=20,
                    z_dim=8, batch_size=20, init_examples=40, steps=3, log_every=1,
                    num_samples=16)
    out = tmp_path / "ssl"
    run = runs.train(cfg, out, progress=False)
    assert int(run.state.step) == 3
    for name in ("config.json", "data.json", "metrics.jsonl", "samples.png", "test_error.png",
                 "samples/epoch_001.png"):
        assert (out / name).stat().st_size > 0, name
    assert configs.load_config(out / "config.json").method == "ssl"
    described = json.loads((out / "data.json").read_text())
    assert len(described["labelled_indices"]) == 20 and described["num_test"] == 10_000
    assert described["num_unlabelled"] == 22_699 - 20

    # The per-epoch history: the records of metrics.jsonl that have a test error.
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records if "loss_lab" in r] == [1, 2, 3]
    history = [r for r in records if "test_error" in r]
    assert len(history) == 1 and history[0]["epoch"] == 1 and history[0]["step"] == 3
    assert 0.0 <= history[0]["test_error"] <= 1.0 and 0.0 <= history[0]["test_error_raw"] <= 1.0

    loaded = runs.load_run(out)
    assert loaded.cfg == cfg and loaded.data == run.data
    chex.assert_trees_all_equal(loaded.state, run.state)
    test_x, test_y = scoring.load_dataset("mnist", data_dir=str(mnist_dir),
                                           split="test").arrays()
    predict = ssl.make_classifier(loaded.nets)
    avg = ssl.averaged_d_params(loaded.state, cfg.ema_rate)
    assert ssl.test_error(predict, avg, loaded.state.d_stats, test_x, test_y) == pytest.approx(
        history[0]["test_error"])

    sampled_digits(out, loaded, tmp_path)

    result = runs.evaluate(loaded, n=200, progress=False)
    assert np.isfinite(result["samples"]["fid"]) and result["samples"]["fid"] >= 0
    assert 0.0 <= result["test_error"] <= 1.0 and 0.0 <= result["test_error_raw"] <= 1.0
    assert result["test_error"] == pytest.approx(history[0]["test_error"])
    assert result["step"] == 3 and result["n"] == 200
    assert json.loads((out / "eval.json").read_text()) == result
