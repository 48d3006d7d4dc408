"""GLO (`jaxgan.methods.glo`): the latent table's update, generating and reconstructing, the
uses of a run (sampler, interpolation, held-out fitting), and runs through `jaxgan.runs`."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from images import blobs, sampled_digits
from PIL import Image

from jaxgan import configs, runs
from jaxgan.configs import GLOConfig
from jaxgan.functional import apply
from jaxgan.glo_latents import fit_pca, project
from jaxgan.methods import Run, glo

TINY = GLOConfig(width=4, z_dim=4, levels=3, batch_size=8)
N = 32


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


@pytest.fixture(scope="module")
def trained(tiny, step, tmp_path_factory):
    """The tiny model after 4 steps (one pass over the 32 images), as a `Run`."""
    x, nets, state = tiny
    state = fresh(state)
    for i in range(4):
        state, _ = step(state, batch(x, range(8 * i, 8 * i + 8)))
    return Run(TINY, nets, state, tmp_path_factory.mktemp("glo_run"), {})


def batch(x, index):
    index = np.asarray(index, np.int32)
    return {"x": jnp.asarray(x[index]), "y": jnp.zeros(len(index), jnp.int32),
            "index": jnp.asarray(index)}


def fresh(state):
    return jax.tree.map(jnp.copy, state)  # the step donates its input


# --------------------------------------------------------------------------------------
# State and step
# --------------------------------------------------------------------------------------


def test_the_table_starts_at_the_projected_pca_codes(tiny):
    x, nets, state = tiny
    codes = fit_pca(x, TINY.z_dim).encode(x)
    chex.assert_trees_all_close(state.latents, codes / np.linalg.norm(codes, axis=1,
                                                                       keepdims=True), atol=1e-5)
    assert state.latents.shape == (N, TINY.z_dim) and int(state.step) == 0
    assert nets.z_dim == TINY.z_dim and nets.out_shape == (28, 28, 1)
    # Without the images (restoring a checkpoint), a zero table of the right shape.
    _, like = glo.init_state(TINY, (28, 28, 1), N)
    chex.assert_trees_all_equal(like.latents, jnp.zeros((N, TINY.z_dim)))
    chex.assert_trees_all_equal_structs(like, state)
    with pytest.raises(ValueError, match="images"):
        glo.init_state(TINY, (2,), N)


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
    assert set(metrics) == {"loss", "mse", "g_grad_norm", "z_grad_norm", "z_step",
                            "g_param_norm"}


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
    loss_fn = glo.reconstruction_loss(TINY)

    @jax.jit
    def dense_sgd(table):
        def loss(table):
            x_hat, _ = apply(nets.g_graph, state.g_params, state.g_stats, table[b["index"]])
            return jnp.mean(loss_fn(x_hat, b["x"]))

        return table - TINY.z_lr * jax.grad(loss)(table)

    dense = dense_sgd(state.latents)
    touched = np.unique(b["index"])
    expected = np.asarray(state.latents).copy()
    expected[touched] = np.asarray(project(dense[touched]))
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


# --------------------------------------------------------------------------------------
# Generating, reconstructing and the uses of a run
# --------------------------------------------------------------------------------------


def test_generate_in_chunks_and_reconstruct(trained):
    nets, state = trained.nets, trained.state
    z = state.latents[:7]
    x = glo.generate(nets, state, z)
    assert x.shape == (7, 28, 28, 1) and np.all(np.abs(x) <= 1)
    # Inference mode treats rows independently: chunks (padded) change nothing.
    chex.assert_trees_all_close(glo.generate(nets, state, z, chunk=3), x, atol=1e-6)
    direct = apply(nets.g_eval, state.g_params, state.g_stats, z)[0]
    chex.assert_trees_all_close(x, direct, atol=1e-6)
    assert glo.generate(nets, state, np.zeros((0, TINY.z_dim))).shape == (0, 28, 28, 1)
    chex.assert_trees_all_close(glo.reconstruct(nets, state, [5, 2]), x[[5, 2]], atol=1e-6)


def test_paired_rows_interleave_real_and_reconstructed_rows():
    real, fake = np.arange(10)[:, None] * 1.0, -np.arange(10)[:, None] * 1.0
    rows = glo.paired_rows(real, fake, per_row=4)[:, 0]  # 10 -> 2 full rows of 4
    np.testing.assert_array_equal(rows, [0, 1, 2, 3, 0, -1, -2, -3, 4, 5, 6, 7, -4, -5, -6, -7])


def test_sample_from_the_fitted_gaussian_and_interpolation_strips(trained):
    g = glo.gaussian(trained)
    assert g is glo.gaussian(trained)  # fitted once
    assert len(glo.gaussian(trained, 2).weights) == 2
    x = glo.sample(trained, jax.random.PRNGKey(0), 5)
    assert x.shape == (5, 28, 28, 1) and np.all(np.abs(x) <= 1)
    chex.assert_trees_all_equal(x, glo.sample(trained, jax.random.PRNGKey(0), 5))
    assert glo.sample(trained, jax.random.PRNGKey(0), 5, components=2).shape == x.shape
    with pytest.raises(ValueError, match="at least 1"):
        glo.sample(trained, jax.random.PRNGKey(0), 0)
    strips = glo.interpolation_strips(trained, jax.random.PRNGKey(1), 3, 4)
    assert strips.shape == (12, 28, 28, 1)
    # Each strip walks between the reconstructions of two training images.
    every = glo.reconstruct(trained.nets, trained.state, np.arange(N)).reshape(N, -1)
    for end in strips.reshape(3, 4, -1)[:, [0, -1]].reshape(6, -1):
        assert np.min(np.abs(every - end).max(axis=1)) < 1e-5


def test_fit_held_out_with_theta_frozen_lowers_the_loss(tiny, trained):
    x = tiny[0]
    held_out = blobs(6, seed=1)
    pca = fit_pca(x, 4)
    z0 = glo.held_out_start(trained, pca, held_out, kind="pca")
    z, curve = glo.fit_held_out(trained, held_out, z0, steps=8, lr=1.0)
    assert curve.shape == (9,) and curve[-1] < curve[0]
    chex.assert_trees_all_close(np.linalg.norm(z, axis=1), np.ones(6), atol=1e-6)
    near = glo.held_out_start(trained, pca, x[:5], kind="nearest", x_train=x)
    chex.assert_trees_all_close(near, trained.state.latents[:5])  # its own nearest
    # The defaults: the config's fit_init ("pca") and fit_steps.
    chex.assert_trees_all_equal(glo.held_out_start(trained, pca, held_out), z0)
    run = dataclasses.replace(trained, cfg=dataclasses.replace(TINY, fit_steps=2))
    assert glo.fit_held_out(run, held_out, z0)[1].shape == (3,)
    with pytest.raises(ValueError, match="x_train"):
        glo.held_out_start(trained, pca, held_out, kind="nearest")


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------


def test_resume_equals_an_uninterrupted_run(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, img in enumerate(blobs(40)):
        grey = Image.fromarray(np.uint8((img[..., 0] + 1) * 127.5))
        grey.convert("RGB").save(photos / f"{i}.png")
    cfg = dataclasses.replace(TINY, dataset=f"folder:{photos}", resolution=28, steps=4,
                              log_every=2, num_samples=4)
    straight = runs.train(cfg, tmp_path / "straight", progress=False).state
    runs.train(dataclasses.replace(cfg, steps=2), tmp_path / "run", progress=False)
    resumed = runs.train(cfg, tmp_path / "run", resume=True, progress=False).state
    chex.assert_trees_all_equal(resumed, straight)
    assert straight.latents.shape == (40, TINY.z_dim)
    with pytest.raises(ValueError, match="differs"):
        runs.train(dataclasses.replace(cfg, width=16), tmp_path / "run", resume=True,
                   progress=False)
    with pytest.raises(FileExistsError):
        runs.train(cfg, tmp_path / "run", progress=False)


def test_train_load_sample_and_evaluate_on_mnist(mnist_dir, tmp_path, fast_evaluator):
    cfg = GLOConfig(data_dir=str(mnist_dir), width=8, z_dim=8, batch_size=16, steps=3,
                    log_every=1, num_samples=16)
    out = tmp_path / "glo"
    run = runs.train(cfg, out, progress=False)
    assert int(run.state.step) == 3 and run.state.latents.shape == (22_699, 8)
    for name in ("config.json", "data.json", "metrics.jsonl", "pca.npz", "samples.png",
                 "reconstructions.png", "loss_curve.png", "samples/epoch_001.png"):
        assert (out / name).stat().st_size > 0, name
    assert configs.load_config(out / "config.json").method == "glo"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in records if "loss" in r)

    loaded = runs.load_run(out / "checkpoints")
    assert loaded.run_dir == out and loaded.cfg == cfg and loaded.data == run.data
    chex.assert_trees_all_equal(loaded.state, run.state)
    pca = glo.pca_of(loaded)
    assert pca.components.shape == (8, 784)
    assert glo.pca_of(dataclasses.replace(loaded, run_dir=tmp_path)) is None

    x = sampled_digits(out, loaded, tmp_path)
    chex.assert_trees_all_close(x, glo.sample(loaded, jax.random.PRNGKey(0), 16), atol=1e-6)

    result = runs.evaluate(out, n=200, progress=False)
    assert np.isfinite(result["samples"]["fid"]) and result["samples"]["fid"] >= 0
    assert result["step"] == 3 and result["n"] == 200 and result["sampler_components"] == 1
    assert "real" in result and "noise" in result
    assert json.loads((out / "eval.json").read_text()) == result
