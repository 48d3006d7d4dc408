"""The papers' facts about each loss (PAPERS.md sections 1 and 3), jitted and not."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan import configs, losses
from jaxgan.configs import MixtureConfig
from jaxgan.objectives import OBJECTIVES, get_objective, resolve

densities = st.floats(min_value=1e-3, max_value=10.0, allow_nan=False)
# float32 values without subnormals: XLA:CPU flushes those to zero, numpy does not.
moderate = st.floats(min_value=-30.0, max_value=30.0, width=32, allow_subnormal=False)


class LossTest(parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_gan_d_loss_hand_values(self):
        f = self.variant(losses.gan_d_loss)
        # At logit 0 D = 1/2 for both: -log(1/2) - log(1/2) = log 4.
        np.testing.assert_allclose(f(jnp.zeros(1), jnp.zeros(1)), [np.log(4.0)], rtol=1e-6)
        # D(x) = sigmoid(2), D(G(z)) = sigmoid(-1).
        want = -np.log(1 / (1 + np.exp(-2.0))) - np.log(1 - 1 / (1 + np.exp(1.0)))
        np.testing.assert_allclose(f(jnp.array([2.0]), jnp.array([-1.0])), [want], rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_generator_losses_hand_values(self):
        l = jnp.array([-3.0, 0.0, 2.0])
        sig = 1 / (1 + np.exp(-np.asarray(l, np.float64)))
        np.testing.assert_allclose(
            self.variant(losses.gan_g_loss_minimax)(l), np.log(1 - sig), rtol=1e-5
        )
        np.testing.assert_allclose(
            self.variant(losses.gan_g_loss_nonsaturating)(l), -np.log(sig), rtol=1e-5
        )

    @parameterized.parameters(*losses.LSGAN_CODINGS)
    def test_lsgan_zero_exactly_at_targets(self, coding):
        a, b, c = losses.LSGAN_CODINGS[coding]
        chex.assert_trees_all_equal(
            losses.lsgan_d_loss(jnp.full(3, b), jnp.full(3, a), a=a, b=b), jnp.zeros(3)
        )
        chex.assert_trees_all_equal(losses.lsgan_g_loss(jnp.full(3, c), c=c), jnp.zeros(3))
        self.assertGreater(float(losses.lsgan_d_loss(jnp.array(b + 0.1), jnp.array(a), a=a, b=b)), 0)
        self.assertGreater(float(losses.lsgan_g_loss(jnp.array(c - 0.1), c=c)), 0)

    def test_lsgan_codings_are_the_papers(self):
        # Pearson chi^2 needs b - c = 1 and b - a = 2 (Mao et al. 2017, Eq. 8).
        a, b, c = losses.LSGAN_CODINGS["pearson"]
        self.assertEqual((b - c, b - a), (1.0, 2.0))
        self.assertEqual(losses.LSGAN_CODINGS["01"], (0.0, 1.0, 1.0))

    @chex.variants(with_jit=True, without_jit=True)
    def test_every_objective_finite_at_extreme_logits(self):
        extreme = jnp.array([-1e4, -100.0, 0.0, 100.0, 1e4])
        for name, obj in OBJECTIVES.items():
            d = self.variant(lambda r, f, obj=obj: jnp.mean(obj.d_loss(r, f)))
            g = self.variant(lambda f, obj=obj: jnp.mean(
                obj.g_loss(f, extreme[::-1]) if obj.relativistic else obj.g_loss(f)))
            chex.assert_tree_all_finite((d(extreme, extreme[::-1]), g(extreme)))
            chex.assert_tree_all_finite(jax.grad(d, argnums=(0, 1))(extreme, extreme[::-1]))
            chex.assert_tree_all_finite(jax.grad(g)(extreme))

    def test_gradients_match_finite_differences(self):
        l = jnp.array([-1.3, 0.2, 2.1])
        jax.test_util.check_grads(
            lambda r, f: losses.gan_d_loss(r, f, real_target=0.9).sum(), (l, -l), order=2
        )
        jax.test_util.check_grads(lambda f: losses.gan_g_loss_minimax(f).sum(), (l,), order=2)
        jax.test_util.check_grads(
            lambda f: losses.gan_g_loss_nonsaturating(f).sum(), (l,), order=2
        )


@settings(max_examples=50, deadline=None)
@given(p=densities, q=densities)
def test_optimal_discriminator_is_p_over_p_plus_q(p, q):
    # Pointwise, D maximises p log D + q log(1 - D) (Goodfellow et al. 2014, Prop. 1); in
    # logits the minimiser of p softplus(-l) + q softplus(l) is log(p / q).
    def objective(l):
        return p * losses.gan_d_loss(l, jnp.array(-1e4)) + q * losses.gan_d_loss(
            jnp.array(1e4), l
        )

    l_star = jnp.log(p / q)
    np.testing.assert_allclose(jax.nn.sigmoid(l_star), p / (p + q), rtol=1e-5)
    assert abs(float(jax.grad(objective)(l_star))) < 1e-4 * (p + q)
    for delta in (-0.1, 0.1):
        assert float(objective(l_star + delta)) > float(objective(l_star))


@settings(max_examples=30, deadline=None)
@given(st.lists(densities, min_size=3, max_size=3), st.lists(densities, min_size=3, max_size=3))
def test_value_with_optimal_d_is_minus_log4_plus_2jsd(pw, qw):
    p = np.asarray(pw) / np.sum(pw)
    q = np.asarray(qw) / np.sum(qw)
    l = jnp.asarray(np.log(p / q), jnp.float32)  # the optimal D's logits on the support
    value = -(
        np.sum(p * np.asarray(losses.gan_d_loss(l, jnp.full(3, -1e4))))
        + np.sum(q * np.asarray(losses.gan_d_loss(jnp.full(3, 1e4), l)))
    )
    m = (p + q) / 2
    jsd = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
    np.testing.assert_allclose(value, -np.log(4) + 2 * jsd, rtol=1e-4, atol=1e-5)


def test_value_at_equal_densities_is_minus_log4():
    np.testing.assert_allclose(losses.gan_value(jnp.zeros(4), jnp.zeros(4)), -np.log(4), rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(real=moderate, fake=moderate)
def test_d_loss_decreases_towards_its_targets(real, fake):
    real, fake = np.float32(real), np.float32(fake)
    # Raising the real logit or lowering the fake one always lowers the GAN D loss; the
    # least squares D loss moves real outputs towards b and fake ones towards a.
    g_real, g_fake = jax.grad(lambda r, f: losses.gan_d_loss(r, f), argnums=(0, 1))(
        jnp.float32(real), jnp.float32(fake)
    )
    assert g_real <= 0 and g_fake >= 0
    for a, b, _ in losses.LSGAN_CODINGS.values():
        g_real, g_fake = jax.grad(
            lambda r, f: losses.lsgan_d_loss(r, f, a=a, b=b), argnums=(0, 1)
        )(jnp.float32(real), jnp.float32(fake))
        assert np.sign(g_real) == np.sign(real - b) and np.sign(g_fake) == np.sign(fake - a)


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(min_value=0.55, max_value=0.99))
def test_one_sided_label_smoothing_moves_only_the_real_optimum(alpha):
    # Real targets become alpha: the real logit's minimiser is logit(alpha); fakes keep 0.
    l_star = jnp.log(alpha / (1 - alpha))
    g = jax.grad(lambda r: losses.gan_d_loss(r, jnp.float32(0.0), real_target=alpha))(l_star)
    assert abs(float(g)) < 1e-5
    chex.assert_trees_all_close(
        losses.gan_d_loss(jnp.float32(5.0), jnp.float32(-2.0), real_target=alpha)
        - losses.gan_d_loss(jnp.float32(5.0), jnp.float32(-3.0), real_target=alpha),
        losses.gan_d_loss(jnp.float32(5.0), jnp.float32(-2.0))
        - losses.gan_d_loss(jnp.float32(5.0), jnp.float32(-3.0)),
        rtol=1e-5,
    )


def test_non_saturating_keeps_gradient_where_minimax_saturates():
    # When D confidently rejects a fake (l = -20) the minimax gradient vanishes and the
    # non-saturating one does not (Goodfellow et al. 2014, Sec. 3).
    l = jnp.float32(-20.0)
    assert abs(float(jax.grad(losses.gan_g_loss_minimax)(l))) < 1e-8
    np.testing.assert_allclose(jax.grad(losses.gan_g_loss_nonsaturating)(l), -1.0, rtol=1e-6)


def test_unknown_objective_lists_valid_names():
    with pytest.raises(ValueError, match="gan, hinge, lsgan"):
        get_objective("wgan-typo")


def test_hinge_and_wasserstein_hand_values():
    r, f = jnp.array([2.0, 0.5, -1.0]), jnp.array([-2.0, 0.0, 1.0])
    np.testing.assert_allclose(losses.hinge_d_loss(r, f), [0.0, 1.5, 4.0])
    np.testing.assert_allclose(losses.hinge_g_loss(f), [2.0, 0.0, -1.0])
    np.testing.assert_allclose(losses.wasserstein_d_loss(r, f), [-4.0, -0.5, 2.0])


def test_gradient_penalty_is_zero_for_a_unit_slope_critic_and_counts_steeper_ones():
    key = jax.random.PRNGKey(0)
    real, fake = jax.random.normal(key, (6, 3)), jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    w = jnp.array([0.6, 0.8, 0.0])  # |w| = 1: a 1-Lipschitz linear critic
    np.testing.assert_allclose(losses.gradient_penalty(lambda x: x @ w, real, fake, key), 0.0, atol=1e-6)
    np.testing.assert_allclose(losses.gradient_penalty(lambda x: x @ (3 * w), real, fake, key), 4.0, rtol=1e-5)
    chex.assert_tree_all_finite(jax.grad(
        lambda s: losses.gradient_penalty(lambda x: s * jnp.sum(x * 0.0, -1), real, fake, key).sum()
    )(1.0))


# --------------------------------------------------------------------------------------
# Feature matching (Salimans et al. 2016, Sec. 3.1)
# --------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 100.0))
def test_feature_matching_is_zero_when_feature_means_match(seed, scale):
    rng = np.random.default_rng(seed)
    real = (rng.normal(size=(6, 5)) * scale).astype(np.float32)
    # Other examples, other spread, the same batch means.
    fake = rng.normal(size=(6, 5)).astype(np.float32) * scale
    fake = fake - fake.mean(0) + real.mean(0)
    for reduce in ("mean", "sum"):
        assert float(losses.feature_matching(real, fake, reduce=reduce)) < 1e-8 * scale**2
        assert float(losses.feature_matching(real, real + 1.0, reduce=reduce)) > 0.5


def test_feature_matching_hand_values_and_reductions():
    real = jnp.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0]])  # means (2, 2, 0)
    fake = jnp.array([[0.0, 0.0, 0.0]])
    assert float(losses.feature_matching(real, fake, reduce="sum")) == pytest.approx(8.0)
    assert float(losses.feature_matching(real, fake)) == pytest.approx(8.0 / 3)  # official
    with pytest.raises(ValueError, match="reduce"):
        losses.feature_matching(real, fake, reduce="max")


# --------------------------------------------------------------------------------------
# One-sided label smoothing folded into an objective (Salimans et al. 2016, Sec. 3.4)
# --------------------------------------------------------------------------------------


def test_label_smoothing_leaves_fake_targets_at_zero():
    nsgan = get_objective("nsgan")
    smoothed = nsgan.with_label_smoothing(0.9)
    real, fake = jnp.array([2.0, -1.0, 0.3]), jnp.array([-3.0, 0.5, 4.0])

    def grad(objective):
        return jax.jit(jax.grad(lambda r, f: jnp.sum(objective.d_loss(r, f)), argnums=(0, 1)))(
            real, fake
        )

    g_real, g_fake = grad(smoothed)
    _, g_fake_plain = grad(nsgan)
    # Fake targets stay 0: the fake logits' gradient is sigmoid(l_fake), unchanged.
    chex.assert_trees_all_close(g_fake, g_fake_plain)
    chex.assert_trees_all_close(g_fake, jax.nn.sigmoid(fake), rtol=1e-6)
    # Real targets become 0.9: gradient sigmoid(l) - 0.9, zero at logit(0.9).
    chex.assert_trees_all_close(g_real, jax.nn.sigmoid(real) - 0.9, rtol=1e-5, atol=1e-6)
    assert smoothed.g_loss is nsgan.g_loss and nsgan.with_label_smoothing(1.0) is nsgan


def test_label_smoothing_for_least_squares_and_none_for_hinge():
    lsgan = get_objective("lsgan").with_label_smoothing(0.9)  # 0-1 coding: b 1 -> 0.9
    assert float(lsgan.d_loss(jnp.float32(0.9), jnp.float32(0.0))) == pytest.approx(0.0, abs=1e-12)
    pearson = get_objective("lsgan-pearson").with_label_smoothing(0.9)  # b 1 -> 0.8, a = -1
    assert float(pearson.d_loss(jnp.float32(0.8), jnp.float32(-1.0))) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="no real target"):
        get_objective("hinge").with_label_smoothing(0.9)


def test_resolve_folds_a_configs_smoothing_and_critic_steps_into_its_objective():
    real, fake = jnp.array([2.0, -1.0, 0.3]), jnp.array([-3.0, 0.5, 4.0])
    objective, n_critic, _ = resolve(configs.replace(MixtureConfig(objective="nsgan"),
                                                     label_smoothing=0.9))
    want = get_objective("nsgan").with_label_smoothing(0.9)
    chex.assert_trees_all_close(objective.d_loss(real, fake), want.d_loss(real, fake))
    assert not np.allclose(objective.d_loss(real, fake), get_objective("nsgan").d_loss(real, fake))
    assert n_critic == 1 and resolve(MixtureConfig(objective="nsgan"))[0] is get_objective("nsgan")
    assert resolve(MixtureConfig(objective="wgan-gp"))[1] == 5
    assert resolve(MixtureConfig(objective="wgan-gp", n_critic=2))[1] == 2
    with pytest.raises(ValueError, match="n_critic"):
        resolve(MixtureConfig(n_critic=0))
    with pytest.raises(ValueError, match="no real target"):
        resolve(configs.replace(MixtureConfig(objective="hinge"), label_smoothing=0.9))


RELATIVISTIC = {"ragan": losses.ragan_d_loss, "ralsgan": losses.ralsgan_d_loss,
                "rahinge": losses.rahinge_d_loss}


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(RELATIVISTIC)), st.integers(0, 2**16),
       st.floats(-20.0, 20.0, width=32))
def test_relativistic_losses_see_only_differences_and_g_swaps_the_roles(name, seed, shift):
    """Jolicoeur-Martineau 2018, Sec. 4.2: D's outputs enter only as each one minus the other
    batch's mean, so a constant added to every output changes no loss; G's loss is D's with
    real and fake swapped, so (unlike the standard GAN) it has a gradient on real outputs."""
    obj = OBJECTIVES[name]
    kr, kf = jax.random.split(jax.random.PRNGKey(seed))
    real, fake = jax.random.normal(kr, (6,)), jax.random.normal(kf, (6,))
    np.testing.assert_allclose(obj.d_loss(real + shift, fake + shift), obj.d_loss(real, fake),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(obj.g_loss(fake, real), RELATIVISTIC[name](fake, real))
    assert obj.relativistic
    grad_real = jax.grad(lambda r: jnp.sum(obj.g_loss(fake, r)))(real)
    assert float(jnp.max(jnp.abs(grad_real))) > 0
    # Batch-coupled on purpose: the first example's loss moves with the second's output. One
    # move may leave it where it was (RaLSGAN's square takes the same value either side of its
    # minimum: seen for one seed), not both a move up and a move down.
    first = float(obj.d_loss(real, fake)[0])
    moved = [float(obj.d_loss(real.at[1].add(step), fake)[0]) for step in (3.0, -3.0)]
    assert max(abs(m - first) for m in moved) > 1e-3 or name == "rahinge"


def test_relativistic_hand_values():
    real, fake = jnp.array([2.0, 0.0]), jnp.array([-1.0, 1.0])
    r, f = real - 0.0, fake - 1.0  # each minus the other batch's mean (fake 0, real 1)
    np.testing.assert_allclose(losses.ragan_d_loss(real, fake),
                               jax.nn.softplus(-r) + jax.nn.softplus(f), rtol=1e-6)
    np.testing.assert_allclose(losses.ralsgan_d_loss(real, fake),
                               (r - 1) ** 2 + (f + 1) ** 2, rtol=1e-6)
    np.testing.assert_allclose(losses.rahinge_d_loss(real, fake),
                               jax.nn.relu(1 - r) + jax.nn.relu(1 + f), rtol=1e-6)


def test_input_gradient_penalty_matches_finite_differences():
    """R1 / R2 (Mescheder et al. 2018, Eq. 9): the squared norm of D's input gradient per
    example, checked against central differences of a nonlinear D, and 0 for a constant D."""
    w = jnp.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.7]])

    def critic(x):  # (N, 3) -> (N,), a per-example nonlinear function
        return jnp.sum(jnp.tanh(x @ w.T) ** 2, axis=-1) + jnp.sin(x[:, 0])

    x = jnp.array([[0.2, -0.4, 1.0], [1.3, 0.5, -0.8]], jnp.float32)
    got = losses.input_gradient_penalty(critic, x)
    eps = 1e-3
    x64 = np.asarray(x, np.float64)
    w64 = np.asarray(w, np.float64)

    def critic64(v):
        return np.sum(np.tanh(v @ w64.T) ** 2, axis=-1) + np.sin(v[:, 0])

    want = np.zeros(len(x))
    for j in range(x.shape[1]):
        e = np.zeros_like(x64)
        e[:, j] = eps
        want += ((critic64(x64 + e) - critic64(x64 - e)) / (2 * eps)) ** 2
    np.testing.assert_allclose(got, want, rtol=1e-4)
    chex.assert_trees_all_equal(
        losses.input_gradient_penalty(lambda v: jnp.zeros(len(v)), x), jnp.zeros(2))
