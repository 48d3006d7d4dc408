"""Flax NNX modules used functionally, and batched inference over many examples.

Every step in jaxgan holds a network as a static graph definition (closed over) plus arrays
(in the state). These helpers merge the two for one call and split the result again, so a
step stays a pure function of its state; `chunked` runs a jitted function over any number of
examples in fixed-size chunks.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np
from flax import nnx


def eval_view(module: nnx.Module) -> nnx.Module:
    """The module in inference mode (running BatchNorm statistics, no dropout)."""
    return nnx.view(module, use_running_average=True, deterministic=True, raise_if_not_found=False)


def has_dropout(module: nnx.Module) -> bool:
    return any(isinstance(m, nnx.Dropout) for _, m in nnx.iter_modules(module))


# Flax layers whose output row i depends on input row i only (BatchNorm is not one of them),
# dropout aside: one call on two batches would draw one mask from one stream.
_ROWWISE_LAYERS = (nnx.Linear, nnx.Conv, nnx.ConvTranspose, nnx.Embed, nnx.LayerNorm, nnx.List)


def merges_row_groups(module: nnx.Module) -> bool:
    """Whether one call on equal batches stacked computes what a call on each batch does, in
    train mode: every submodule is a row-wise Flax layer, a class that declares ``ROWWISE =
    True`` (its own code mixes no rows; its submodules are checked here), or a row-group
    layer (``ROW_GROUPS = True``): `jaxgan.nets.layers.GroupedDropout` draws each batch its
    masks from that batch's stream, `jaxgan.nets.layers.GroupedBatchNorm` normalises each
    batch by its own statistics when viewed with ``row_groups``."""
    return all(isinstance(m, _ROWWISE_LAYERS) or getattr(type(m), "ROWWISE", False)
               or getattr(type(m), "ROW_GROUPS", False) for _, m in nnx.iter_modules(module))


def apply(graph, params: nnx.State, stats: nnx.State, *args, **kwargs):
    """Calls a split module functionally: returns ``(output, new_stats)``.

    BatchNorm's running statistics are returned, not mutated, so the caller decides whether a
    forward pass counts (the D update keeps D's; a G forward inside the D update does not).
    """
    return call(graph, params, stats, lambda module: module(*args, **kwargs))


def call(graph, params: nnx.State, stats: nnx.State, fn):
    """``fn(module)`` on a split module, functionally: returns ``(fn's output, new_stats)``.

    For methods other than ``__call__`` (a discriminator's ``features``), or several calls
    on one merged module.
    """
    # copy=True gives fresh Variables owned by the current trace: ``stats`` may come from an
    # outer trace (jit, while this runs under grad), and NNX refuses to mutate a BatchStat
    # created at another trace level.
    module = nnx.merge(graph, params, stats, copy=True)
    out = fn(module)
    return out, nnx.split(module, nnx.Param, ...)[2]


def chunked(fn: Callable[..., jax.Array], *inputs, chunk: int, pad: bool = True) -> np.ndarray:
    """``fn(*inputs)`` over the leading axis in chunks of ``chunk`` rows, as one numpy array.

    ``fn`` must treat rows independently (inference mode). With ``pad`` the last chunk is
    padded to ``chunk`` rows and cut back, so one compilation serves every number of rows;
    ``pad=False`` keeps the last chunk short (for functions whose numbers must not depend on
    how many rows they see at once, or whose callers recorded results that way).
    """
    n = len(inputs[0])
    if n == 0:
        raise ValueError("chunked: no rows to process")
    parts = []
    for i in range(0, n, chunk):
        part = [np.asarray(a[i : i + chunk]) for a in inputs]
        rows = len(part[0])
        if pad and rows < chunk:
            part = [np.pad(a, [(0, chunk - rows)] + [(0, 0)] * (a.ndim - 1)) for a in part]
        parts.append(np.asarray(fn(*part))[:rows])
    return np.concatenate(parts)
