"""Conditioning (Mirza & Osindero 2014) through the one train step, for every objective."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import cli
from jaxgan.configs import CGANMnistConfig, MixtureConfig
from jaxgan.functional import apply
from jaxgan.objectives import get_objective
from jaxgan.runs import train
from jaxgan.state import init_state
from jaxgan.step import check_labels, make_sampler, make_train_step

RING = MixtureConfig(conditional=True, hidden=16, z_dim=4, embed_dim=3, batch_size=32,
                     steps=6, log_every=3, num_samples=64)


@pytest.fixture(scope="module")
def ring_nets():
    return init_state(RING, (2,), num_classes=8)


def batch(n=32, classes=8):
    x = jax.random.normal(jax.random.PRNGKey(3), (n, 2))
    return {"x": x, "y": jnp.arange(n, dtype=jnp.int32) % classes}


@pytest.mark.parametrize("objective", ["gan", "nsgan", "lsgan", "lsgan-pearson"])
def test_every_objective_trains_conditionally_through_the_one_step(ring_nets, objective):
    nets, state = ring_nets
    step = make_train_step(get_objective(objective), nets, n_critic=1)
    state, metrics = step(jax.tree.map(jnp.copy, state), batch())
    chex.assert_tree_all_finite((state, metrics))
    assert nets.conditional and nets.num_classes == 8


def test_conditioning_changes_the_output(ring_nets):
    nets, state = ring_nets
    sample = make_sampler(nets)
    z = jnp.ones((4, nets.z_dim))
    a = sample(state, z, np.zeros(4, np.int32))
    b = sample(state, z, np.full(4, 5, np.int32))
    assert not np.allclose(a, b)


def test_label_errors_say_what_is_wrong(ring_nets):
    nets, state = ring_nets
    with pytest.raises(ValueError, match="out of range"):
        check_labels(nets, np.array([0, 8]), 2)
    with pytest.raises(ValueError, match="needs labels"):
        check_labels(nets, None, 2)
    with pytest.raises(ValueError, match="integers"):
        check_labels(nets, np.array([0.5, 1.0]), 2)
    with pytest.raises(ValueError, match="integers"):
        check_labels(nets, np.array([[0, 1]]), 2)
    uncond, _ = init_state(dataclasses.replace(RING, conditional=False), (2,))
    with pytest.raises(ValueError, match="unconditional"):
        check_labels(uncond, np.array([0, 1]), 2)
    step = make_train_step(get_objective("nsgan"), nets, n_critic=1)
    with pytest.raises(ValueError, match="needs labels"):
        step(state, {"x": batch()["x"]})


def test_conditional_needs_labelled_data_and_a_conditionable_arch():
    with pytest.raises(ValueError, match="labelled data"):
        init_state(RING, (2,), num_classes=None)
    with pytest.raises(ValueError, match="cgan_mlp"):
        init_state(CGANMnistConfig(arch="lsgan_mnist"), (28, 28, 1), num_classes=10)


def test_conditional_dcgan_and_mlp_pairs_build():
    for arch in ("dcgan", "cgan_mlp"):
        cfg = CGANMnistConfig(arch=arch, width=8, z_dim=8)
        nets, state = init_state(cfg, (28, 28, 1), num_classes=10)
        y = np.array([0, 4, 9])
        x = make_sampler(nets)(state, jnp.zeros((3, 8)), y)
        chex.assert_shape(x, (3, 28, 28, 1))
        logits, _ = apply(nets.d_eval, state.d_params, state.d_stats, x, y)
        chex.assert_shape(logits, (3,))
    assert nets.d_dropout  # the user's D has dropout, keyed from the step


def test_conditional_run_resumes_identically(tmp_path):
    full = train(RING, tmp_path / "full", progress=False).state
    train(dataclasses.replace(RING, steps=3), tmp_path / "half", progress=False)
    resumed = train(RING, tmp_path / "half", resume=True, progress=False).state
    chex.assert_trees_all_equal(full, resumed)


def test_sample_one_class_and_npz_labels(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "ring8", "--conditional", "true", "--steps", "3",
                     "--hidden", "16", "--z-dim", "4", "--batch-size", "32",
                     "--num-samples", "64", "--out", str(out), "--no-progress"]) == 0
    npz = tmp_path / "s.npz"
    assert cli.main(["sample", "--checkpoint", str(out), "-n", "20", "--label", "7",
                     "--out", str(npz)]) == 0
    f = np.load(npz)
    assert f["x"].shape == (20, 2) and (f["y"] == 7).all()
    assert cli.main(["sample", "--checkpoint", str(out), "-n", "20", "--label", "8",
                     "--out", str(npz)]) == 2


def test_user_cgan_pair_starts_as_pytorch_would():
    # nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases; nn.Embedding: N(0, 1).
    from flax import nnx

    from jaxgan.nets import conditional as cond
    from jaxgan.nets.layers import torch_embed_init

    d = cond.ImageMLPDiscriminator(in_dim=794, rngs=nnx.Rngs(0))
    w, b = d.layers[0].kernel[...], d.layers[0].bias[...]
    bound = 1 / np.sqrt(794)
    assert float(jnp.abs(w).max()) <= bound and float(jnp.abs(b).max()) <= bound
    np.testing.assert_allclose(float(w.std()), bound / np.sqrt(3), rtol=0.02)
    e = torch_embed_init(jax.random.PRNGKey(0), (1000, 10))
    np.testing.assert_allclose(float(e.std()), 1.0, rtol=0.05)


@pytest.mark.parametrize("base", ["cgan_mlp", "mlp", "maxout"])
def test_a_flat_conditional_d_scores_the_image_and_embedding_concatenated(base):
    # Bases that take their input in parts (`PartsLinear`) compute the same as on the
    # concatenation, in train mode (dropout on).
    from flax import nnx

    from jaxgan.nets import conditional as cond
    from jaxgan.nets import mlp

    rngs = nnx.Rngs(0)
    make = {"cgan_mlp": lambda: cond.ImageMLPDiscriminator(in_dim=20, hidden=(8, 4), rngs=rngs),
            "mlp": lambda: mlp.MLPDiscriminator(in_dim=20, rngs=rngs),
            "maxout": lambda: mlp.MaxoutDiscriminator(in_dim=20, hidden=6, rngs=rngs)}[base]
    assert type(make()).TAKES_PARTS
    d = cond.ConditionalDiscriminator(make(), num_classes=3, embed_dim=4, as_channels=False,
                                      rngs=rngs)
    x, y = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 4, 1)), jnp.arange(5) % 3
    kwargs = {"rngs": nnx.Rngs(dropout=7)} if base == "cgan_mlp" else {}
    got = d(x, y, **kwargs)
    want = d.base(jnp.concatenate([x.reshape(5, -1), d.embed(y)], -1),
                  **({"rngs": nnx.Rngs(dropout=7)} if kwargs else {}))
    chex.assert_trees_all_close(got, want, atol=1e-5)
