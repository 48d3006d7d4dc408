"""Averages of parameters over training: historical averaging's running mean, the moving
average (EMA) of the K+1 GAN's discriminator and the EMA of G (`jaxgan.configs.Stabilisers`).

Historical averaging (Salimans et al. 2016, Sec. 3.3) keeps, per player, the running mean of
every value its parameters have had (initial values included) and penalises the distance to
it; no public GAN library implements it, and the official code does not either. The K+1
GAN's official code tests with an exponential moving average of D's parameters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def running_mean_init(params) -> dict:
    """A running mean of parameters, started with their current values."""
    return {"mean": jax.tree.map(jnp.copy, params), "count": jnp.ones((), jnp.int32)}


def running_mean_update(history: dict, params) -> dict:
    """Adds the parameters after an update: ``mean += (theta - mean) / (count + 1)``.

    After ``t`` updates the mean is ``1/(t+1) sum_{i=0..t} theta_i``, the average of every
    value the player has had (the paper's ``1/t sum_i theta[i]``), in one pass and one copy
    of the parameters, exact up to float rounding.
    """
    count = history["count"] + 1
    w = 1.0 / count.astype(jnp.float32)
    mean = jax.tree.map(lambda m, p: m + w * (p - m), history["mean"], params)
    return {"mean": mean, "count": count}


def history_penalty(params, history: dict) -> Array:
    """``|| theta - mean ||_2^2`` over all of a player's parameters (a scalar).

    The mean is a constant of the update (no gradient flows into the past), so the penalty's
    gradient is ``2 (theta - mean)``: it pulls each player back towards its history, damping
    the orbits simultaneous gradient descent can fall into (Sec. 3.3).
    """
    mean = jax.lax.stop_gradient(history["mean"])
    sq = jax.tree.map(lambda p, m: jnp.sum(jnp.square(p - m)), params, mean)
    return sum(jax.tree.leaves(sq), jnp.zeros(()))


def ema_init(params):
    """An exponential moving average started at zero (bias-corrected when read, `ema_read`)."""
    return jax.tree.map(jnp.zeros_like, params)


def ema_update(avg, params, rate: float):
    """``avg + rate (params - avg)``: the official Improved-GAN code's update."""
    return jax.tree.map(lambda a, p: a + rate * (p - a), avg, params)


def ema_read(avg, params, step: Array, rate: float):
    """The moving average bias-corrected: ``avg / (1 - (1 - rate)^t)``, i.e.
    ``sum_i rate (1 - rate)^(t - i) theta_i`` normalised to weights summing to 1 (Adam's
    correction). ``params`` (the current values) before the first update or when ``rate``
    is 0."""
    if not rate:
        return params
    t = step.astype(jnp.float32)
    norm = -jnp.expm1(t * jnp.log1p(-rate))  # 1 - (1 - rate)^t, accurate for small rate
    safe = jnp.where(t > 0, norm, 1.0)
    return jax.tree.map(lambda a, p: jnp.where(t > 0, a / safe, p), avg, params)


def ema_tracker_init(params) -> dict:
    """An EMA that carries its own bias correction: ``{"avg": 0, "norm": 0}``.

    ``norm`` is the same EMA applied to the constant 1, i.e. ``1 - (1 - rate)^t`` after
    ``t`` updates, so `ema_tracker_read` needs neither the rate nor the step (a resumed run
    with another decay reads its average correctly), and equals `ema_read`.
    """
    return {"avg": ema_init(params), "norm": jnp.zeros((), jnp.float32)}


def ema_tracker_update(tracker: dict, params, rate: float) -> dict:
    """`ema_update` of the average and of its normaliser."""
    return ema_update(tracker, {"avg": params, "norm": jnp.ones((), jnp.float32)}, rate)


def ema_tracker_read(tracker: dict, params):
    """``avg / norm``: ``sum_i rate (1 - rate)^(t - i) theta_i`` over the ``t`` updates,
    normalised to weights summing to 1; ``params`` before the first update."""
    norm = tracker["norm"]
    safe = jnp.where(norm > 0, norm, 1.0)
    return jax.tree.map(lambda a, p: jnp.where(norm > 0, a / safe, p).astype(p.dtype),
                        tracker["avg"], params)
