"""GLO: the latent table's update, projection, PCA init, the uses, and a run of the script."""

import dataclasses
import json
import runpy
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from jaxgan import glo

TINY = glo.GLOConfig(width=4, z_dim=4, levels=3, batch_size=8)
N = 32


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random 28x28 images in [-1, 1]: a bright Gaussian blob each."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    c = rng.uniform(8, 20, (n, 2, 1, 1))
    s = rng.uniform(2, 5, (n, 1, 1))
    x = np.exp(-((yy - c[:, 0]) ** 2 + (xx - c[:, 1]) ** 2) / (2 * s**2))
    return (2 * x - 1).astype(np.float32)[..., None]


@pytest.fixture(scope="module")
def tiny():
    x = blobs(N)
    nets, state = glo.init_state(TINY, (28, 28, 1), N, x)
    return x, nets, state


@pytest.fixture(scope="module")
def step(tiny):
    _, nets, _ = tiny
    return jax.jit(chex.assert_max_traces(glo.make_train_step(TINY, nets, jit=False), n=1),
                   donate_argnums=0)


def batch(x, index):
    index = np.asarray(index, np.int32)
    return {"x": jnp.asarray(x[index]), "y": jnp.zeros(len(index), jnp.int32),
            "index": jnp.asarray(index)}


def fresh(state):
    return jax.tree.map(jnp.copy, state)  # the step donates its input


def test_project_onto_sphere_and_ball():
    z = jnp.array([[3.0, 4.0], [0.3, 0.4]])
    chex.assert_trees_all_close(glo.project(z, "sphere"), jnp.array([[0.6, 0.8], [0.6, 0.8]]))
    chex.assert_trees_all_close(glo.project(z, "ball"), jnp.array([[0.6, 0.8], [0.3, 0.4]]))
    with pytest.raises(ValueError, match="projection"):
        glo.project(z, "cube")


def test_pca_init_is_the_projected_principal_coefficients(tiny):
    x, _, state = tiny
    pca = glo.fit_pca(x, TINY.z_dim)
    flat = x.reshape(N, -1)
    _, _, vt = np.linalg.svd(flat - flat.mean(0), full_matrices=False)
    chex.assert_trees_all_close(np.abs(pca.components @ vt[: TINY.z_dim].T),
                                np.eye(TINY.z_dim), atol=1e-4)
    codes = pca.encode(x)
    chex.assert_trees_all_close(state.latents, codes / np.linalg.norm(codes, axis=1,
                                                                       keepdims=True), atol=1e-5)


def test_only_the_batch_rows_change_and_stay_on_the_sphere(tiny, step):
    x, _, state = tiny
    before = np.asarray(state.latents)
    index = [3, 17, 0, 9, 30, 21, 5, 12]
    after, metrics = step(fresh(state), batch(x, index))
    after = np.asarray(after.latents)
    others = np.setdiff1d(np.arange(N), index)
    np.testing.assert_array_equal(after[others], before[others])
    assert np.all(np.any(after[index] != before[index], axis=1))
    chex.assert_trees_all_close(np.linalg.norm(after, axis=1), np.ones(N), atol=1e-6)
    chex.assert_tree_all_finite(metrics)


def test_rows_stay_in_the_ball():
    cfg = dataclasses.replace(TINY, projection="ball", init="normal", z_lr=200.0)
    x = blobs(N)
    nets, state = glo.init_state(cfg, (28, 28, 1), N, x)
    assert np.all(np.linalg.norm(state.latents, axis=1) <= 1 + 1e-6)
    state = state.replace(latents=state.latents * 0.5)  # inside: the ball leaves them be...
    new, _ = glo.make_train_step(cfg, nets)(state, batch(x, range(8)))
    norms = np.linalg.norm(new.latents, axis=1)
    assert np.all(norms <= 1 + 1e-6) and np.any(norms < 1 - 1e-3)


def test_the_sparse_update_is_sgd_on_the_whole_table(tiny, step):
    # Gather, differentiate, scatter-add, project == a dense SGD step on the whole (N, d)
    # table followed by projecting the touched rows; a repeated index sums its gradients.
    x, nets, state = tiny
    b = batch(x, [4, 4, 7, 1, 2, 8, 11, 6])
    new, _ = step(fresh(state), b)
    loss_fn = TINY.loss_fn()

    @jax.jit
    def dense_sgd(table):
        def loss(table):
            x_hat, _ = glo.apply(nets.g_graph, state.g_params, state.g_stats, table[b["index"]])
            return jnp.mean(loss_fn(x_hat, b["x"]))

        return table - TINY.z_lr * jax.grad(loss)(table)

    dense = dense_sgd(state.latents)
    touched = np.unique(b["index"])
    expected = np.asarray(state.latents).copy()
    expected[touched] = np.asarray(glo.project(dense[touched]))
    chex.assert_trees_all_close(new.latents, expected, atol=1e-6)


def test_the_loss_falls_on_a_fixed_batch_and_the_step_compiles_once(tiny, step):
    x, _, state = tiny
    b = batch(x, range(8, 16))
    state = fresh(state)
    losses = []
    for _ in range(25):
        state, metrics = step(state, b)
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses
    assert int(state.step) == 25
    step(state, batch(x, range(16, 24)))  # new data, same shapes: no retrace


def test_a_stateful_latent_optimiser_is_refused():
    with pytest.raises(ValueError, match="stateless"):
        glo._assert_stateless(optax.sgd(1.0, momentum=0.9), 4)


def test_gaussian_fit_sampling_and_interpolation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    z = rng.normal(size=(20000, 4)) @ a.T + np.array([1.0, 0, 0, -1])
    g = glo.fit_gaussian(z)
    chex.assert_trees_all_close(g.weights, np.ones(1))
    chex.assert_trees_all_close(g.mean[0], z.mean(0), atol=1e-5)
    chex.assert_trees_all_close(g.chol[0] @ g.chol[0].T, np.cov(z, rowvar=False), rtol=1e-4,
                                atol=1e-4)
    s = glo.sample_latents(g, jax.random.PRNGKey(0), 100)
    chex.assert_trees_all_close(jnp.linalg.norm(s, axis=1), jnp.ones(100), atol=1e-6)
    chex.assert_trees_all_equal(s, glo.sample_latents(g, jax.random.PRNGKey(0), 100))
    # Two far-apart clusters: the mixture finds both, with their weights and spreads.
    two = np.concatenate([rng.normal(size=(300, 4)) * 0.1 + 5, rng.normal(size=(100, 4)) * 0.1])
    mix = glo.fit_gaussian(two, 2)
    order = np.argsort(mix.weights)
    chex.assert_trees_all_close(mix.weights[order], np.array([0.25, 0.75]))
    chex.assert_trees_all_close(mix.mean[order], np.array([[0.0] * 4, [5.0] * 4]), atol=0.05)
    z0, z1 = glo.project(jnp.asarray(z[:3])), glo.project(jnp.asarray(z[3:6]))
    path = glo.interpolate(z0, z1, 5).reshape(3, 5, 4)
    chex.assert_trees_all_close(path[:, 0], z0, atol=1e-6)
    chex.assert_trees_all_close(path[:, -1], z1, atol=1e-6)


def test_fit_latents_with_theta_frozen_lowers_the_loss(tiny, step):
    x, nets, state = tiny
    state = fresh(state)
    for i in range(4):
        state, _ = step(state, batch(x, range(8 * i, 8 * i + 8)))
    held_out = blobs(6, seed=1)
    pca = glo.fit_pca(x, 4)
    z0 = glo.held_out_init(TINY, state, pca, held_out, kind="pca")
    z, curve = glo.fit_latents(TINY, nets, state, held_out, z0, steps=8, lr=1.0)
    assert curve.shape == (9,) and curve[-1] < curve[0]
    chex.assert_trees_all_close(np.linalg.norm(z, axis=1), np.ones(6), atol=1e-6)
    near = glo.held_out_init(TINY, state, pca, x[:5], kind="nearest", train_codes=pca.encode(x))
    chex.assert_trees_all_close(near, state.latents[:5])  # a training image is its own nearest


def test_one_step_of_the_experiment_script_then_load_and_sample(
        mnist_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = ["glo_mnist.py", "--data-dir", str(mnist_dir), "--steps", "1", "--width", "4",
            "--batch-size", "16", "--out", str(out), "--no-progress", "--test-images", "8",
            "--fit-steps", "3", "--fid-samples", "0", "--num-samples", "16",
            "--mixture-components", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    script = Path(__file__).resolve().parents[1] / "experiments" / "glo_mnist.py"
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    for name in ("config.json", "data.json", "metrics.jsonl", "pca.npz", "samples.png",
                 "reconstructions.png", "test_reconstructions.png", "interpolations.png",
                 "loss_curve.png", "results.json"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "config.json").read_text())["config"] == "GLOConfig"
    assert glo.is_glo_run(out) and glo.is_glo_run(out / "checkpoints")
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 1 and np.isfinite(results["test_mse_glo"])
    assert np.asarray(Image.open(out / "samples.png")).std() > 0

    run = glo.load_run(out)
    assert run.state.latents.shape == (22_699, 32) and int(run.state.step) == 1
    x = glo.sample(run, jax.random.PRNGKey(0), 5)
    assert x.shape == (5, 28, 28, 1) and np.all(np.abs(x) <= 1)



def test_resume_equals_an_uninterrupted_run(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(blobs(40)):
        grey = Image.fromarray(np.uint8((img[..., 0] + 1) * 127.5))
        grey.convert("RGB").save(photos / f"{i}.png")
    cfg = dataclasses.replace(TINY, dataset=f"folder:{photos}", resolution=28, steps=4,
                              log_every=2, num_samples=4)
    straight, _ = glo.train(cfg, tmp_path / "straight", progress=False)
    glo.train(dataclasses.replace(cfg, steps=2), tmp_path / "run", progress=False)
    resumed, _ = glo.train(cfg, tmp_path / "run", resume=True, progress=False)
    chex.assert_trees_all_equal(resumed, straight)
    assert straight.latents.shape == (40, TINY.z_dim)
    with pytest.raises(ValueError, match="differs"):
        glo.train(dataclasses.replace(cfg, z_lr=1.0), tmp_path / "run", resume=True,
                  progress=False)
    with pytest.raises(FileExistsError):
        glo.train(cfg, tmp_path / "run", progress=False)
