"""Spectral normalisation (Miyato et al. 2018, `jaxgan.nets.spectral`): after a few
train-mode calls every wrapped layer of jaxgan's discriminators computes with a weight whose
largest singular value is 1 (against ``jnp.linalg.svd``); the statistics advance in train
mode and freeze in inference mode, through the functional helpers the step uses; embeddings
are left alone, wrappers' layers are found, and a D without layers is refused."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan.functional import apply, eval_view, merges_row_groups
from jaxgan.nets.conditional import ConditionalDiscriminator, ProjectionDiscriminator
from jaxgan.nets.dcgan import DCGANDiscriminator
from jaxgan.nets.lsgan import LSGANMnistDiscriminator
from jaxgan.nets.mlp import MLPDiscriminator, MLPGenerator
from jaxgan.nets.spectral import spectral_norm
from jaxgan.nets.techniques import MinibatchDiscrimination, MinibatchDiscriminator
from jaxgan.state import split_networks


def wrapped(module):
    return [m for _, m in nnx.iter_modules(module) if isinstance(m, nnx.SpectralNorm)]


def layers(module):
    return [m for _, m in nnx.iter_modules(module) if isinstance(m, (nnx.Linear, nnx.Conv))]


def top_singular_value(kernel):
    # Convolutions as Flax and Miyato et al. normalise them: the (kh * kw * in, out) matrix.
    return float(jnp.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


def stat(layer, name):
    return layer.batch_stats[("kernel", name)][...]


def train_calls(module, x, calls):
    """``module`` after ``calls`` train-mode calls on ``x`` through `apply`, the statistics
    threaded from call to call as the D update threads them."""
    graph, params, stats = nnx.split(module, nnx.Param, ...)
    step = jax.jit(lambda s: apply(graph, params, s, x)[1])
    for _ in range(calls):
        stats = step(stats)
    return nnx.merge(graph, params, stats)


def algorithm_1(kernel, u):
    """Miyato et al.'s Algorithm 1, one power iteration from ``u``: the reference for the
    ``sigma`` a call divides by."""
    w = kernel.reshape(-1, kernel.shape[-1])
    v = u @ w.T
    v = v / jnp.linalg.norm(v)
    u = v @ w
    u = u / jnp.linalg.norm(u)
    return (v @ w @ u.T)[0, 0]


@pytest.mark.parametrize("build, shape", [
    (lambda r: MLPDiscriminator(in_dim=2, hidden=32, depth=2, rngs=r), (16, 2)),
    (lambda r: DCGANDiscriminator(resolution=32, channels=1, width=8, rngs=r), (4, 32, 32, 1)),
    (lambda r: LSGANMnistDiscriminator(rngs=r), (2, 28, 28, 1)),
], ids=["mlp", "dcgan", "lsgan_mnist"])
def test_each_normalised_weight_has_spectral_norm_one(build, shape):
    rngs = nnx.Rngs(0)
    d = spectral_norm(build(rngs), rngs)
    # Unnormalised, the same initial weights are far from norm 1 (MLP 2.75, DCGAN 0.15,
    # LSGAN 2.22 at worst), so the check below can fail.
    plain = [top_singular_value(m.kernel[...]) for m in layers(build(nnx.Rngs(0)))]
    assert max(abs(s - 1) for s in plain) > 0.5
    d = train_calls(d, jax.random.normal(jax.random.key(1), shape), 30)
    assert len(wrapped(d)) == len(plain)
    # W / sigma, sigma the stored estimate: what the last train-mode call divided by. The
    # estimate ||v W|| is at most the top singular value, so the norm is >= 1 (to rounding).
    # Measured after 30 calls: MLP <= 2.5e-4 above 1, DCGAN <= 2.6e-3, LSGAN's 6272 x 1024
    # fc1 1.03e-2 (random matrices' top singular values lie close together, so the power
    # iteration converges slowly; 3.3e-2 after 10 calls, 3.2e-3 after 50).
    norms = [top_singular_value(m.layer_instance.kernel[...] / stat(m, "sigma"))
             for m in wrapped(d)]
    assert min(norms) >= 1 - 1e-5
    assert max(norms) <= 1 + 2e-2


@pytest.mark.parametrize("layer, x_shape", [
    (lambda r: nnx.Linear(3, 4, kernel_init=nnx.initializers.normal(2.0), rngs=r), (5, 3)),
    (lambda r: nnx.Conv(2, 3, (3, 3), kernel_init=nnx.initializers.normal(2.0), rngs=r),
     (2, 6, 6, 2)),
], ids=["linear", "conv"])
def test_a_wrapped_layer_computes_with_w_over_sigma(layer, x_shape):
    class One(nnx.Module):
        def __init__(self, rngs):
            self.layer = layer(rngs)

        def __call__(self, x):
            return self.layer(x)

    rngs = nnx.Rngs(0)
    m = spectral_norm(One(rngs), rngs)
    graph, params, stats = nnx.split(m, nnx.Param, ...)
    eval_graph = nnx.split(eval_view(m), nnx.Param, ...)[0]
    kernel = m.layer.layer_instance.kernel[...]
    x = jax.random.normal(jax.random.key(3), x_shape)

    def plain_with(sigma):
        plain = nnx.clone(m.layer.layer_instance)
        plain.kernel[...] = kernel / sigma
        return plain(x)

    # Train mode divides by the sigma it returns in the new statistics.
    out, stats = apply(graph, params, stats, x)
    chex.assert_trees_all_close(out, plain_with(stat(nnx.merge(graph, params, stats).layer,
                                                     "sigma")), rtol=1e-5, atol=1e-6)
    # Inference mode: one power iteration from the stored u (Algorithm 1), nothing kept.
    u = stat(nnx.merge(graph, params, stats).layer, "u")
    sigma = algorithm_1(kernel, u)
    out, after = apply(eval_graph, params, stats, x)
    chex.assert_trees_all_close(out, plain_with(sigma), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_equal(after, stats)
    assert abs(float(sigma) - 1) > 0.5  # the division matters: W itself gives another output
    assert not np.allclose(out, plain_with(1.0), rtol=1e-2)


SN_KEYS = (("kernel", "u"), ("kernel", "sigma"))  # keys of a SpectralNorm's batch_stats


def test_stats_advance_in_train_mode_and_freeze_in_the_eval_view():
    # Through split_networks, as training holds D: u and sigma are statistics (d_stats, not
    # d_params); D's train graph advances them, its eval graph leaves them (and BatchNorm's).
    rngs = nnx.Rngs(0)
    d = spectral_norm(DCGANDiscriminator(resolution=32, channels=1, width=8, rngs=rngs), rngs)
    g = MLPGenerator(z_dim=2, out_shape=(32, 32, 1), hidden=8, depth=1, rngs=rngs)
    nets, state = split_networks(g, d, optax.adam(1e-3), optax.adam(1e-3), jax.random.key(0))
    stats = nnx.to_flat_state(state.d_stats)
    sn_paths = [p for p, _ in stats if p[-1] in SN_KEYS]
    assert len(sn_paths) == 2 * 4  # u and sigma of 3 convs and the linear head
    assert not [p for p, _ in nnx.to_flat_state(state.d_params) if p[-1] in SN_KEYS]

    x = jax.random.normal(jax.random.key(1), (4, 32, 32, 1))
    before = dict(nnx.to_flat_state(state.d_stats))
    _, trained = apply(nets.d_graph, state.d_params, state.d_stats, x)
    trained = dict(nnx.to_flat_state(trained))
    for p in sn_paths:
        assert not np.array_equal(trained[p][...], before[p][...]), p

    out1, frozen = apply(nets.d_eval, state.d_params, state.d_stats, x)
    out2, _ = apply(nets.d_eval, state.d_params, frozen, x)
    chex.assert_trees_all_equal(frozen, state.d_stats)
    chex.assert_trees_all_equal(out1, out2)


def test_sn_mixes_no_examples_but_counts_as_mixing_for_the_merged_call():
    # Within one call each example's output depends on itself alone; but a call advances u,
    # so D on real and fake in one call is not D on each in turn (one power iteration
    # instead of two): the step's merged call would not compute "the same numbers as two
    # calls", and `merges_row_groups` keeps it off for a spectrally normalised D.
    rngs = nnx.Rngs(0)
    d = spectral_norm(MLPDiscriminator(in_dim=2, hidden=8, depth=1, rngs=rngs), rngs)
    assert not merges_row_groups(d)
    assert merges_row_groups(MLPDiscriminator(in_dim=2, hidden=8, depth=1, rngs=rngs))

    graph, params, stats = nnx.split(d, nnx.Param, ...)
    a, b = jax.random.normal(jax.random.key(4), (2, 3, 2))
    both, merged = apply(graph, params, stats, jnp.concatenate([a, b]))
    alone, _ = apply(graph, params, stats, b)
    chex.assert_trees_all_close(both[3:], alone, rtol=1e-6)
    _, once = apply(graph, params, stats, a)
    _, twice = apply(graph, params, once, b)
    assert not all(jax.tree.leaves(jax.tree.map(np.array_equal, merged, twice)))


def test_gradient_flows_through_sigma():
    # sigma = v W u^T with u, v held constant, so W / sigma and D do not change when a
    # layer's W is scaled: the gradient of D with respect to each kernel is orthogonal to it.
    # (Treating sigma as a constant would leave it along W too.)
    rngs = nnx.Rngs(0)
    d = spectral_norm(MLPDiscriminator(in_dim=2, hidden=8, depth=2, rngs=rngs), rngs)
    graph, params, stats = nnx.split(d, nnx.Param, ...)
    x = jax.random.normal(jax.random.key(5), (6, 2))
    grads = jax.grad(lambda p: jnp.sum(apply(graph, p, stats, x)[0] ** 2))(params)
    kernels = [(p, v) for p, v in nnx.to_flat_state(params) if p[-1] == "kernel"]
    assert len(kernels) == 3
    flat_grads = dict(nnx.to_flat_state(grads))
    for path, w in kernels:
        g, w = np.ravel(flat_grads[path][...]), np.ravel(w[...])
        assert np.linalg.norm(g) > 1e-3, path
        assert abs(g @ w) <= 1e-4 * np.linalg.norm(g) * np.linalg.norm(w), path


def test_embeddings_are_left_alone_and_wrappers_layers_are_found():
    rngs = nnx.Rngs(0)
    base = MLPDiscriminator(in_dim=12, hidden=8, depth=2, rngs=rngs)
    d = MinibatchDiscriminator(
        ConditionalDiscriminator(base, num_classes=10, embed_dim=10, as_channels=False,
                                 rngs=rngs),
        num_kernels=6, kernel_dim=3, rngs=rngs)
    linears = layers(d)
    assert len(linears) == 4  # the base's two hidden layers and head, and mbd_out
    spectral_norm(d, rngs)
    assert [m.layer_instance for m in wrapped(d)] == linears
    assert isinstance(d.mbd_out, nnx.SpectralNorm)
    assert type(d.base.embed) is nnx.Embed  # not wrapped, not a subclass
    assert type(d.mbd) is MinibatchDiscrimination  # its tensor T is no Linear layer
    spectral_norm(d, rngs)  # nothing is wrapped twice
    assert [m.layer_instance for m in wrapped(d)] == linears

    proj = ProjectionDiscriminator(MLPDiscriminator(in_dim=2, hidden=8, depth=1, rngs=rngs),
                                   num_classes=3, num_features=8, rngs=rngs)
    spectral_norm(proj, rngs)
    assert type(proj.embed) is nnx.Embed
    assert len(wrapped(proj)) == 2


def test_a_zero_initialised_layer_is_normalised_once_it_is_nonzero():
    # mbd_out starts at zero: one power iteration maps u to zero, and Flax's iteration never
    # leaves zero, so the head would train unnormalised for good; jaxgan keeps the old u.
    rngs = nnx.Rngs(0)
    d = spectral_norm(MinibatchDiscriminator(MLPDiscriminator(in_dim=2, hidden=8, depth=1,
                                                              rngs=rngs),
                                             num_kernels=6, kernel_dim=3, rngs=rngs), rngs)
    graph, params, stats = nnx.split(d, nnx.Param, ...)
    x = jax.random.normal(jax.random.key(6), (5, 2))
    _, stats = apply(graph, params, stats, x)  # at zero: W / 1, u kept
    assert np.any(stat(nnx.merge(graph, params, stats).mbd_out, "u") != 0)
    head = params["mbd_out"]["layer_instance"]["kernel"]
    head[...] = 3 * jax.random.normal(jax.random.key(7), head.shape)  # as after D updates
    assert abs(top_singular_value(head[...]) - 1) > 0.5
    _, stats = apply(graph, params, stats, x)
    layer = nnx.merge(graph, params, stats).mbd_out
    # A (6, 1) column: one power iteration gives its norm exactly.
    np.testing.assert_allclose(top_singular_value(head[...] / stat(layer, "sigma")), 1,
                               rtol=1e-5)


class Odd(nnx.Module):
    def __init__(self, rngs):
        self.scale = nnx.Param(jnp.ones(()))
        self.embed = nnx.Embed(3, 2, rngs=rngs)  # an embedding is not a layer to normalise


def test_a_d_without_linear_or_conv_layers_is_refused():
    with pytest.raises(ValueError, match="spectral_norm found no Linear or Conv layer in Odd"):
        spectral_norm(Odd(nnx.Rngs(0)), nnx.Rngs(0))


# Containers a D may hold its layers in: (kind, children); leaves are "linear" / "embed".
_TREES = st.recursive(
    st.sampled_from(["linear", "embed"]),
    lambda children: st.tuples(
        st.sampled_from(["list", "tuple", "dict", "nnx.List", "nnx.Dict", "module"]),
        st.lists(children, min_size=1, max_size=3)),
    max_leaves=6)


class Holder(nnx.Module):
    def __init__(self, children):
        self.n = len(children)
        for i, child in enumerate(children):
            setattr(self, f"c{i}", child)


def _build(tree, rngs, made, in_pytree=True):
    """``tree`` built; a plain container held by a module (``nnx.List`` / ``nnx.Dict`` are
    modules) is marked ``nnx.data``, as NNX requires, one inside a plain container not."""
    if tree == "linear":
        made.append(nnx.Linear(2, 2, rngs=rngs))
        return made[-1]
    if tree == "embed":
        made.append(nnx.Embed(3, 2, rngs=rngs))
        return made[-1]
    kind, children = tree
    items = [_build(c, rngs, made, kind.startswith("nnx.") or kind == "module")
             for c in children]
    plain = {"list": list, "tuple": tuple, "dict": lambda v: dict(enumerate(v))}
    if kind in plain:
        built = plain[kind](items)
        return nnx.data(built) if in_pytree else built
    if kind == "nnx.List":
        return nnx.List(items)
    if kind == "nnx.Dict":
        return nnx.Dict({f"k{i}": v for i, v in enumerate(items)})
    return Holder(items)


def _leaves(node):
    """The leaves of a built tree, in build order, as they are after wrapping."""
    if isinstance(node, (nnx.Linear, nnx.Embed, nnx.SpectralNorm)):
        return [node]
    if isinstance(node, Holder):
        node = [getattr(node, f"c{i}") for i in range(node.n)]
    if isinstance(node, (dict, nnx.Dict)):
        node = [node[k] for k in sorted(node.keys())]
    return [leaf for child in node for leaf in _leaves(child)]


@settings(max_examples=25, deadline=None)
@given(_TREES)
def test_every_linear_is_wrapped_where_it_is_held(tree):
    made = []
    root = Holder([_build(tree, nnx.Rngs(0), made)])
    if not any(isinstance(m, nnx.Linear) for m in made):
        with pytest.raises(ValueError, match="no Linear or Conv layer in Holder"):
            spectral_norm(root, nnx.Rngs(1))
        return
    assert spectral_norm(root, nnx.Rngs(1)) is root
    after = _leaves(root)
    assert len(after) == len(made)
    for new, old in zip(after, made):
        if isinstance(old, nnx.Linear):
            assert isinstance(new, nnx.SpectralNorm) and new.layer_instance is old
        else:
            assert new is old
    spectral_norm(root, nnx.Rngs(2))  # a second pass wraps nothing again
    assert all(a is b for a, b in zip(_leaves(root), after))
