"""The host loop: steps, a progress bar, metrics.jsonl, periodic hooks and checkpoints.

One loop for every method and for one seed or a stack of seeds (`jaxgan.compare`): it takes
any state, step function and batch stream, and knows nothing of which method made them. It
never waits on the device inside the hot loop: metrics stay on device and are fetched in
windows one step behind the step being dispatched (the JAX training cookbook's advice), so
the host runs ahead while the previous step computes. A metric of a stacked state is an
array with one value per seed; its record holds the list.
"""

from __future__ import annotations

import collections
import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxgan.checkpoint import Checkpointer


class NonFiniteError(FloatingPointError):
    """A metric became NaN or infinite: training diverged."""


class Interrupted(Exception):
    """The run stopped early on request (SIGTERM, a first Ctrl-C), after saving a checkpoint
    of the step it reached (``step``); ``signum`` is the signal that asked."""

    def __init__(self, step: int, signum: int, saved: bool):
        self.step, self.signum, self.saved = step, signum, saved
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} after step {step}"
            + ("; checkpoint saved: continue with --resume" if saved else ""))


class StopRequest:
    """While active, SIGTERM (how clusters preempt) and a first Ctrl-C only ask the loop to
    stop at the next step boundary (``requested`` holds the signal); a second Ctrl-C stops at
    once (KeyboardInterrupt). Handlers can only be set in the main thread; elsewhere this
    does nothing."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.requested: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        self.requested = signum
        # A second Ctrl-C is not a request: Python's own handler raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def summarise(window: list[dict], step: int, elapsed: float) -> dict:
    """The mean of a window of step metrics (per seed for stacked ones) as one record;
    raises `NonFiniteError` if any value in the window is NaN or infinite."""
    host = jax.device_get(window)
    record = {"step": step, "time": round(elapsed, 3)}
    for k in host[0]:
        record[k] = np.mean([m[k] for m in host], axis=0).tolist()
    bad = [k for k in host[0] if not all(np.all(np.isfinite(m[k])) for m in host)]
    if bad:
        raise NonFiniteError(
            f"non-finite {', '.join(bad)} by step {step}: training diverged. Try a lower "
            "learning rate, another objective, or resume from the last checkpoint."
        )
    return record


def staged(batches: Iterator[Any], ahead: int = 2,
           put: Callable[[Any], Any] = jax.device_put) -> Iterator[Any]:
    """The batches of ``batches`` in order, each copied to the devices by ``put`` ``ahead``
    steps before its step: the host-to-device copy (a PCIe transfer on an accelerator)
    overlaps the steps still running instead of delaying the next dispatch."""
    queue: collections.deque = collections.deque()
    while True:
        try:  # next(), not a for loop: `batches` need only be an iterator's __next__
            queue.append(put(next(batches)))
        except StopIteration:
            break
        if len(queue) > ahead:
            yield queue.popleft()
    yield from queue


def run(
    state: Any,
    train_step: Callable[[Any, dict], tuple[Any, dict]],
    batches: Iterator[dict],
    *,
    total_steps: int,
    steps_per_epoch: int,
    start: int | None = None,
    out_dir: str | Path | None = None,
    checkpointer: Checkpointer | None = None,
    on_epoch: Callable[[Any, int], dict | None] | None = None,
    on_record: Callable[[dict], None] | None = None,
    log_every: int = 50,
    meta: dict | Callable[[int], dict] | None = None,
    export: Callable[[Any], Any] | None = None,
    skip_late_boundary: bool = False,
    desc: str = "train",
    progress: bool = True,
    bar: tqdm | None = None,
    put: Callable[[Any], Any] = jax.device_put,
) -> Any:
    """Runs ``train_step`` from step ``start`` (default ``state.step``) to ``total_steps``.

    Args:
      state: the state (a pytree; a resumed state continues from its step).
      train_step: ``(state, batch) -> (state, metrics)``, metrics a dict of arrays.
      batches: yields the batch of each step from ``start`` on.
      total_steps: the step to stop at.
      steps_per_epoch: every this many steps, and at the end: ``on_epoch(state, epoch)`` and
        a checkpoint (an "epoch" is any evaluation interval: `jaxgan.compare` passes its
        ``eval_every``).
      start: the first step's number, where ``state.step`` cannot say (a list of states).
      out_dir: ``metrics.jsonl`` is appended to here (none if ``None``).
      checkpointer: where the periodic and final checkpoints go (none if ``None``).
      on_epoch: a hook for figures and evaluation, called with the epoch just finished; a
        dict it returns is written to ``metrics.jsonl`` with the step and epoch.
      on_record: called with every metrics record (the mean of a window).
      log_every: steps per metrics record.
      meta: JSON metadata saved with each checkpoint, or ``step -> metadata``.
      export: what of the state a checkpoint saves (default: the state itself).
      skip_late_boundary: skip a periodic hook less than half an interval before the final
        one (a comparison's last two evaluations would be nearly the same).
      desc, progress: the tqdm bar's label, and whether to show it.
      bar: an open tqdm bar to advance instead (a comparison's bar over all its runs).
      put: places a host batch on the devices (`jaxgan.mesh.Placement.put_batch` splits it
        over a mesh; default: the default device).

    Returns:
      The final state.

    Raises:
      Interrupted: SIGTERM or a first Ctrl-C arrived: the step in flight finished, its
        metrics were written and a checkpoint of it saved (a second Ctrl-C raises
        KeyboardInterrupt at once, saving nothing).
      NonFiniteError: a metric became NaN or infinite.
    """
    start = int(state.step) if start is None else start
    window: list[dict] = []
    t0 = time.perf_counter()
    log = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        log = open(Path(out_dir) / "metrics.jsonl", "a")
    own_bar = bar is None
    if own_bar:
        bar = tqdm(total=total_steps, initial=start, desc=desc, disable=not progress,
                   dynamic_ncols=True)

    def write(record: dict):
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()

    def flush(n: int, step: int):
        # Only metrics of steps that were dispatched before the latest one are fetched.
        record = summarise(window[:n], step, time.perf_counter() - t0)
        del window[:n]
        write(record)
        if on_record is not None:
            on_record(record)
        bar.set_postfix({k: f"{np.mean(record[k]):.3g}"
                         for k in ("d_loss", "g_loss", "loss") if k in record})

    def boundary(done: int) -> bool:
        if done == total_steps:
            return True
        if done % steps_per_epoch:
            return False
        return not skip_late_boundary or total_steps - done >= steps_per_epoch / 2

    def save(done: int):
        if checkpointer is not None:
            saved = state if export is None else export(state)
            info = meta(done) if callable(meta) else {**(meta or {}), "step": done}
            checkpointer.save(done, saved, info)

    feed = staged(batches, put=put)
    stop = StopRequest()
    try:
        with stop:
            for step in range(start, total_steps):
                state, metrics = train_step(state, next(feed))
                window.append(metrics)
                bar.update(1)
                if len(window) > log_every:
                    flush(log_every, step)
                done = step + 1
                if boundary(done):
                    if window:
                        flush(len(window), done)
                    if on_epoch is not None:
                        epoch = math.ceil(done / steps_per_epoch)
                        extra = on_epoch(state, epoch)
                        if extra:
                            write({"step": done, "epoch": epoch, **extra})
                    save(done)
                elif stop.requested is not None:
                    if window:
                        flush(len(window), done)
                    save(done)
                if stop.requested is not None and done < total_steps:
                    if checkpointer is not None:
                        checkpointer.wait()  # the save is complete before the process ends
                    raise Interrupted(done, stop.requested, checkpointer is not None)
    finally:
        if log is not None:
            log.close()
        if own_bar:
            bar.close()
    if checkpointer is not None:
        checkpointer.wait()
    return state
