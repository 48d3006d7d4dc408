"""Property checks for a GAN objective, the ones jaxgan runs on its own, for a user's pytest.

Each check raises ``AssertionError`` (through chex or numpy) saying what failed::

    from jaxgan import testing
    from my_losses import rel

    def test_my_objective():
        testing.check_objective(rel)                            # shapes, finite, gradients
        testing.check_batch_independence(rel)                   # skip for relativistic losses

    def test_its_optimal_discriminator():                       # where a closed form exists
        testing.check_optimal_discriminator(nsgan, lambda p, q: jnp.log(p / q))

An objective's losses are per example: ``d_loss(real_logits, fake_logits) -> (N,)`` and
``g_loss(fake_logits) -> (N,)`` on logits of shape (N,), as `jaxgan.step` calls them; a
relativistic objective's G loss also takes the real logits, ``g_loss(fake_logits,
real_logits)``.
"""

from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan.objectives import Objective
from jaxgan.objectives import check_objective as _check_signature

Array = jax.Array


def _logits(n: int, seed: int, scale: float) -> tuple[Array, Array]:
    kr, kf = jax.random.split(jax.random.PRNGKey(seed))
    return scale * jax.random.normal(kr, (n,)), scale * jax.random.normal(kf, (n,))


def _g_loss(objective: Objective, fake: Array, real: Array) -> Array:
    return objective.g_loss(fake, real) if objective.relativistic else objective.g_loss(fake)


def check_objective(objective: Objective, *, sizes=(1, 2, 7, 64), scales=(1.0, 10.0, 30.0),
                    seed: int = 0) -> None:
    """Shapes, finite values and finite gradients of both losses for logits of any batch size
    and of large magnitude (a confident D's logits reach tens: a loss written as
    ``log(sigmoid(x))`` instead of ``-softplus(-x)`` fails here)."""
    _check_signature(objective, objective.name)
    for n in sizes:
        for scale in scales:
            real, fake = _logits(n, seed, scale)
            d = objective.d_loss(real, fake)
            g = _g_loss(objective, fake, real)
            chex.assert_shape([d, g], (n,))
            chex.assert_tree_all_finite((d, g))
            grads = jax.grad(lambda r, f: jnp.mean(objective.d_loss(r, f)), argnums=(0, 1))(
                real, fake)
            grads_g = jax.grad(lambda f: jnp.mean(_g_loss(objective, f, real)))(fake)
            chex.assert_tree_all_finite((grads, grads_g))


def check_batch_independence(objective: Objective, *, n: int = 8, seed: int = 0) -> None:
    """Each example's loss depends on its own logits only: the losses of the first half of a
    batch are those of the half alone. (Relativistic objectives compare with the batch's
    mean on purpose and fail this.)"""
    if objective.relativistic:
        raise AssertionError(f"{objective.name} is relativistic: its losses compare each "
                             "example with the other batch's mean on purpose; do not check it "
                             "for batch independence")
    real, fake = _logits(n, seed, 3.0)
    half = n // 2
    np.testing.assert_allclose(objective.d_loss(real, fake)[:half],
                               objective.d_loss(real[:half], fake[:half]), rtol=1e-6,
                               err_msg=f"{objective.name}: D's loss of an example depends on "
                               "the other examples of its batch")
    np.testing.assert_allclose(objective.g_loss(fake)[:half], objective.g_loss(fake[:half]),
                               rtol=1e-6, err_msg=f"{objective.name}: G's loss of an example "
                               "depends on the other examples of its batch")


def optimal_discriminator(objective: Objective, p: Array, q: Array, *, steps: int = 3000,
                          lr: float = 0.05) -> Array:
    """D's logits that minimise the objective's expected D loss when the real data is the
    discrete distribution ``p`` and the fakes ``q`` over the same K points, found by Adam on
    the K free logits. The D loss must be a sum of a real and a fake term (every built-in
    one is): the expectation is ``sum_x p(x) d_loss(l_x, 0) + q(x) d_loss(0, l_x)`` up to a
    constant."""
    p, q = jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float32)
    zero = jnp.zeros_like(p)

    def expected(logits):
        return jnp.sum(p * objective.d_loss(logits, zero) + q * objective.d_loss(zero, logits))

    tx = optax.adam(lr)

    def step(carry, _):
        logits, opt = carry
        updates, opt = tx.update(jax.grad(expected)(logits), opt)
        return (optax.apply_updates(logits, updates), opt), None

    logits = jnp.zeros_like(p)
    (logits, _), _ = jax.lax.scan(step, (logits, tx.init(logits)), length=steps)
    return logits


def check_optimal_discriminator(objective: Objective,
                                closed_form: Callable[[Array, Array], Array], *,
                                points: int = 5, seed: int = 0, atol: float = 2e-2) -> None:
    """The D that minimises the objective (`optimal_discriminator`) is the paper's closed
    form ``closed_form(p, q) -> logits`` for two random discrete distributions on
    ``points`` points: e.g. ``log(p / q)`` for the GAN (Goodfellow et al. 2014, Prop. 1),
    ``(b p + a q) / (p + q)`` for LSGAN (Mao et al. 2017, Eq. 4)."""
    kp, kq = jax.random.split(jax.random.PRNGKey(seed))
    # Probabilities away from 0, where the optimum's logits stay finite.
    p = jax.nn.softmax(jax.random.normal(kp, (points,)))
    q = jax.nn.softmax(jax.random.normal(kq, (points,)))
    found = optimal_discriminator(objective, p, q)
    np.testing.assert_allclose(found, closed_form(p, q), atol=atol,
                               err_msg=f"{objective.name}: the minimiser of the expected D "
                               "loss is not the closed form")
