"""Building a config's (G, D) pair: the architecture names, the checks that data fits them,
the DCGAN critic's normalisation and the network techniques."""

import re

import pytest
from flax import nnx

from jaxgan import configs
from jaxgan.configs import CGANMnistConfig, DCGANConfig, MixtureConfig, Techniques, TrainConfig
from jaxgan.nets.build import ARCHS, build_networks
from jaxgan.objectives import resolve
from jaxgan.state import init_state


@pytest.mark.parametrize("arch, shape, says", [
    ("nope", (2,), "unknown arch 'nope'; valid: mlp, pacgan_mlp"),  # not "is for images"
    ("nope", (28, 28, 1), "unknown arch 'nope'"),
    ("mlp", (28, 28, 1), "use --arch lsgan_mnist or --arch dcgan"),
    ("pacgan_mlp", (28, 28, 1), "is for 2-D point data"),
    ("dcgan", (2,), "use --arch mlp"),
    ("lsgan_mnist", (32, 32, 3), "use --arch dcgan"),
])
def test_a_wrong_arch_is_named_with_what_to_use(arch, shape, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        build_networks(TrainConfig(arch=arch), shape, nnx.Rngs(0))


def test_d_norm_is_only_for_dcgan_and_conditional_lsgan_pair_is_refused():
    with pytest.raises(ValueError, match="--d-norm"):
        build_networks(TrainConfig(arch="mlp", d_norm="layer"), (2,), nnx.Rngs(0))
    with pytest.raises(ValueError, match="unconditional pair"):
        build_networks(TrainConfig(arch="lsgan_mnist", conditional=True), (28, 28, 1),
                       nnx.Rngs(0), num_classes=10)
    with pytest.raises(ValueError, match="needs labelled data"):
        build_networks(CGANMnistConfig(), (28, 28, 1), nnx.Rngs(0), num_classes=None)


def test_every_arch_builds_a_pair_with_the_techniques_it_asks_for():
    shapes = {"mlp": (2,), "pacgan_mlp": (2,), "cgan_mlp": (28, 28, 1),
              "lsgan_mnist": (28, 28, 1), "dcgan": (28, 28, 1)}
    assert set(shapes) == set(ARCHS)
    for arch, shape in shapes.items():
        cfg = TrainConfig(arch=arch, width=8, hidden=8, z_dim=4,
                          techniques=Techniques(minibatch_disc=True, mbd_kernels=3))
        g, d = build_networks(cfg, shape, nnx.Rngs(0))
        assert g.out_shape == shape and type(d).__name__ == "MinibatchDiscriminator", arch


def test_wgan_gp_runs_get_a_layer_norm_critic():
    # objectives.resolve decides D's normalisation once, for the state to build it with.
    assert resolve(DCGANConfig(objective="wgan-gp"))[2] == "layer"
    assert resolve(DCGANConfig(objective="nsgan"))[2] == "batch"
    assert resolve(DCGANConfig(objective="wgan-gp", d_norm="batch"))[2] == "batch"
    assert resolve(DCGANConfig(objective="wgan-gp"))[1] == 5  # and its critic steps


def test_d_norm_is_refused_where_it_would_be_ignored():
    with pytest.raises(ValueError, match="use --arch dcgan"):
        init_state(MixtureConfig(d_norm="layer"), (2,))


def test_build_networks_gives_the_dcgan_critic_the_d_norm_it_is_passed():
    def norms(d):
        return {type(m).__name__ for _, m in nnx.iter_modules(d)} & {"BatchNorm", "LayerNorm"}

    cfg = DCGANConfig(width=8, z_dim=4)
    _, d = build_networks(cfg, (28, 28, 1), nnx.Rngs(0))
    assert norms(d) == {"BatchNorm"}  # the keyword's default
    _, d = build_networks(cfg, (28, 28, 1), nnx.Rngs(0), d_norm="layer")
    assert norms(d) == {"LayerNorm"}
    _, d = build_networks(cfg, (28, 28, 1), nnx.Rngs(0), d_norm="none")
    assert norms(d) == set()
    # init_state builds with the resolved one: a wgan-gp critic has layer norm.
    nets, state = init_state(DCGANConfig(objective="wgan-gp", width=8, z_dim=4), (28, 28, 1))
    assert norms(nnx.merge(nets.d_graph, state.d_params, state.d_stats)) == {"LayerNorm"}


def test_virtual_batch_norm_needs_a_generator_with_batch_norm():
    with pytest.raises(ValueError, match="no BatchNorm"):
        init_state(configs.replace(MixtureConfig(hidden=8, z_dim=2), vbn=True), (2,))


@pytest.mark.parametrize("conditional", [False, True], ids=["dcgan", "conditional-dcgan"])
def test_bf16_computes_in_bfloat16_and_keeps_the_state_float32(conditional):
    import chex
    import jax
    import jax.numpy as jnp

    from jaxgan.step import make_sampler, make_step

    cfg = DCGANConfig(resolution=32, width=8, z_dim=8, batch_size=8, precision="bf16",
                      conditional=conditional, objective="lsgan")
    nets, state = init_state(cfg, (32, 32, 1), num_classes=4 if conditional else None)
    step, _ = make_step(cfg, nets)
    batch = {"x": jax.random.uniform(jax.random.PRNGKey(0), (8, 32, 32, 1), minval=-1.0),
             "y": jnp.arange(8, dtype=jnp.int32) % 4}
    hlo = step.lower(state, batch).as_text()
    before = jax.tree.map(lambda a: a.dtype, state)
    for _ in range(3):
        state, metrics = step(state, batch)
    chex.assert_tree_all_finite((state, metrics))
    # Parameters, Adam's moments and batch-norm statistics keep their float32.
    assert jax.tree.map(lambda a: a.dtype, state) == before
    floats = {a.dtype for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.floating)}
    assert floats == {jnp.dtype(jnp.float32)} and jax.tree.leaves(state.g_stats)
    # Every convolution and matrix product of both networks, forward and backward, runs in
    # bfloat16 (StableHLO names each op's result type at the end of its line).
    ops = [line for line in hlo.splitlines()
           if "stablehlo.convolution" in line or "stablehlo.dot_general" in line]
    assert len(ops) > 20
    assert all(re.search(r"-> tensor<[\dx]+bf16>$", line.strip()) for line in ops)
    sample = make_sampler(nets)
    z = jax.random.normal(jax.random.PRNGKey(1), (4, 8))
    x = sample(state, z, jnp.arange(4, dtype=jnp.int32) if conditional else None)
    assert x.dtype == jnp.float32 and bool(jnp.isfinite(x).all())


def test_an_unknown_precision_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match="precision 'fp16'.*fp32, bf16"):
        init_state(MixtureConfig(precision="fp16"), (2,))
