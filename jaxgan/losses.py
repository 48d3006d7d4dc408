"""Pure GAN losses on discriminator logits.

Every function takes logits (never probabilities) and returns per-example values; the caller
reduces (``gan_d_loss(lr, lf).mean()``), as optax's losses do. They are written with
``softplus`` / ``log_sigmoid`` so that they stay finite, with finite gradients, for any logit:
``log(sigmoid(l))`` computed naively underflows to ``-inf`` once ``l < -88`` in float32,
whereas ``-softplus(-l)`` is exact there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

# LSGAN codings (Mao et al. 2017, Sec. 3.2.2): (a, b, c) = (fake target, real target, the
# value G wants D to assign to fakes).
LSGAN_CODINGS: dict[str, tuple[float, float, float]] = {
    # b - c = 1 and b - a = 2: minimising the objective minimises the Pearson chi^2
    # divergence between p_data + p_g and 2 p_g (Eq. 9 and Sec. 3.2.1).
    "pearson": (-1.0, 1.0, 0.0),
    # G wants D to believe its samples are real, as in the regular GAN (Eq. 9, second coding).
    "01": (0.0, 1.0, 1.0),
}


def gan_d_loss(real_logits: Array, fake_logits: Array, *, real_target: float = 1.0) -> Array:
    """The GAN discriminator loss, the negated value function ``-V(D, G)`` per example.

    ``-log D(x) - log(1 - D(G(z)))`` with ``D = sigmoid(l)``; since ``log sigmoid(l) =
    -softplus(-l)`` and ``log(1 - sigmoid(l)) = -softplus(l)`` this is
    ``softplus(-l_real) + softplus(l_fake)``.

    Args:
      real_logits: D's logits on real data, shape ``(N,)``.
      fake_logits: D's logits on generated data, shape ``(N,)``.
      real_target: the target for real examples. ``1`` is the paper; ``alpha < 1`` is
        one-sided label smoothing (Salimans et al. 2016, Sec. 3.4), i.e. the binary cross
        entropy with target ``alpha`` on real data only; fake targets stay 0.

    Returns:
      Per-example loss, shape ``(N,)``.

    References:
      Goodfellow et al., Generative Adversarial Nets, 2014, Eq. 1.
      https://arxiv.org/abs/1406.2661
    """
    real = real_target * jax.nn.softplus(-real_logits) + (1.0 - real_target) * jax.nn.softplus(
        real_logits
    )
    return real + jax.nn.softplus(fake_logits)


def gan_g_loss_minimax(fake_logits: Array) -> Array:
    """The minimax ("saturating") generator loss, ``log(1 - D(G(z)))`` = ``-softplus(l)``.

    Early in training D rejects fakes confidently (``l << 0``) and the gradient
    ``-sigmoid(l)`` vanishes: the reason the paper recommends the non-saturating loss.

    References:
      Goodfellow et al., 2014, Eq. 1 and Algorithm 1. https://arxiv.org/abs/1406.2661
    """
    return -jax.nn.softplus(fake_logits)


def gan_g_loss_nonsaturating(fake_logits: Array) -> Array:
    """The non-saturating generator loss, ``-log D(G(z))`` = ``softplus(-l)``.

    Same fixed point as the minimax loss, but strong gradients when D rejects fakes.

    References:
      Goodfellow et al., 2014, Sec. 3 ("maximize log D(G(z))").
      https://arxiv.org/abs/1406.2661
    """
    return jax.nn.softplus(-fake_logits)


def lsgan_d_loss(real_logits: Array, fake_logits: Array, *, a: float, b: float) -> Array:
    """The least-squares discriminator loss ``1/2 (D(x) - b)^2 + 1/2 (D(G(z)) - a)^2``.

    D's output is linear (a "logit" here is the raw output). Zero exactly when real outputs
    equal ``b`` and fake outputs equal ``a``.

    References:
      Mao et al., Least Squares Generative Adversarial Networks, 2017, Eq. 2.
      https://arxiv.org/abs/1611.04076
    """
    return 0.5 * jnp.square(real_logits - b) + 0.5 * jnp.square(fake_logits - a)


def lsgan_g_loss(fake_logits: Array, *, c: float) -> Array:
    """The least-squares generator loss ``1/2 (D(G(z)) - c)^2``.

    Unlike the sigmoid GAN loss, fakes on the right side of the decision boundary but far
    from it are still penalised, so G's gradient does not vanish (Sec. 3.1).

    References:
      Mao et al., 2017, Eq. 2. https://arxiv.org/abs/1611.04076
    """
    return 0.5 * jnp.square(fake_logits - c)


def gan_value(real_logits: Array, fake_logits: Array) -> Array:
    """The value function ``V(D, G) = E log D(x) + E log(1 - D(G(z)))`` (a scalar).

    Used by tests and diagnostics: with the optimal D, ``V = -log 4 + 2 JSD(p_data || p_g)``.
    """
    return jnp.mean(-gan_d_loss(real_logits, fake_logits))


def hinge_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """The hinge discriminator loss ``relu(1 - l_real) + relu(1 + l_fake)``.

    References:
      Lim & Ye, Geometric GAN, 2017, https://arxiv.org/abs/1705.02894; used by Miyato et al.,
      Spectral Normalization for GANs, 2018, Eq. 16, https://arxiv.org/abs/1802.05957
    """
    return jax.nn.relu(1.0 - real_logits) + jax.nn.relu(1.0 + fake_logits)


def hinge_g_loss(fake_logits: Array) -> Array:
    """The hinge generator loss ``-l_fake`` (Miyato et al. 2018, Eq. 17)."""
    return -fake_logits


def wasserstein_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """The critic loss ``D(G(z)) - D(x)``, an estimate of minus the Wasserstein-1 distance when
    D is 1-Lipschitz (enforced by `gradient_penalty`).

    References:
      Arjovsky et al., Wasserstein GAN, 2017, https://arxiv.org/abs/1701.07875;
      Gulrajani et al., Improved Training of Wasserstein GANs, 2017, Algorithm 1,
      https://arxiv.org/abs/1704.00028
    """
    return fake_logits - real_logits


def wasserstein_g_loss(fake_logits: Array) -> Array:
    """The generator loss ``-D(G(z))`` (Gulrajani et al. 2017, Algorithm 1)."""
    return -fake_logits


def gradient_penalty(critic, real: Array, fake: Array, key: Array) -> Array:
    """WGAN-GP's penalty ``(||grad_x D(x_hat)||_2 - 1)^2`` per example.

    ``x_hat = eps x + (1 - eps) x_fake`` with ``eps ~ U[0, 1]`` per example. The gradient of
    ``sum(D(x_hat))`` is each example's own gradient as long as D treats examples
    independently (no BatchNorm in the critic, as the paper advises, Sec. 4).

    Args:
      critic: ``x -> (N,)`` outputs.
      real, fake: ``(N, ...)`` batches.
      key: PRNG key for ``eps``.

    Returns:
      ``(N,)`` penalties; the caller weights them (lambda = 10 in the paper).

    References:
      Gulrajani et al. 2017, Eq. 3, https://arxiv.org/abs/1704.00028
    """
    eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    # The epsilon keeps the norm's gradient finite where the gradient vanishes.
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1) + 1e-12)
    return jnp.square(norms - 1.0)


def input_gradient_penalty(critic, x: Array) -> Array:
    """R1 (on real data) or R2 (on generated data): ``||grad_x D(x)||_2^2`` per example.

    Penalising D's gradient on the data keeps D from pushing its output up along directions
    the data does not vary in, which makes GAN training locally convergent where
    unregularised training can oscillate (Mescheder et al. 2018, Theorem 4.1, for R1 on
    real data; R2 is the same penalty on generated samples). Unlike `gradient_penalty`
    there is no interpolation and no target norm of 1: the gradient is pushed to 0. The
    gradient of ``sum(D(x))`` is each example's own gradient as long as D treats examples
    independently; with batch norm in D it also carries the batch's coupling, as in the
    official code.

    Args:
      critic: ``x -> (N,)`` outputs (logits).
      x: ``(N, ...)``, real data for R1, generated data for R2 (no gradient flows to G
        through it: the penalty is a D-only term).

    Returns:
      ``(N,)`` squared norms; the caller weights them by ``gamma / 2`` (the paper's Eq. 9).

    References:
      Mescheder, Geiger & Nowozin, Which Training Methods for GANs do actually Converge?,
      2018, Eq. 9 and 10, https://arxiv.org/abs/1801.04406
    """
    grads = jax.grad(lambda v: jnp.sum(critic(v)))(x)
    return jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1)


def relativistic_average(real_logits: Array, fake_logits: Array) -> tuple[Array, Array]:
    """Each critic output relative to the other batch's mean: ``(C(x_r) - E C(x_f),
    C(x_f) - E C(x_r))``.

    The relativistic discriminator estimates how much more realistic a real sample is than
    the average fake (and a fake than the average real), instead of the absolute probability
    of being real; with it G's loss also pulls D's outputs on real data down, as the
    divergence minimisation argument says it should (Jolicoeur-Martineau 2018, Sec. 3-4).
    Every relativistic average loss below is batch-coupled on purpose: an example's loss
    depends on the other batch's mean. Its G loss is its D loss with real and fake swapped.

    References:
      Jolicoeur-Martineau, The relativistic discriminator: a key element missing from
      standard GAN, 2018, Sec. 4.2, https://arxiv.org/abs/1807.00734
    """
    return real_logits - jnp.mean(fake_logits), fake_logits - jnp.mean(real_logits)


def ragan_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """RaSGAN's D loss ``-log sigmoid(r) - log(1 - sigmoid(f))`` on the relativistic
    averages ``(r, f)`` (`relativistic_average`): `gan_d_loss` on them, per pair of real
    and fake examples (equal batch sizes). G's loss is ``ragan_d_loss(fake, real)``
    (Jolicoeur-Martineau 2018, Eq. 13-14)."""
    r, f = relativistic_average(real_logits, fake_logits)
    return gan_d_loss(r, f)


def ralsgan_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """RaLSGAN's D loss ``(r - 1)^2 + (f + 1)^2`` on the relativistic averages; G's loss is
    ``ralsgan_d_loss(fake, real)`` (Jolicoeur-Martineau 2018, Sec. 4.2: targets 1 and -1;
    implementations that halve the sum differ by a factor Adam is blind to)."""
    r, f = relativistic_average(real_logits, fake_logits)
    return jnp.square(r - 1.0) + jnp.square(f + 1.0)


def rahinge_d_loss(real_logits: Array, fake_logits: Array) -> Array:
    """RaHingeGAN's D loss ``relu(1 - r) + relu(1 + f)`` on the relativistic averages; G's
    loss is ``rahinge_d_loss(fake, real)`` (Jolicoeur-Martineau 2018, Sec. 4.2 and the
    official code)."""
    r, f = relativistic_average(real_logits, fake_logits)
    return hinge_d_loss(r, f)


def feature_matching(real_features: Array, fake_features: Array, *, reduce: str = "mean") -> Array:
    """Feature matching, G's objective ``|| mean_x f(x) - mean_z f(G(z)) ||^2`` (a scalar).

    A batch-level loss (it compares batch means), so unlike the others it returns a scalar.
    ``f`` is an intermediate layer of D (by default the last hidden layer, after its
    activation); G is asked to match the statistics of real data that D finds
    discriminative, rather than to maximise D's output on its samples (Sec. 3.1).

    Args:
      real_features: ``(N, F)`` features of real data (no gradient is needed through them).
      fake_features: ``(M, F)`` features of generated data.
      reduce: ``"mean"`` over the F features of the squared difference of batch means (the
        official code, ``T.mean(T.square(mom_gen - mom_real))``, the default) or ``"sum"``
        (the paper's squared l2 norm). They differ by the factor F, to which Adam is blind.

    References:
      Salimans et al., Improved Techniques for Training GANs, 2016, Sec. 3.1.
      https://arxiv.org/abs/1606.03498
    """
    diff = jnp.mean(real_features, axis=0) - jnp.mean(fake_features, axis=0)
    if reduce == "mean":
        return jnp.mean(jnp.square(diff))
    if reduce == "sum":
        return jnp.sum(jnp.square(diff))
    raise ValueError(f"reduce must be 'mean' (official code) or 'sum' (paper), got {reduce!r}")


def ssl_real_logit(class_logits: Array) -> Array:
    """The real-vs-fake logit of a K+1-class D whose fake class has the fixed logit 0.

    With ``Z(x) = sum_k exp(l_k)``, ``D(x) = Z / (Z + 1) = sigmoid(logsumexp(l))``: the
    (K+1)-way softmax's "not fake" probability is a sigmoid of ``s = logsumexp(l)``.

    Args:
      class_logits: ``(N, K)``.

    Returns:
      ``(N,)`` logits ``s``.
    """
    return jax.nn.logsumexp(class_logits, axis=-1)


def ssl_d_unsup_loss(real_logits: Array, fake_logits: Array) -> Array:
    """``L_unsup = -log D(x) - log(1 - D(G(z)))`` per example, for a K+1-class D.

    With ``s = logsumexp(l)``: ``log D = s - softplus(s) = -softplus(-s)`` and
    ``log(1 - D) = -softplus(s)``, so ``L_unsup`` is exactly `gan_d_loss` on ``s``. Written
    this way it stays finite for any logits, where ``Z / (Z + 1)`` overflows once a logit
    exceeds ~88 in float32. The official code weights it by 0.5 (the caller's weight).

    Args:
      real_logits: ``(N, K)`` class logits of real (unlabelled) data.
      fake_logits: ``(N, K)`` class logits of generated data.

    Returns:
      ``(N,)``.

    References:
      Salimans et al. 2016, Sec. 5 ("Semi-supervised learning").
      https://arxiv.org/abs/1606.03498
    """
    return gan_d_loss(ssl_real_logit(real_logits), ssl_real_logit(fake_logits))


def ssl_sup_loss(class_logits: Array, labels: Array) -> Array:
    """``L_sup``: cross-entropy of the K class logits with the true labels, per example.

    ``logsumexp(l) - l_y``, i.e. ``-log p(y | x, y < K + 1)``: the fake class does not enter
    (the paper's ``L_sup``). Shapes ``(N, K)``, ``(N,)`` int -> ``(N,)``.
    """
    return class_cross_entropy(class_logits, labels)


def class_cross_entropy(class_logits: Array, labels: Array) -> Array:
    """``-log softmax(l)_y`` per example: shapes ``(N, K)``, ``(N,)`` int -> ``(N,)``.

    AC-GAN's class loss (Odena et al. 2017, Eq. 2, ``L_C`` as a loss): D minimises it on
    real data with their labels and on generated data with the labels G was given; G
    minimises it on its samples, so the class head pulls each sample towards its label
    while the source head judges realism. The same cross-entropy is the K+1 GAN's
    ``L_sup``.

    References:
      Odena, Olah & Shlens, Conditional Image Synthesis with Auxiliary Classifier GANs,
      ICML 2017, https://arxiv.org/abs/1610.09585
    """
    picked = jnp.take_along_axis(class_logits, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return jax.nn.logsumexp(class_logits, axis=-1) - picked
