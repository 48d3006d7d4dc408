"""Generators and discriminators: shapes, ranges, PyTorch layer-for-layer match, functional use."""

import contextlib
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgan import nets
from jaxgan.functional import eval_view
from jaxgan.nets import lsgan

BATCH = 2
# BatchNorm over 2 examples makes near-zero variances, amplifying float32 rounding: the
# comparisons with PyTorch semantics use a larger batch.
LSGAN_BATCH = 8


def rngs(seed):
    # rbg keys: their samplers compile ~6x faster than threefry's on this CPU, and every new
    # parameter shape compiles one. Same distributions, so init tests are unaffected.
    return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def _run(fn, *models):
    """jit(fn)(*models) through split / merge, as the training steps use the modules."""
    graphdefs, states = zip(*(nnx.split(m) for m in models))

    @jax.jit
    def run(states):
        return fn(*(nnx.merge(g, st) for g, st in zip(graphdefs, states)))

    return run(states)


# --------------------------------------------------------------------------------------------
# DCGAN
# --------------------------------------------------------------------------------------------

DCGAN_CONFIGS = [(r, c) for r in nets.RESOLUTIONS for c in (1, 3)]


@pytest.fixture(scope="module", params=DCGAN_CONFIGS, ids=lambda rc: f"{rc[0]}px-{rc[1]}ch")
def dcgan(request):
    resolution, channels = request.param
    kw = dict(resolution=resolution, channels=channels, width=8)
    g = nets.DCGANGenerator(z_dim=16, **kw, rngs=rngs(0))
    d = nets.DCGANDiscriminator(**kw, rngs=rngs(1))
    z = jax.random.uniform(jax.random.key(0), (BATCH, 16), minval=-1.0, maxval=1.0)

    def fn(g, d):
        x = g(z)
        f = d.features(x)
        return x, f, d.head(f), d(x)

    x, f, head, logits = _run(fn, g, d)
    return dict(resolution=resolution, channels=channels, width=8, g=g, d=d, x=x, f=f,
                head=head, logits=logits)


def test_dcgan_generator_output(dcgan):
    r, c = dcgan["resolution"], dcgan["channels"]
    assert dcgan["g"].z_dim == 16 and dcgan["g"].out_shape == (r, r, c)
    chex.assert_shape(dcgan["x"], (BATCH, r, r, c))
    chex.assert_tree_all_finite(dcgan["x"])
    assert float(jnp.abs(dcgan["x"]).max()) <= 1.0


def test_dcgan_discriminator_output(dcgan):
    r, w = dcgan["resolution"], dcgan["width"]
    base = 7 if r == 28 else 4
    n = round(math.log2(r // base))
    num_features = base * base * min(w * 2 ** (n - 1), 8 * w)
    assert dcgan["d"].num_features == num_features
    chex.assert_shape(dcgan["f"], (BATCH, num_features))
    chex.assert_shape(dcgan["logits"], (BATCH,))
    chex.assert_type(dcgan["logits"], jnp.float32)
    chex.assert_tree_all_finite((dcgan["f"], dcgan["logits"]))
    chex.assert_trees_all_close(dcgan["head"], dcgan["logits"], atol=1e-5)


def test_dcgan_64px_channel_plan():
    g = nnx.eval_shape(lambda: nets.DCGANGenerator(rngs=rngs(0)))
    d = nnx.eval_shape(lambda: nets.DCGANDiscriminator(rngs=rngs(1)))
    assert g.project.kernel.shape == (100, 4 * 4 * 512)
    assert [u.kernel.shape for u in (*g.ups, g.out)] == [
        (4, 4, 512, 256), (4, 4, 256, 128), (4, 4, 128, 64), (4, 4, 64, 3)]
    assert [c.kernel.shape for c in d.convs] == [
        (4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (4, 4, 256, 512)]
    assert d.linear.kernel.shape == (4 * 4 * 512, 1)
    # Paper: no BN on G's output and D's input layer; bias only where no BN follows.
    assert len(g.bns) == len(g.ups) == 3 and len(d.bns) == 3
    assert g.out.bias is not None and d.convs[0].bias is not None
    assert all(u.bias is None for u in g.ups) and all(c.bias is None for c in d.convs[1:])


def test_dcgan_init():
    g = nets.DCGANGenerator(rngs=rngs(0))
    d = nets.DCGANDiscriminator(rngs=rngs(1))
    kernels = [g.project.kernel, *(u.kernel for u in g.ups), g.out.kernel,
               *(c.kernel for c in d.convs), d.linear.kernel]
    kernels = np.concatenate([np.ravel(k[...]) for k in kernels])
    np.testing.assert_allclose(kernels.std(), 0.02, rtol=0.01)  # Radford et al., Sec. 4
    assert abs(kernels.mean()) < 1e-3
    for b in (g.out.bias, d.convs[0].bias, d.linear.bias):
        assert np.all(np.asarray(b[...]) == 0)
    for bn in (g.project_bn, *g.bns, *d.bns):
        assert np.all(np.asarray(bn.scale[...]) == 1) and np.all(np.asarray(bn.bias[...]) == 0)


def test_dcgan_128px_caps_channels():
    g = nnx.eval_shape(lambda: nets.DCGANGenerator(resolution=128, width=8, rngs=rngs(0)))
    assert [u.kernel.shape[2] for u in (*g.ups, g.out)] == [64, 64, 32, 16, 8]


@pytest.mark.parametrize("cls", [nets.DCGANGenerator, nets.DCGANDiscriminator])
def test_dcgan_rejects_other_resolutions(cls):
    with pytest.raises(ValueError, match="28, 32, 64, 128, 256"):
        cls(resolution=48, rngs=rngs(0))


@pytest.mark.parametrize("norm", ["layer", "none"])
def test_dcgan_critic_without_batch_norm_sees_each_example_alone(norm):
    """WGAN-GP's critic: an example's logit must not depend on the rest of its batch (the
    gradient penalty is per example), which batch norm in train mode breaks."""
    d = nets.DCGANDiscriminator(resolution=28, channels=1, width=4, norm=norm, rngs=rngs(0))
    x = jax.random.normal(jax.random.key(1), (BATCH, 28, 28, 1))
    other = x.at[1:].set(jax.random.normal(jax.random.key(2), (BATCH - 1, 28, 28, 1)))
    chex.assert_trees_all_close(_run(lambda d: d(x), d)[0], _run(lambda d: d(other), d)[0],
                                atol=1e-5)
    bn = nets.DCGANDiscriminator(resolution=28, channels=1, width=4, rngs=rngs(0))
    assert abs(float(_run(lambda d: d(x), bn)[0] - _run(lambda d: d(other), bn)[0])) > 1e-4


def test_dcgan_discriminator_rejects_unknown_norm():
    with pytest.raises(ValueError, match="batch, layer, none"):
        nets.DCGANDiscriminator(resolution=28, norm="group", rngs=rngs(0))


def test_dcgan_upsample_impls_agree():
    g = nets.DCGANGenerator(z_dim=8, resolution=28, channels=1, width=8, rngs=rngs(0))
    z = jax.random.normal(jax.random.key(0), (BATCH, 8))
    y_gemm = _run(lambda g: g(z), g)
    for up in (*g.ups, g.out):
        up.impl = "conv3x3"
    chex.assert_trees_all_close(_run(lambda g: g(z), g), y_gemm, atol=1e-5)


# --------------------------------------------------------------------------------------------
# LSGAN: layer for layer the PyTorch model of ../shared/bench/torch_lsgan.py
# --------------------------------------------------------------------------------------------


def _np_bn_train(x, scale, bias, axes):
    shape = [1] * x.ndim
    shape[1] = -1
    mean, var = x.mean(axes, keepdims=True), x.var(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * scale.reshape(shape) + bias.reshape(shape)


def _np_conv_transpose(x, w, b):
    """torch ConvTranspose2d(4, 2, 1), NCHW, w (in, out, 4, 4): out[2i - 1 + k] += x[i] w[k]."""
    n, _, h, wd = x.shape
    out = np.zeros((n, w.shape[1], 2 * h + 2, 2 * wd + 2))
    for ky in range(4):
        for kx in range(4):
            out[:, :, ky:ky + 2 * h:2, kx:kx + 2 * wd:2] += np.einsum("nihw,io->nohw", x, w[:, :, ky, kx])
    return out[:, :, 1:-1, 1:-1] + b.reshape(1, -1, 1, 1)


def _np_conv(x, w, b):
    """torch Conv2d(4, 2, 1), NCHW, w (out, in, 4, 4): out[m] = sum_k x[2m - 1 + k] w[k]."""
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h // 2, wd // 2))
    for ky in range(4):
        for kx in range(4):
            out += np.einsum("nihw,oi->nohw", xp[:, :, ky:ky + h:2, kx:kx + wd:2], w[:, :, ky, kx])
    return out + b.reshape(1, -1, 1, 1)


def _torch_weights(model):
    """Our parameters in PyTorch's layouts (the mapping documented in jaxgan.nets.lsgan)."""
    t = {}
    for name, layer in vars(model).items():
        if isinstance(layer, nnx.Linear):
            t[name] = (np.asarray(layer.kernel[...]).T, np.asarray(layer.bias[...]))
        elif isinstance(layer, nnx.Conv):
            t[name] = (np.asarray(layer.kernel[...]).transpose(3, 2, 0, 1), np.asarray(layer.bias[...]))
        elif isinstance(layer, nets.Upsample2x):
            t[name] = (np.asarray(layer.kernel[...]).transpose(2, 3, 0, 1), np.asarray(layer.bias[...]))
        elif isinstance(layer, nnx.BatchNorm):
            t[name] = (np.asarray(layer.scale[...]), np.asarray(layer.bias[...]))
    return t


def _leaky(x):
    return np.where(x > 0, x, 0.2 * x)


@pytest.fixture(scope="module")
def lsgan_pair(optimizing):
    with optimizing():  # the initial weights, 13 M of them (tests/conftest.py)
        g = nets.LSGANMnistGenerator(rngs=rngs(0))
        d = nets.LSGANMnistDiscriminator(fc_batchnorm=True, rngs=rngs(1))  # the listing, exactly
    # Non-trivial BatchNorm affine parameters, so that their layout is tested too.
    for i, bn in enumerate((g.bn1, g.bn2, g.bn3, d.bn2, d.bn3)):
        k1, k2 = jax.random.split(jax.random.key(10 + i))
        bn.scale[...] = 1.0 + 0.1 * jax.random.normal(k1, bn.scale.shape)
        bn.bias[...] = 0.1 * jax.random.normal(k2, bn.bias.shape)
    z = jax.random.normal(jax.random.key(0), (LSGAN_BATCH, 62))
    x_real = jax.random.uniform(jax.random.key(3), (LSGAN_BATCH, 28, 28, 1), minval=-1.0, maxval=1.0)

    def fn(g, d):
        x = g(z)
        return dict(x=x, f=d.features(x), logits=d(x), f_real=d.features(x_real),
                    logits_real=d(x_real))

    return dict(g=g, d=d, z=z, x_real=x_real, **_run(fn, g, d))


def test_lsgan_shapes_and_range(lsgan_pair):
    g = lsgan_pair["g"]
    assert g.z_dim == 62 and g.out_shape == (28, 28, 1)
    chex.assert_shape(lsgan_pair["x"], (LSGAN_BATCH, 28, 28, 1))
    chex.assert_shape(lsgan_pair["f"], (LSGAN_BATCH, 1024))
    chex.assert_shape(lsgan_pair["logits"], (LSGAN_BATCH,))
    chex.assert_tree_all_finite([v for v in lsgan_pair.values() if isinstance(v, jax.Array)])
    assert float(jnp.abs(lsgan_pair["x"]).max()) <= 1.0


def test_lsgan_parameter_count_equals_torch(lsgan_pair):
    def count(m):
        return sum(v.size for v in jax.tree.leaves(nnx.state(m, nnx.Param)))

    linear = lambda i, o: i * o + o
    conv = lambda i, o: i * o * 16 + o
    bn = lambda c: 2 * c
    g_torch = (linear(62, 1024) + bn(1024) + linear(1024, 6272) + bn(6272) + conv(128, 64)
               + bn(64) + conv(64, 1))
    d_torch = conv(1, 64) + conv(64, 128) + bn(128) + linear(6272, 1024) + bn(1024) + linear(1024, 1)
    assert count(lsgan_pair["g"]) == g_torch == 6_640_193
    assert count(lsgan_pair["d"]) == d_torch == 6_559_169


def test_lsgan_generator_matches_torch_semantics(lsgan_pair):
    t = _torch_weights(lsgan_pair["g"])
    z = np.asarray(lsgan_pair["z"], np.float64)
    h = z @ t["fc1"][0].T + t["fc1"][1]
    h = np.maximum(_np_bn_train(h, *t["bn1"], axes=0), 0)
    h = h @ t["fc2"][0].T + t["fc2"][1]
    h = np.maximum(_np_bn_train(h, *t["bn2"], axes=0), 0).reshape(-1, 128, 7, 7)
    h = np.maximum(_np_bn_train(_np_conv_transpose(h, *t["up1"]), *t["bn3"], axes=(0, 2, 3)), 0)
    x = np.tanh(_np_conv_transpose(h, *t["up2"]))
    np.testing.assert_allclose(lsgan_pair["x"], x.transpose(0, 2, 3, 1), atol=2e-4)


def test_lsgan_discriminator_matches_torch_semantics(lsgan_pair):
    d = lsgan_pair["d"]
    t = _torch_weights(d)
    h = np.asarray(lsgan_pair["x_real"], np.float64).transpose(0, 3, 1, 2)
    h = _leaky(_np_conv(h, *t["conv1"]))
    h = _leaky(_np_bn_train(_np_conv(h, *t["conv2"]), *t["bn2"], axes=(0, 2, 3)))
    f = _leaky(_np_bn_train(h.reshape(LSGAN_BATCH, -1) @ t["fc1"][0].T + t["fc1"][1], *t["bn3"], axes=0))
    logits = f @ t["fc2"][0].T + t["fc2"][1]
    np.testing.assert_allclose(lsgan_pair["f_real"], f, atol=2e-4)
    np.testing.assert_allclose(lsgan_pair["logits_real"], logits[:, 0], atol=2e-4)


def test_lsgan_init_is_normal_002_with_zero_biases(lsgan_pair):
    # N(0, 0.02) as the LSGAN MNIST implementations; PyTorch's default saturated G's tanh.
    g, d = lsgan_pair["g"], lsgan_pair["d"]
    for layer in (g.fc1, g.fc2, g.up1, d.conv2, d.fc1, d.fc2):
        w = np.asarray(layer.kernel[...])
        assert abs(float(w.std()) - 0.02) < 0.003, layer
        assert float(jnp.abs(layer.bias[...]).max()) == 0.0


def test_nchw_flatten_order():
    x = jnp.arange(2 * 3 * 4 * 5.0).reshape(2, 3, 4, 5)  # NHWC
    v = lsgan.nchw_flatten(x)
    chex.assert_shape(v, (2, 60))
    n, h, w, c = 1, 2, 3, 4
    assert v[n, c * 12 + h * 4 + w] == x[n, h, w, c]
    chex.assert_trees_all_equal(lsgan.nchw_unflatten(v, 5, 3, 4), x)


# --------------------------------------------------------------------------------------------
# MLPs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu"])
def test_mlp_pair_2d(activation):
    g = nets.MLPGenerator(z_dim=8, hidden=16, depth=3, activation=activation, rngs=rngs(0))
    d = nets.MLPDiscriminator(hidden=16, depth=3, activation=activation, rngs=rngs(1))
    assert g.out_shape == (2,) and g.z_dim == 8 and len(g.hidden) == 3
    z = 3.0 * jax.random.normal(jax.random.key(0), (5, 8))
    x = g(z)
    chex.assert_shape(x, (5, 2))
    f = d.features(x)
    chex.assert_shape(f, (5, 16))
    chex.assert_shape(d(x), (5,))
    chex.assert_trees_all_close(d.head(f), d(x))
    chex.assert_tree_all_finite((x, f))
    if activation == "relu":
        assert float(f.min()) >= 0.0


def test_mlp_defaults_follow_lsgan_mixture_code():
    g = nets.MLPGenerator(rngs=rngs(0))
    d = nets.MLPDiscriminator(rngs=rngs(0))
    assert g.z_dim == 256 and g.activation == d.activation == "tanh"
    assert [l.kernel.shape for l in (*g.hidden, g.out)] == [(256, 128), (128, 128), (128, 2)]
    assert [l.kernel.shape for l in (*d.hidden, d.out)] == [(2, 128), (128, 128), (128, 1)]


def test_mlp_generator_output_is_linear():
    g = nets.MLPGenerator(z_dim=4, hidden=8, rngs=rngs(0))
    g.out.kernel[...] = jnp.zeros_like(g.out.kernel[...])
    g.out.bias[...] = jnp.array([4.0, -4.0])  # a grid-25 corner, outside tanh's range
    chex.assert_trees_all_close(g(jnp.ones((3, 4))), jnp.tile(jnp.array([[4.0, -4.0]]), (3, 1)))


def test_mlp_image_shapes():
    g = nets.MLPGenerator(z_dim=8, hidden=16, out_shape=(28, 28, 1), rngs=rngs(0))
    d = nets.MLPDiscriminator(in_dim=784, hidden=16, rngs=rngs(1))
    x = g(jnp.ones((3, 8)))
    chex.assert_shape(x, (3, 28, 28, 1))
    assert g.out_shape == (28, 28, 1)
    chex.assert_shape(d(x), (3,))
    chex.assert_trees_all_close(d(x), d(x.reshape(3, 784)))


def test_mlp_rejects_bad_config():
    with pytest.raises(ValueError, match="activation"):
        nets.MLPGenerator(activation="gelu", rngs=rngs(0))
    with pytest.raises(ValueError, match="depth"):
        nets.MLPDiscriminator(depth=0, rngs=rngs(0))


# --------------------------------------------------------------------------------------------
# Functional use: split / merge under jit, BatchNorm statistics, eval view
# --------------------------------------------------------------------------------------------


def _functional_models():
    return {
        "dcgan_g": (lambda: nets.DCGANGenerator(z_dim=8, resolution=28, channels=1, width=8,
                                                rngs=rngs(0)), (4, 8)),
        "lsgan_g": (lambda: nets.LSGANMnistGenerator(rngs=rngs(0)), (4, 62)),
        "lsgan_d": (lambda: nets.LSGANMnistDiscriminator(rngs=rngs(0)), (4, 28, 28, 1)),
    }


@pytest.fixture(scope="module", params=list(_functional_models()))
def functional(request, optimizing):
    ctor, shape = _functional_models()[request.param]
    # LSGAN's initial weights, 13 M of them, are drawn faster compiled optimised (conftest).
    with optimizing() if request.param.startswith("lsgan") else contextlib.nullcontext():
        model = ctor()
    x = jax.random.normal(jax.random.key(0), shape)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def train_apply(params, rest, x):
        m = nnx.merge(graphdef, params, rest)
        y = m(x)
        return y, nnx.split(m, nnx.Param, ...)[2]

    @jax.jit
    def eval_apply(params, rest, x):
        m = nnx.merge(graphdef, params, rest)
        ev = nnx.view(m, use_running_average=True, deterministic=True, raise_if_not_found=False)
        return ev(x), nnx.split(m, nnx.Param, ...)[2]

    @jax.jit
    def grad_apply(params, rest, x):
        def loss(params):
            # copy=True: the Variables in `rest` belong to the jit trace; BatchNorm writes
            # its statistics inside the grad trace and Flax refuses cross-trace mutation.
            m = nnx.merge(graphdef, params, rest, copy=True)
            return jnp.mean(m(x) ** 2), nnx.split(m, nnx.Param, ...)[2]

        return jax.grad(loss, has_aux=True)(params)

    return dict(name=request.param, model=model, x=x, graphdef=graphdef, params=params,
                rest=rest, train_apply=train_apply, eval_apply=eval_apply, grad_apply=grad_apply)


def test_jit_split_merge_equals_eager(functional):
    fx = functional
    y, new_rest = fx["train_apply"](fx["params"], fx["rest"], fx["x"])
    eager = nnx.merge(fx["graphdef"], fx["params"], fx["rest"], copy=True)
    chex.assert_trees_all_close(y, eager(fx["x"]), atol=1e-5)
    chex.assert_trees_all_close(new_rest, nnx.split(eager, nnx.Param, ...)[2], atol=1e-5)
    # The module the state came from was not touched.
    chex.assert_trees_all_equal(nnx.split(fx["model"], nnx.Param, ...)[2], fx["rest"])


def test_train_mode_updates_batch_stats(functional):
    fx = functional
    _, new_rest = fx["train_apply"](fx["params"], fx["rest"], fx["x"])
    for old, new in zip(jax.tree.leaves(fx["rest"]), jax.tree.leaves(new_rest)):
        assert not np.allclose(old, new)
    grads, grad_rest = fx["grad_apply"](fx["params"], fx["rest"], fx["x"])
    chex.assert_trees_all_equal_structs(grads, fx["params"])
    chex.assert_tree_all_finite(grads)
    chex.assert_trees_all_close(grad_rest, new_rest, atol=1e-5)


def test_eval_view_uses_running_averages(functional):
    fx = functional
    y, rest_after = fx["eval_apply"](fx["params"], fx["rest"], fx["x"])
    chex.assert_trees_all_equal(rest_after, fx["rest"])  # eval never writes statistics
    # Each example is normalised with stored statistics, independently of its batch mates
    # (same shape, so no new compilation); in train mode it is not.
    others = fx["x"].at[1:].set(2.0 * fx["x"][1:] + 1.0)
    y_others, _ = fx["eval_apply"](fx["params"], fx["rest"], others)
    chex.assert_trees_all_close(y_others[0], y[0], atol=1e-5)
    y_train, _ = fx["train_apply"](fx["params"], fx["rest"], fx["x"])
    assert not np.allclose(y, y_train, atol=1e-4)
    assert not np.allclose(fx["train_apply"](fx["params"], fx["rest"], others)[0][0], y_train[0])
    # Shifting the stored means changes eval outputs, and not train-mode ones.
    shifted = jax.tree.map(lambda v: v + 1.0, fx["rest"])
    y_shift, _ = fx["eval_apply"](fx["params"], shifted, fx["x"])
    assert not np.allclose(y, y_shift, atol=1e-4)
    chex.assert_trees_all_close(fx["train_apply"](fx["params"], shifted, fx["x"])[0], y_train,
                                atol=1e-5)


# --------------------------------------------------------------------------------------------
# PacGAN's mixture networks
# --------------------------------------------------------------------------------------------


def test_pacgan_networks_have_the_published_shapes():
    # Their released 2DRing / 2DGrid config: G 2 -> 4 x 400 (no bias, BN, ReLU) -> 2;
    # D 2 -> 3 maxout layers of 200 units x 5 pieces -> 1.
    g, d = nets.PacGANGenerator(rngs=rngs(0)), nets.MaxoutDiscriminator(rngs=rngs(1))

    def count(m):
        return sum(v.size for v in jax.tree.leaves(nnx.state(m, nnx.Param)))

    assert count(g) == 2 * 400 + 3 * 400 * 400 + 4 * 2 * 400 + (400 * 2 + 2) == 484_802
    assert count(d) == (2 * 1000 + 1000) + 2 * (200 * 1000 + 1000) + (200 + 1) == 405_201
    kernels = np.concatenate([np.ravel(l.kernel[...]) for l in (*g.hidden, *d.hidden)])
    np.testing.assert_allclose(kernels.std(), 0.02, rtol=0.02)
    assert all(float(jnp.abs(l.bias[...]).max()) == 0.0 for l in (*d.hidden, d.out))


def test_maxout_discriminator_takes_the_max_of_each_units_pieces():
    d = nets.MaxoutDiscriminator(hidden=3, depth=2, pieces=4, rngs=rngs(0))
    x = jax.random.normal(jax.random.key(1), (6, 2))
    h = np.asarray(x, np.float64)
    for layer in d.hidden:  # naive: unit u is the max over pieces p of column u * 4 + p
        a = h @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...])
        h = np.stack([a[:, 4 * u:4 * u + 4].max(axis=1) for u in range(3)], axis=1)
    np.testing.assert_allclose(d.features(x), h, rtol=1e-5, atol=1e-6)
    chex.assert_shape(d(x), (6,))
    with pytest.raises(ValueError, match="pieces"):
        nets.MaxoutDiscriminator(pieces=0, rngs=rngs(0))


def test_pacgan_generator_normalises_with_the_batch_then_with_running_averages():
    g = nets.PacGANGenerator(hidden=8, depth=2, rngs=rngs(0))
    z = 3.0 + jax.random.normal(jax.random.key(2), (16, 2))
    # Training mode: each hidden unit has batch mean 0 before the ReLU (scale 1, bias 0).
    pre = g.norms[0](g.hidden[0](z))
    np.testing.assert_allclose(pre.mean(axis=0), 0.0, atol=1e-5)
    # The running mean moved 5% of the way to the batch mean (momentum 0.95).
    batch_mean = g.hidden[0](z).mean(axis=0)
    np.testing.assert_allclose(g.norms[0].mean[...], 0.05 * batch_mean, rtol=1e-5, atol=1e-7)
    x_train, x_eval = g(z), eval_view(g)(z)
    chex.assert_shape(x_eval, (16, 2))
    assert not np.allclose(x_train, x_eval)
