"""The semi-supervised K+1 GAN: its losses, the labelled split, the step, the averaged D."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import losses, ssl

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


def test_select_labelled_is_balanced_and_seeded():
    y = np.random.default_rng(0).integers(0, 10, 3000)
    idx = ssl.select_labelled(y, 100, 10, seed=3)
    assert len(set(idx.tolist())) == 100
    np.testing.assert_array_equal(np.bincount(y[idx], minlength=10), np.full(10, 10))
    np.testing.assert_array_equal(idx, ssl.select_labelled(y, 100, 10, seed=3))
    assert set(idx.tolist()) != set(ssl.select_labelled(y, 100, 10, seed=4).tolist())
    with pytest.raises(ValueError, match="balanced"):
        ssl.select_labelled(y, 25, 10, seed=0)


def test_labelled_batches_tile_permutations_and_resume():
    stream = ssl.labelled_batches(20, 100, seed=1)
    first = [next(stream) for _ in range(3)]
    for b in first:  # 20 examples in a batch of 100: each exactly 5 times
        np.testing.assert_array_equal(np.bincount(b, minlength=20), np.full(20, 5))
    resumed = ssl.labelled_batches(20, 100, seed=1, start_step=2)
    np.testing.assert_array_equal(next(resumed), first[2])
    big = ssl.labelled_batches(200, 100, seed=0)
    a, b = next(big), next(big)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(200))  # one permutation


def test_averaged_params_are_the_bias_corrected_moving_average():
    rate = 0.1
    thetas = [jnp.array([float(i), -2.0 * i]) for i in range(1, 6)]
    avg = jnp.zeros(2)
    for t in thetas:
        avg = avg + rate * (t - avg)
    state = ssl.SSLState(step=jnp.int32(5), key=None, g_params={}, g_stats={},
                         d_params={"w": thetas[-1]}, d_stats={}, g_opt=(), d_opt=(),
                         d_avg={"w": avg})
    w = np.array([rate * (1 - rate) ** (5 - i) for i in range(1, 6)])
    want = (w[:, None] * np.stack(thetas)).sum(0) / w.sum()
    np.testing.assert_allclose(ssl.averaged_d_params(state, rate)["w"], want, rtol=1e-5)
    chex.assert_trees_all_equal(ssl.averaged_d_params(state, 0.0)["w"], thetas[-1])
    fresh = state.replace(step=jnp.int32(0))
    chex.assert_trees_all_equal(ssl.averaged_d_params(fresh, rate)["w"], thetas[-1])


SMALL = ssl.SSLConfig(d_hidden="32,16", g_hidden="16", z_dim=8, batch_size=20, labels=20,
                      ema_rate=0.1)


def test_step_compiles_once_learns_labels_and_is_finite():
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
    chex.assert_tree_all_finite((state, history))
    assert {"loss_lab", "loss_unl", "train_err", "g_loss", "d_real", "d_fake"} <= set(history[-1])
    assert float(history[-1]["loss_lab"]) < float(history[0]["loss_lab"])
    predict = ssl.make_classifier(nets)
    err = ssl.test_error(predict, state.d_params, state.d_stats, x_lab, y_lab, chunk=7)
    assert err < 0.5  # 20 memorisable examples, most right after 30 steps
    avg = ssl.averaged_d_params(state, SMALL.ema_rate)
    assert 0.0 <= ssl.test_error(predict, avg, state.d_stats, x_lab, y_lab) <= 1.0
    x = ssl.make_sampler(nets)(state, ssl.sample_z(jax.random.PRNGKey(0), 4, 8))
    chex.assert_shape(x, (4, 28, 28, 1))
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_config_validation():
    with pytest.raises(ValueError, match="unlabelled"):
        ssl.SSLConfig(unlabelled="some")
    with pytest.raises(ValueError, match="d_hidden"):
        ssl.SSLConfig(d_hidden="10,,2")
    assert ssl.sizes("1000,500") == (1000, 500)
    assert ssl.SSLConfig(seed=4).subset_seed == 4 and ssl.SSLConfig(seed=4, label_seed=1).subset_seed == 1


def test_one_step_of_the_experiment_script(mnist_dir, tmp_path, monkeypatch):
    import json
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "experiments" / "improved_gan_ssl_mnist.py"
    out = tmp_path / "ssl"
    monkeypatch.setattr(sys, "argv", [
        script.name, "--data-dir", str(mnist_dir), "--labels", "20", "--seeds", "1",
        "--steps", "1", "--d-hidden", "32,16", "--g-hidden", "16", "--z-dim", "8",
        "--batch-size", "20", "--init-examples", "40", "--num-samples", "16", "--log-every", "1",
        "--out", str(out), "--no-progress",
    ])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1] and 0.0 <= summary["test_error_mean"] <= 1.0
    assert (out / "test_error.png").exists() and (out / "seed1" / "samples.png").exists()
    labelled = json.loads((out / "seed1" / "data.json").read_text())["labelled_indices"]
    assert len(labelled) == 20


def test_summary_is_mean_and_std_over_seeds():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "improved_gan_ssl_mnist.py"
    spec = importlib.util.spec_from_file_location("ssl_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    curves = {s: [{"epoch": 1, "test_error": 0.5, "test_error_raw": 0.6},
                  {"epoch": 2, "test_error": e, "test_error_raw": e}] for s, e in
              ((0, 0.01), (1, 0.02), (2, 0.03))}
    summary = module.summarise(curves, 100)
    assert summary["test_error_mean"] == pytest.approx(0.02)
    assert summary["test_error_std"] == pytest.approx(0.01)  # sample std, as the paper's +-
    assert summary["paper_errors_out_of_10000"] == (93, 6.5)
