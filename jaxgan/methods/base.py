"""The method interface: what a training method gives the run layer, and a loaded run.

A method is not a trainer. It says how to build its state from a config, what its step
and batches are, what to draw and evaluate after each epoch, and how to sample and score a
trained run; `jaxgan.runs` writes, checks, resumes and loads the run folder and
`jaxgan.loop` runs the steps, the same for every method.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

Hook = Callable[[Any, int], "dict | None"]  # on_epoch(state, epoch) -> metrics to log


@dataclasses.dataclass
class Run:
    """A trained (or interrupted) run read back: config, networks, latest state, folder,
    and ``data.json`` (the data's description, which rebuilds the networks without the
    data)."""

    cfg: Any
    nets: Any
    state: Any
    run_dir: Path
    data: dict
    cache: dict = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass(frozen=True)
class Samples:
    """What `Method.sample` draws: images ``(N, H, W, C)`` in [-1, 1] or 2-D points
    ``(N, 2)``; a conditional model's labels; rows for a figure (one per class or strip);
    the real modes a figure of 2-D points draws them over."""

    x: np.ndarray
    y: np.ndarray | None = None
    rows: int | None = None
    centres: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method as functions of its config.

    Attributes:
      name: ``gan``, ``glo`` or ``ssl`` (a config class's ``method``).
      load_data: ``cfg -> data``, everything the run reads (done once, before init).
      describe: ``(cfg, data) -> dict``, what ``data.json`` records: enough to rebuild the
        networks without the data (shapes, classes) and a description.
      init: ``(cfg, described, data | None) -> (nets, state)``; without data, a state of the
        right structure to restore a checkpoint into.
      make_step: ``(cfg, nets) -> (step, examples_per_step)``, a pure
        ``step(state, batch) -> (state, metrics)``, not yet jitted (the run layer compiles
        it for its mesh, `jaxgan.mesh`), and how many examples of the epoch's data one step
        consumes.
      batches: ``(cfg, nets, data, examples_per_step, start_step, shard) -> iterator`` of
        host batches; ``shard = (index, count)`` says which rows of every global batch to
        read (`jaxgan.data.Dataset.batches`; ``(0, 1)``: all of them).
      steps_per_epoch: ``(cfg, data, examples_per_step) -> int``.
      start: ``(cfg, nets, data, out, progress) -> on_epoch``: writes the method's own files
        of the run folder and returns the hook called after every epoch (figures and
        evaluation; a dict it returns goes into ``metrics.jsonl``).
      sample: ``(run, n, seed, label) -> Samples``.
      interpolate: ``(run, strips, points, seed, label) -> Samples``, latent walks (a
        conditional model's strips keep one class each, or ``label``).
      evaluate: ``(run, n, seed, data_dir, progress) -> dict``, scores of a trained run:
        ``{"samples": {metric: value}, ...}`` as `jaxgan.scoring.format_table` prints.
      title: ``cfg -> str``, how progress bars and figures name a run.
      conditional: ``run -> bool``, whether the run's generator takes labels (``jaxgan
        sample --label`` is refused otherwise, for every method, by `jaxgan.runs.sample`).
    """

    name: str
    load_data: Callable[[Any], Any]
    describe: Callable[[Any, Any], dict]
    init: Callable[[Any, dict, Any], tuple[Any, Any]]
    make_step: Callable[[Any, Any], tuple[Callable, int]]
    batches: Callable[[Any, Any, Any, int, int, tuple[int, int]], Iterator[dict]]
    steps_per_epoch: Callable[[Any, Any, int], int]
    start: Callable[..., Hook]
    sample: Callable[..., Samples]
    interpolate: Callable[..., Samples]
    evaluate: Callable[..., dict]
    title: Callable[[Any], str]
    conditional: Callable[[Run], bool] = lambda run: False
