"""Divergence caught: which quantity of which network went non-finite, and, if asked, the
step undone.

Every step's metrics hold its losses and gradient norms (a non-finite gradient makes its
norm non-finite). The loop reads them a window at a time (`jaxgan.loop`: nothing waits on
the host) and either stops, naming the first bad step, the network and the quantity
(``raise``), or, when the step was wrapped by `guarded` with ``skip``, counts the steps that
were undone and stops after too many in a row.

The state is checked field by field where it is kept: `nonfinite_fields` runs before every
checkpoint is written, so no checkpoint holds a non-finite parameter, optimiser moment,
batch-norm statistic or latent. At every step only the metrics are: from a finite state,
finite gradients give finite moments and updates, and a non-finite activation makes the
loss or a gradient non-finite, so a state goes non-finite in a step whose metrics say so
(barring an overflow of finite values, which the next step's loss shows). Checking every
field at every step read the whole state again, as much memory traffic as the optimiser's
update: the cGAN MLP step ran 0.89x, ring8 0.95x with it (one process, alternating windows).

Flags are metrics whose names start with ``_`` (`HIDDEN`): the loop checks them and leaves
them out of ``metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

POLICIES = ("raise", "skip")
HIDDEN = "_"  # metrics starting with this are flags for the loop, not records
SKIPPED = "skipped"  # under "skip": 1 where the step was undone (a record sums them)


def _all_finite(tree) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree)
              if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _fields(state) -> dict[str, Any]:
    # A state dataclass (GANState, GLOState) is checked field by field, so the message can
    # say "D's parameters" rather than "the state".
    if dataclasses.is_dataclass(state):
        return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    return {"state": state}


def guarded(step: Callable, policy: str = "raise") -> Callable:
    """``step(state, batch) -> (state, metrics)`` as the loop's ``on_nonfinite`` policy needs it.

    ``"raise"``: the step as it is (the loop checks its metrics). ``"skip"``: a step whose
    metrics are not all finite is undone: every field of the state keeps its value from
    before the step (``jnp.where``, no host sync) except ``step``, so the data and the noise
    move on to the next step's, and the metric ``skipped`` is 1.
    """
    if policy not in POLICIES:
        raise ValueError(f"on_nonfinite must be one of {', '.join(POLICIES)}, got {policy!r}")
    if policy == "raise":
        return step

    def step_guarded(state, batch):
        new, metrics = step(state, batch)
        bad = jnp.any(jnp.stack([~_all_finite(v) for v in metrics.values()]))
        kept = jax.tree.map(lambda old, upd: jnp.where(bad, old, upd), state, new)
        # The step counter advances, so the next step draws its own batch and noise.
        new = kept.replace(step=new.step) if hasattr(kept, "replace") else kept
        return new, {**metrics, SKIPPED: bad.astype(jnp.int32)}

    return step_guarded


@jax.jit
def _field_flags(state) -> dict[str, jax.Array]:
    return {name: ~_all_finite(value) for name, value in _fields(state).items()}


def nonfinite_fields(state) -> list[str]:
    """The fields of ``state`` (any seed of a stack) holding a NaN or an infinity, described
    for a message (``["D's parameters (d_params)"]``); ``[]`` when all is finite."""
    flags = jax.device_get(_field_flags(state))
    return [describe(name) for name, bad in flags.items() if bool(np.any(bad))]


# How a message names a quantity: a metric or a state field, by its name.
_NETWORKS = {"d": "D", "g": "G", "z": "the latents'"}
_QUANTITIES = {"loss": "loss", "grad_norm": "gradients", "params": "parameters",
               "stats": "batch-norm statistics", "opt": "optimiser state"}


def describe(name: str) -> str:
    """``d_grad_norm`` -> "D's gradients (d_grad_norm)"; ``g_params`` -> "G's parameters
    (g_params)"; other names are given as they are."""
    head, _, rest = name.partition("_")
    if head in _NETWORKS and rest in _QUANTITIES:
        owner = _NETWORKS[head]
        owner = owner if owner.endswith("'") else owner + "'s"
        return f"{owner} {_QUANTITIES[rest]} ({name})"
    return name


def nonfinite(name: str, value) -> np.ndarray:
    """Where a host metric is bad, element by element: a flag (`HIDDEN`) where it is set,
    any other metric where it is NaN or infinite."""
    value = np.asarray(value)
    return value.astype(bool) if name.startswith(HIDDEN) else ~np.isfinite(value)


def bad_names(metrics: dict, index=...) -> list[str]:
    """The quantities that are not finite in one step's host metrics (``index`` picks a seed
    of a stacked run), flags and metrics alike, described for a message."""
    out = []
    # The step's own metrics first (a jitted step returns its dict's keys sorted).
    for k, v in sorted(metrics.items(), key=lambda kv: kv[0].startswith(HIDDEN)):
        if k == SKIPPED:
            continue
        v = np.asarray(v)
        v = v[index] if np.ndim(v) else v  # a seed's value; a scalar is every seed's
        if np.any(nonfinite(k, v)):
            out.append(describe(k))
    return out
