"""The host loop: steps, a progress bar, metrics.jsonl, per-epoch hooks and checkpoints.

It takes any state, step function and batch stream, and knows nothing of which method made
them. It never waits on the device inside the hot loop: metrics stay on device and are
fetched in windows one step behind the step being dispatched (the JAX training cookbook's
advice), so the host runs ahead while the previous step computes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxgan.checkpoint import Checkpointer


class NonFiniteError(FloatingPointError):
    """A metric became NaN or infinite: training diverged."""


def _summarise(window: list[dict], step: int, elapsed: float) -> dict:
    host = jax.device_get(window)
    record = {"step": step, "time": round(elapsed, 3)}
    for k in host[0]:
        record[k] = float(np.mean([m[k] for m in host]))
    bad = [k for k in host[0] if not all(math.isfinite(float(m[k])) for m in host)]
    if bad:
        raise NonFiniteError(
            f"non-finite {', '.join(bad)} by step {step}: training diverged. Try a lower "
            "learning rate, another objective, or resume from the last checkpoint."
        )
    return record


def run(
    state: Any,
    train_step: Callable[[Any, dict], tuple[Any, dict]],
    batches: Iterator[dict],
    *,
    total_steps: int,
    steps_per_epoch: int,
    out_dir: str | Path,
    checkpointer: Checkpointer | None = None,
    on_epoch: Callable[[Any, int], dict | None] | None = None,
    log_every: int = 50,
    meta: dict | None = None,
    desc: str = "train",
    progress: bool = True,
) -> Any:
    """Runs ``train_step`` from ``state.step`` to ``total_steps``.

    Args:
      state: a pytree with an integer ``step`` field (a resumed state continues from it).
      train_step: ``(state, batch) -> (state, metrics)``, metrics a dict of scalars.
      batches: yields the batch of each step from ``state.step`` on.
      total_steps: the step to stop at.
      steps_per_epoch: every this many steps: ``on_epoch(state, epoch)`` and a checkpoint.
      out_dir: ``metrics.jsonl`` is appended to here.
      checkpointer: where epoch-end and final checkpoints go (none if ``None``).
      on_epoch: a hook for figures and evaluation, called with the epoch just finished; a
        dict it returns is written to ``metrics.jsonl`` with the step and epoch.
      log_every: steps per metrics line (the mean of the window).
      meta: JSON metadata saved with each checkpoint.
      progress: show a tqdm bar with the latest losses.

    Returns:
      The final state.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = int(state.step)
    window: list[dict] = []
    t0 = time.perf_counter()

    def save(step: int):
        if checkpointer is not None:
            checkpointer.save(step, state, {**(meta or {}), "step": step})

    with open(out_dir / "metrics.jsonl", "a") as log, tqdm(
        total=total_steps, initial=start, desc=desc, disable=not progress, dynamic_ncols=True
    ) as bar:

        def flush(n: int, step: int):
            # Only metrics of steps that were dispatched before the latest one are fetched.
            record = _summarise(window[:n], step, time.perf_counter() - t0)
            del window[:n]
            log.write(json.dumps(record) + "\n")
            log.flush()
            bar.set_postfix({k: f"{record[k]:.3g}" for k in ("d_loss", "g_loss", "loss") if k in record})

        for step in range(start, total_steps):
            state, metrics = train_step(state, next(batches))
            window.append(metrics)
            bar.update(1)
            if len(window) > log_every:
                flush(log_every, step)
            done = step + 1
            if done % steps_per_epoch == 0 or done == total_steps:
                if window:
                    flush(len(window), done)
                if on_epoch is not None:
                    epoch = math.ceil(done / steps_per_epoch)
                    extra = on_epoch(state, epoch)
                    if extra:
                        log.write(json.dumps({"step": done, "epoch": epoch, **extra}) + "\n")
                        log.flush()
                save(done)
    if checkpointer is not None:
        checkpointer.wait()
    return state
