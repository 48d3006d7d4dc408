"""Divergence caught inside the compiled step: which quantity of which network went non-finite,
and, if asked, the step undone.

`guarded` wraps any method's pure step (a GAN's, GLO's, the K+1 GAN's, one seed of
`jaxgan.comparison`'s stack) before it is jitted. The check is a few reductions on device, part
of the same program: nothing waits on the host. The loop reads the flags with the step's
other metrics, a window at a time (`jaxgan.loop`), and either stops, naming the first bad
step, the network and the quantity, before any checkpoint of a bad state is written
(``raise``), or counts the steps that were undone and stops after too many in a row
(``skip``).

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
_BAD = "_nonfinite/"  # a state field holding a NaN or an infinity after the step


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
    """``step(state, batch) -> (state, metrics)`` with non-finite flags among its metrics.

    Each metric is checked as it is (a loss, a gradient norm: a non-finite gradient makes its
    norm non-finite) and each field of the new state (parameters, optimiser moments, batch-
    norm statistics, GLO's latents) gets a flag ``_nonfinite/<field>``. With ``policy="skip"``
    a step whose metrics or state are not all finite is undone: every field of the state
    keeps its value from before the step (``jnp.where``, no host sync) except ``step``, so
    the data and the noise move on to the next step's, and the metric ``skipped`` is 1.
    """
    if policy not in POLICIES:
        raise ValueError(f"on_nonfinite must be one of {', '.join(POLICIES)}, got {policy!r}")

    def step_guarded(state, batch):
        new, metrics = step(state, batch)
        flags = {_BAD + name: ~_all_finite(value) for name, value in _fields(new).items()}
        if policy == "skip":
            bad = jnp.any(jnp.stack([*flags.values(),
                                     *(~_all_finite(v) for v in metrics.values())]))
            kept = jax.tree.map(lambda old, upd: jnp.where(bad, old, upd), state, new)
            # The step counter advances, so the next step draws its own batch and noise.
            new = kept.replace(step=new.step) if hasattr(kept, "replace") else kept
            metrics = {**metrics, SKIPPED: bad.astype(jnp.int32)}
        return new, {**metrics, **flags}

    return step_guarded


# How a message names a quantity: a metric or a state field, by its name.
_NETWORKS = {"d": "D", "g": "G", "z": "the latents'"}
_QUANTITIES = {"loss": "loss", "grad_norm": "gradients", "params": "parameters",
               "stats": "batch-norm statistics", "opt": "optimiser state"}


def describe(name: str) -> str:
    """``d_grad_norm`` -> "D's gradients (d_grad_norm)"; ``_nonfinite/g_params`` -> "G's
    parameters (g_params)"; other names are given as they are."""
    field = name[len(_BAD):] if name.startswith(_BAD) else name
    head, _, rest = field.partition("_")
    if head in _NETWORKS and rest in _QUANTITIES:
        owner = _NETWORKS[head]
        owner = owner if owner.endswith("'") else owner + "'s"
        return f"{owner} {_QUANTITIES[rest]} ({field})"
    return field


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
        bad = bool(np.any(v)) if k.startswith(_BAD) else not bool(np.all(np.isfinite(v)))
        if bad:
            out.append(describe(k))
    return out
