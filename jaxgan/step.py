"""`make_train_step`: one jitted function ``(GANState, batch) -> (GANState, metrics)``.

A GAN variant is not a trainer: it is a choice of networks and objective that this factory
composes into a single step (Goodfellow et al. 2014, Algorithm 1: ``k`` D updates, then one G
update). All randomness derives from ``fold_in(state.key, state.step)``, so the same seed gives
the same bits and a resumed run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxgan.objectives import Objective
from jaxgan.state import GANState, Networks, apply

Array = jax.Array


def sample_z(key: Array, shape: tuple[int, ...], dist: str = "normal") -> Array:
    """Latent noise. DCGAN draws z uniformly from [-1, 1] (Radford et al. 2015, Fig. 1)."""
    if dist == "normal":
        return jax.random.normal(key, shape)
    if dist == "uniform":
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    raise ValueError(f"unknown latent distribution {dist!r}; valid: normal, uniform")


def _mean_output(logits: Array, objective: Objective) -> Array:
    # Sigmoid objectives read D's output as a probability; least squares' is linear.
    return jnp.mean(jax.nn.sigmoid(logits) if objective.sigmoid_output else logits)


def make_train_step(
    objective: Objective,
    nets: Networks,
    *,
    z_dist: str = "normal",
    n_critic: int = 1,
    jit: bool = True,
) -> Callable[[GANState, dict], tuple[GANState, dict]]:
    """Builds the train step for one objective and one pair of networks.

    Args:
      objective: the (D loss, G loss) pair.
      nets: static graph definitions and optimisers from `jaxgan.state.split_networks`.
      z_dist: ``"normal"`` or ``"uniform"`` latent noise.
      n_critic: D updates per G update (Algorithm 1's ``k``). Each D update takes its own
        slice of real data, so ``batch["x"]`` holds ``n_critic * B`` examples.
      jit: compile with ``jax.jit(donate_argnums=0)`` (the state's buffers are reused).

    Returns:
      ``train_step(state, batch) -> (state, metrics)``; metrics are scalar arrays: both
      losses, mean D output on real and fake data, and gradient norms.
    """
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")

    def generate(params, stats, key, n):
        z = sample_z(key, (n, nets.z_dim), z_dist)
        return apply(nets.g_graph, params, stats, z)

    def d_loss_fn(d_params, d_stats, real, fake):
        # Real and fake go through D separately, so each BatchNorm batch is pure (as DCGAN
        # and the PyTorch references do).
        real_logits, d_stats = apply(nets.d_graph, d_params, d_stats, real)
        fake_logits, d_stats = apply(nets.d_graph, d_params, d_stats, fake)
        loss = jnp.mean(objective.d_loss(real_logits, fake_logits))
        return loss, (d_stats, real_logits, fake_logits)

    def g_loss_fn(g_params, g_stats, d_params, d_stats, key, n):
        fake, g_stats = generate(g_params, g_stats, key, n)
        # D's statistics from this pass are dropped: the G update changes only G.
        fake_logits, _ = apply(nets.d_graph, d_params, d_stats, fake)
        return jnp.mean(objective.g_loss(fake_logits)), g_stats

    def train_step(state: GANState, batch: dict) -> tuple[GANState, dict]:
        x = batch["x"]
        if x.shape[0] % n_critic:
            raise ValueError(
                f"batch of {x.shape[0]} examples cannot be split into n_critic={n_critic} "
                "D updates; use a batch of n_critic * batch_size"
            )
        n = x.shape[0] // n_critic
        key = jax.random.fold_in(state.key, state.step)
        d_keys = jax.random.split(jax.random.fold_in(key, 0), n_critic)
        d_params, d_stats, d_opt = state.d_params, state.d_stats, state.d_opt
        for i in range(n_critic):
            # G runs in train mode (batch statistics) as in the G update; its running
            # statistics are only advanced by the G update.
            fake, _ = generate(state.g_params, state.g_stats, d_keys[i], n)
            (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
                d_loss_fn, has_aux=True
            )(d_params, d_stats, x[i * n : (i + 1) * n], jax.lax.stop_gradient(fake))
            updates, d_opt = nets.d_tx.update(d_grads, d_opt, d_params)
            d_params = optax.apply_updates(d_params, updates)

        (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            state.g_params, state.g_stats, d_params, d_stats, jax.random.fold_in(key, 1), n
        )
        updates, g_opt = nets.g_tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, updates)

        new_state = state.replace(
            step=state.step + 1,
            g_params=g_params,
            g_stats=g_stats,
            d_params=d_params,
            d_stats=d_stats,
            g_opt=g_opt,
            d_opt=d_opt,
        )
        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": _mean_output(real_logits, objective),
            "d_fake": _mean_output(fake_logits, objective),
            "d_grad_norm": optax.tree.norm(d_grads),
            "g_grad_norm": optax.tree.norm(g_grads),
        }
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0) if jit else train_step


def make_sampler(nets: Networks) -> Callable:
    """``sample(state, z) -> x``: G in inference mode (running BatchNorm statistics)."""

    @jax.jit
    def sample(state: GANState, z: Array) -> Array:
        return apply(nets.g_eval, state.g_params, state.g_stats, z)[0]

    return sample
