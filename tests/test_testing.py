"""jaxgan.testing: the property checks a user runs on their own objective are the ones every
built-in objective passes, and each can fail."""

import jax
import jax.numpy as jnp
import pytest

from jaxgan import losses, testing
from jaxgan.objectives import OBJECTIVES, Objective

# D's optimum for two discrete distributions p (real) and q (fake), as logits, where the paper
# gives one: Goodfellow et al. 2014, Prop. 1; Mao et al. 2017, Eq. 4 (a, b the fake and real
# targets); the hinge loss's minimiser is its margin's sign.
CLOSED_FORMS = {
    "gan": lambda p, q: jnp.log(p / q),
    "nsgan": lambda p, q: jnp.log(p / q),
    "lsgan": lambda p, q: p / (p + q),
    "lsgan-01": lambda p, q: p / (p + q),
    "lsgan-pearson": lambda p, q: (p - q) / (p + q),
    "hinge": lambda p, q: jnp.sign(p - q),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_built_in_objective_passes_the_checks(name):
    testing.check_objective(OBJECTIVES[name])
    if OBJECTIVES[name].relativistic:
        with pytest.raises(AssertionError, match="relativistic"):
            testing.check_batch_independence(OBJECTIVES[name])
    else:
        testing.check_batch_independence(OBJECTIVES[name])


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_the_optimal_discriminator_is_the_papers(name):
    testing.check_optimal_discriminator(OBJECTIVES[name], CLOSED_FORMS[name])


def test_each_check_can_fail():
    # -log(1 - sigmoid(f)) written naively is infinite for a confident D (f > 17 in float32).
    naive = Objective("naive", lambda r, f: -jnp.log(jax.nn.sigmoid(r)) - jnp.log(
        1 - jax.nn.sigmoid(f)), losses.gan_g_loss_nonsaturating, "naive", "a test")
    with pytest.raises(AssertionError):
        testing.check_objective(naive)
    relativistic = Objective("ra", lambda r, f: jax.nn.softplus(-(r - jnp.mean(f))) +
                             jax.nn.softplus(f - jnp.mean(r)), losses.gan_g_loss_nonsaturating,
                             "relativistic average D", "a test")
    with pytest.raises(AssertionError, match="depends on the other examples"):
        testing.check_batch_independence(relativistic)
    with pytest.raises(AssertionError, match="not the closed form"):
        testing.check_optimal_discriminator(OBJECTIVES["nsgan"], lambda p, q: p / (p + q))
