"""Layers of Salimans et al. 2016: minibatch discrimination, virtual batch norm, weight norm
with data-dependent init, Gaussian noise."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgan.functional import eval_view
from jaxgan.nets import MLPDiscriminator
from jaxgan.nets import techniques as tn


def mbd(include_self=True, a=6, b=4, c=3, seed=0, **kw):
    return tn.MinibatchDiscrimination(a, b, c, include_self=include_self, rngs=nnx.Rngs(seed), **kw)


class MinibatchDiscriminationTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_shape_and_identical_samples(self):
        for include_self, want in ((True, 7.0), (False, 6.0)):
            layer = mbd(include_self)
            f = self.variant(lambda x, layer=layer: layer(x))
            chex.assert_shape(f(jax.random.normal(jax.random.PRNGKey(1), (7, 6))), (7, 4))
            # A collapsed batch: every pair is at L1 distance 0, so o_b = N (N - 1 without
            # the self-term), exactly.
            same = jnp.tile(jax.random.normal(jax.random.PRNGKey(2), (1, 6)), (7, 1))
            chex.assert_trees_all_equal(f(same), jnp.full((7, 4), want))

    def test_hand_computed_value(self):
        layer = mbd(a=2, b=1, c=2)
        layer.T[...] = jnp.array([[[1.0, 0.0]], [[0.0, 2.0]]])  # M_i = (f_1, 2 f_2)
        f = jnp.array([[0.0, 0.0], [1.0, 0.5], [0.0, -0.5]])
        m = np.array([[0, 0], [1, 1], [0, -1]], np.float64)
        want = np.exp(-np.abs(m[:, None] - m[None]).sum(-1)).sum(1)
        np.testing.assert_allclose(layer(f)[:, 0], want, rtol=1e-6)
        layer.include_self = False
        np.testing.assert_allclose(layer(f)[:, 0], want - 1.0, rtol=1e-6)

    def test_permutation_equivariant(self):
        layer = mbd()
        x = jax.random.normal(jax.random.PRNGKey(3), (9, 6))
        perm = jax.random.permutation(jax.random.PRNGKey(4), 9)
        chex.assert_trees_all_close(layer(x)[perm], layer(x[perm]), rtol=1e-5, atol=1e-6)

    def test_equals_the_papers_formula_computed_naively(self):
        # o(x_i)_b = sum_j exp(-||M_{i,b} - M_{j,b}||_1), M_i = x_i T (Salimans et al., Sec. 3.2).
        layer = mbd(use_bias=False)
        x = jax.random.normal(jax.random.PRNGKey(5), (11, 6))
        m = np.einsum("na,abc->nbc", np.asarray(x, np.float64), np.asarray(layer.T[...], np.float64))
        want = np.exp(-np.abs(m[:, None] - m[None]).sum(-1)).sum(1)
        np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=1e-5)

    def test_gradients_finite_for_identical_samples(self):
        layer = mbd()
        graph, params = nnx.split(layer)
        same = jnp.ones((5, 6))

        def loss(params, x):
            return jnp.sum(nnx.merge(graph, params)(x))

        chex.assert_tree_all_finite(jax.grad(loss, argnums=(0, 1))(params, same))


def test_wrapper_starts_as_its_base_and_keeps_features():
    base = MLPDiscriminator(in_dim=2, hidden=8, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
    before = base(x)
    d = tn.MinibatchDiscriminator(base, num_kernels=3, kernel_dim=2, rngs=nnx.Rngs(1))
    chex.assert_trees_all_close(d(x), before)  # the o weights start at 0
    chex.assert_trees_all_equal(d.features(x), base.features(x))
    d.mbd_out.kernel[...] = jnp.ones((3, 1))
    f = base.features(x)
    chex.assert_trees_all_close(d(x), base.head(f) + d.mbd(f).sum(-1), rtol=1e-6)


def tiny_bn_generator(seed=0):
    class G(nnx.Module):
        def __init__(self, rngs):
            self.z_dim, self.out_shape = 3, (4, 4, 2)
            self.fc = nnx.Linear(3, 4 * 4 * 2, rngs=rngs)
            self.bn = nnx.List([nnx.BatchNorm(2, rngs=rngs)])
            self.bn_flat = nnx.BatchNorm(32, use_scale=False, epsilon=1e-3, rngs=rngs)

        def __call__(self, z):
            h = self.bn_flat(self.fc(z))
            return jnp.tanh(self.bn[0](h.reshape(-1, 4, 4, 2)))

    return G(nnx.Rngs(seed))


def test_vbn_replaces_every_batch_norm_and_keeps_its_settings():
    g = tn.with_virtual_batch_norm(tiny_bn_generator(), jnp.zeros((6, 3)))
    kinds = [type(m) for _, m in nnx.iter_modules(g)]
    assert nnx.BatchNorm not in kinds and kinds.count(tn.VirtualBatchNorm) == 2
    assert g.base.bn_flat.scale is None and g.base.bn_flat.epsilon == 1e-3
    _, params, rest = nnx.split(g, nnx.Param, ...)
    assert "z_ref" in rest and "z_ref" not in params  # the reference batch is state, not a parameter
    with pytest.raises(ValueError, match="no BatchNorm"):
        tn.with_virtual_batch_norm(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), jnp.zeros((2, 2)))


def test_vbn_example_does_not_depend_on_its_batch():
    z_ref = jax.random.normal(jax.random.PRNGKey(0), (8, 3))
    g = tn.with_virtual_batch_norm(tiny_bn_generator(), z_ref)
    z = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    other = jax.random.normal(jax.random.PRNGKey(2), (5, 3)) * 10.0
    alone = g(z[:1])
    chex.assert_trees_all_close(g(z)[:1], alone, atol=1e-5)
    chex.assert_trees_all_close(g(jnp.concatenate([z[:1], other]))[:1], alone, atol=1e-5)
    # ... whereas plain batch norm's output does.
    bn_g = tiny_bn_generator()
    assert not np.allclose(bn_g(z)[:1], bn_g(z[:1]), atol=1e-3)


def test_vbn_statistics_are_the_reference_batch_plus_the_example():
    vbn = tn.VirtualBatchNorm(2, ref_size=3, epsilon=0.0)
    ref = jnp.array([[0.0, 1.0], [1.0, 2.0], [2.0, 6.0]])
    x = jnp.array([[3.0, -1.0]])
    out = vbn(jnp.concatenate([ref, x]))
    pool = np.concatenate([np.asarray(ref), np.asarray(x)])  # weights 1/(R+1) each
    want = (np.asarray(x) - pool.mean(0)) / pool.std(0)
    np.testing.assert_allclose(out[3:], want, rtol=1e-5)
    np.testing.assert_allclose(out[:3], (ref - ref.mean(0)) / ref.std(0), rtol=1e-5)


def test_weight_norm_data_dependent_init_standardises_each_unit():
    layer = tn.WeightNormDense(5, 4, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.PRNGKey(0), (200, 5)) * 3.0 + 1.0
    tn.data_dependent_init(layer, lambda m: m(x))
    assert not layer.init_mode
    y = layer(x)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(0), 1.0, rtol=1e-4)
    # y = x (g V / ||V||) + b: the direction is V's, whatever V's scale.
    layer.V[...] = layer.V[...] * 7.0
    chex.assert_trees_all_close(layer(x), y, rtol=1e-5, atol=1e-5)
    assert isinstance(layer.g, tn.FixedScale)  # the hidden layers' g is not trained
    assert isinstance(tn.WeightNormDense(5, 4, trainable_scale=True, rngs=nnx.Rngs(0)).g, nnx.Param)


def test_gaussian_noise_train_and_eval():
    class Net(nnx.Module):
        def __init__(self):
            self.noise = tn.GaussianNoise(0.5)

        def __call__(self, x, rngs=None):
            return self.noise(x, rngs=rngs)

    net = Net()
    x = jnp.zeros((4000,))
    y = net(x, rngs=nnx.Rngs(noise=0))
    assert abs(float(y.std()) - 0.5) < 0.03
    chex.assert_trees_all_equal(eval_view(net)(x), x)
    with pytest.raises(ValueError, match="noise"):
        net(x)
