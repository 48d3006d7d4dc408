"""The host loop: steps, a progress bar, metrics.jsonl, periodic hooks and checkpoints.

One loop for every method and for one seed or a stack of seeds (`jaxgan.comparison`): it takes
any state, step function and batch stream, and knows nothing of which method made them. It
never waits on the device inside the hot loop: metrics stay on device and are fetched in
windows one call behind the call being dispatched (the JAX training cookbook's advice), so
the host runs ahead while the previous call computes (on an accelerator; on CPU jaxgan runs
a single-device step on the calling thread, `jaxgan.xla_cpu.reuse_step_memory`). A call may
run several steps (``multi_step``, `jaxgan.xla_cpu.steps_per_call`) where no hook or
checkpoint falls inside them. A metric of a stacked state is an array with one value per
seed; its record holds the list.
"""

from __future__ import annotations

import collections
import json
import math
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxgan import guard, xla_cpu
from jaxgan.checkpoint import Checkpointer
from jaxgan.progress import bar as progress_bar


class NonFiniteError(FloatingPointError):
    """A metric, gradient or parameter became NaN or infinite: training diverged (or, under
    ``--on-nonfinite skip``, too many steps in a row had to be undone)."""


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


def _numpy(metrics: dict) -> dict:
    # Keys sorted, as a jitted step returns them, so messages name quantities in one order.
    return {k: np.asarray(metrics[k]) for k in sorted(metrics)}


def summarise(window: list[dict], step: int, elapsed: float) -> dict:
    """The mean of a window of step metrics (per seed for stacked ones) as one record;
    raises `NonFiniteError` if any value in the window is NaN or infinite.

    Flags (`jaxgan.guard.HIDDEN`) are left out of the record. Under ``--on-nonfinite skip``
    (a ``skipped`` metric) the steps that were undone count in ``skipped`` (summed) and are
    left out of the means, seed by seed.
    """
    host = [_numpy(m) for m in jax.device_get(window)]
    _check(host, [step - len(host) + 1 + i for i in range(len(host))])
    return _record(host, step, elapsed)


def _record(host: list[dict], step: int, elapsed: float) -> dict:
    """`summarise`'s record of a window already on the host and checked."""
    record = {"step": step, "time": round(elapsed, 3)}
    skipped = np.stack([m[guard.SKIPPED] for m in host]) if guard.SKIPPED in host[0] else None
    for k in host[0]:
        if k.startswith(guard.HIDDEN):
            continue
        values = np.stack([m[k] for m in host]).astype(np.float64)
        if k == guard.SKIPPED:
            record[k] = values.sum(axis=0).astype(int).tolist()
            continue
        if skipped is not None:
            values = np.where(_expand(skipped.astype(bool), values), np.nan, values)
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a window all undone: NaN
                mean = np.nanmean(values, axis=0)
        else:
            mean = values.mean(axis=0)
        # An all-undone window has no mean: null in metrics.jsonl.
        record[k] = None if np.ndim(mean) == 0 and np.isnan(mean) else (
            mean.tolist() if np.ndim(mean) else float(mean))
    return record


def _expand(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    # A per-seed mask (S,) against a per-seed metric (S, ...).
    return mask.reshape(mask.shape + (1,) * (np.ndim(like) - mask.ndim))


def _check(host: list[dict], steps: list[int]) -> None:
    """Raises `NonFiniteError` naming the first step (and seed) of ``host`` with a non-finite
    quantity that was not undone."""
    for step, m in zip(steps, host):
        undone = np.asarray(m.get(guard.SKIPPED, 0)).astype(bool)
        bad = {}
        for k, v in m.items():
            if k != guard.SKIPPED:
                flag = guard.nonfinite(k, v)
                bad[k] = flag & ~_expand(undone, flag)
        if not any(np.any(b) for b in bad.values()):
            continue
        seed = None
        per_seed = [b.reshape(b.shape[0], -1).any(axis=1) for b in bad.values() if np.ndim(b)]
        if per_seed and np.any(per_seed):  # a stacked run: the first seed that diverged
            seed = int(np.argmax(np.any(per_seed, axis=0)))
        names = guard.bad_names(m, ... if seed is None else seed)
        where = f"at step {step}" + ("" if seed is None else f" (seed {seed})")
        raise NonFiniteError(f"non-finite {', '.join(names)} {where}: training diverged")


def _on_cpu(tree) -> bool:
    # A step's outputs share its devices: the first array says where they all are.
    leaves = jax.tree.leaves(tree)
    return bool(leaves) and isinstance(leaves[0], jax.Array) and all(
        d.platform == "cpu" for d in leaves[0].devices())


class _Row:
    """Step ``i``'s metrics in the stacked metrics of a call that ran several steps
    (``multi_step``), left on device until the window is fetched."""

    __slots__ = ("stacked", "i")

    def __init__(self, stacked: dict, i: int):
        self.stacked, self.i = stacked, i


def _fetch(items: list) -> list[dict]:
    """Step metrics on device (a step's dict, or a `_Row` of a call's stacked dict) as dicts
    of numpy arrays, each call's outputs read once. On an accelerator one transfer for the
    lot; on CPU they are host memory already, and reading each array costs a sixth of what
    `jax.device_get`'s batched copies do (100 steps' metrics: 1.9 ms against 12.1 ms)."""
    outputs = {}  # id -> a call's metrics (stacked or not), in order
    for m in items:
        out = m.stacked if isinstance(m, _Row) else m
        outputs.setdefault(id(out), out)
    fetched = list(outputs.values())
    if not _on_cpu(fetched):
        fetched = jax.device_get(fetched)
    host = {key: _numpy(m) for key, m in zip(outputs, fetched)}
    return [{k: v[m.i] for k, v in host[id(m.stacked)].items()} if isinstance(m, _Row)
            else host[id(m)] for m in items]


def _all_clear(host: list[dict]) -> bool:
    """Whether a window of host metrics is all finite, with no flag up and no step undone:
    the common case, one test per metric for the whole window rather than `_check`'s tests
    of every metric of every step."""
    if not host or guard.SKIPPED in host[0]:
        return False
    for k in host[0]:
        if np.any(guard.nonfinite(k, np.stack([m[k] for m in host]))):
            return False
    return True


def _stack(batches: list) -> Any:
    """Batches stacked on a new leading axis: numpy for host arrays (a CPU run's batches),
    on 64-byte boundaries so that the step reads them in place (`jaxgan.xla_cpu.host_aligned`),
    `jax.numpy` for arrays already on the devices."""
    return jax.tree.map(lambda *xs: xla_cpu.stack_aligned(xs) if isinstance(xs[0], np.ndarray)
                        else jax.numpy.stack(xs), *batches)


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
    checkpoint_every: int | None = None,
    on_epoch: Callable[[Any, int], dict | None] | None = None,
    on_record: Callable[[dict], None] | None = None,
    log_every: int = 50,
    meta: dict | Callable[[int], dict] | None = None,
    pending: list[dict] | None = None,
    max_skips: int | None = None,
    export: Callable[[Any], Any] | None = None,
    skip_late_boundary: bool = False,
    desc: str = "train",
    progress: bool = True,
    bar: tqdm | None = None,
    put: Callable[[Any], Any] = jax.device_put,
    multi_step: Callable[[Any, dict], tuple[Any, dict]] | None = None,
    steps_per_call: int = 1,
) -> Any:
    """Runs ``train_step`` from step ``start`` (default ``state.step``) to ``total_steps``.

    Args:
      state: the state (a pytree; a resumed state continues from its step).
      train_step: ``(state, batch) -> (state, metrics)``, metrics a dict of arrays (flags of
        `jaxgan.guard` among them, if it is guarded).
      batches: yields the batch of each step from ``start`` on.
      total_steps: the step to stop at.
      steps_per_epoch: every this many steps, and at the end: ``on_epoch(state, epoch)`` and
        a checkpoint (an "epoch" is any evaluation interval: `jaxgan.comparison` passes its
        ``eval_every``).
      start: the first step's number, where ``state.step`` cannot say (a list of states).
      out_dir: ``metrics.jsonl`` is appended to here (none if ``None``).
      checkpointer: where the periodic and final checkpoints go (none if ``None``).
      checkpoint_every: also checkpoint every this many steps (default: only at the epochs'
        ends and the end).
      on_epoch: a hook for figures and evaluation, called with the epoch just finished; a
        dict it returns is written to ``metrics.jsonl`` with the step and epoch.
      on_record: called with every metrics record (the mean of a window).
      log_every: steps per metrics record; records fall on multiples of it (and on the
        epochs' ends), wherever the run started, so a resumed run writes the records an
        uninterrupted one does.
      meta: JSON metadata saved with each checkpoint, or ``step -> metadata``. The loop adds
        ``"window"``: the metrics of the steps since the last record, which a resumed run
        passes back as ``pending``.
      pending: those metrics, from the checkpoint a run resumes from.
      max_skips: under ``--on-nonfinite skip`` (a guarded step), stop after this many steps
        in a row were undone.
      export: what of the state a checkpoint saves (default: the state itself).
      skip_late_boundary: skip a periodic hook less than half an interval before the final
        one (a comparison's last two evaluations would be nearly the same).
      desc, progress: the tqdm bar's label, and whether to show it.
      bar: an open tqdm bar to advance instead (a comparison's bar over all its runs).
      put: places a host batch on the devices (`jaxgan.mesh.Placement.put_batch` splits it
        over a mesh; default: the default device).
      multi_step, steps_per_call: ``multi_step(state, batches) -> (state, metrics)`` runs
        ``steps_per_call`` steps on that many batches stacked on a leading axis, its metrics
        stacked the same way (`jaxgan.mesh.Placement.jit` with ``steps``). The loop calls it
        wherever no hook, checkpoint or end falls strictly inside its steps, and
        ``train_step`` elsewhere: every hook and checkpoint sees the state of its own step,
        and a run writes the records and checkpoints it would write one step at a time.

    Returns:
      The final state.

    Raises:
      Interrupted: SIGTERM or a first Ctrl-C arrived: the step in flight finished and a
        checkpoint of it was saved (a second Ctrl-C raises KeyboardInterrupt at once, saving
        nothing).
      NonFiniteError: a quantity became NaN or infinite (no checkpoint of that state is
        written: every step is checked before a save), or ``max_skips`` steps in a row were
        undone.
    """
    start = int(state.step) if start is None else start
    # (step, metrics) of the steps not yet in a record; metrics stay on device until needed.
    window: list[tuple[int, dict]] = []
    for i, m in enumerate(pending or []):
        window.append((start - len(pending) + 1 + i, _numpy(m)))
    checked = len(window)  # window[:checked] is on the host and was found finite
    undone_run = np.zeros(())  # steps undone in a row (per seed)
    last_saved = start if checkpointer is not None and start else None
    t0 = time.perf_counter()
    log = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        log = open(Path(out_dir) / "metrics.jsonl", "a")
    own_bar = bar is None
    if own_bar:
        bar = progress_bar(total=total_steps, initial=start, desc=desc, enabled=progress)

    def write(record: dict):
        if log is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()

    def kept() -> str:
        # What a divergence leaves on disk, for its message.
        return (f"the last checkpoint (step {last_saved}) is left as it was"
                if last_saved is not None else "no checkpoint was saved")

    def check(n: int):
        # Fetches window[checked:n] and stops on a non-finite quantity, before any record or
        # checkpoint holds it.
        nonlocal checked, undone_run
        # Already computed: they are a call behind or more.
        fetched = _fetch([m for _, m in window[checked:n]])
        for i, m in zip(range(checked, n), fetched):
            window[i] = (window[i][0], m)
        if _all_clear([m for _, m in window[checked:n]]):
            checked = max(checked, n)
            return
        for i in range(checked, n):
            step = window[i][0]
            try:
                _check([window[i][1]], [step])
            except NonFiniteError as e:
                raise NonFiniteError(
                    f"{e}; {kept()}. Lower the learning rates (a run may change them when it "
                    "resumes: --resume with the new values), or use --on-nonfinite skip to "
                    "undo such steps") from None
            if guard.SKIPPED in window[i][1]:
                undone = window[i][1][guard.SKIPPED].astype(bool)
                undone_run = np.where(undone, undone_run + 1, 0)
                if max_skips is not None and np.any(undone_run >= max_skips):
                    names = guard.bad_names(window[i][1], ... if undone.ndim == 0 else
                                            int(np.argmax(undone_run)))
                    raise NonFiniteError(
                        f"{int(np.max(undone_run))} steps in a row undone by --on-nonfinite "
                        f"skip (to step {step}; non-finite: {', '.join(names) or '?'}): "
                        "training keeps diverging from the same state. Lower the learning "
                        "rates, or raise --max-skips")
        checked = max(checked, n)

    def flush(n: int):
        nonlocal checked
        check(n)
        # Checked by `check` already: only the means are left to take.
        record = _record([m for _, m in window[:n]], window[n - 1][0],
                         time.perf_counter() - t0)
        del window[:n]
        checked -= n
        write(record)
        if on_record is not None:
            on_record(record)
        bar.set_postfix({k: f"{np.nanmean(np.asarray(record[k], float)):.3g}"
                         for k in ("d_loss", "g_loss", "loss")
                         if k in record and record[k] is not None})

    def flush_due(n: int, first: int = 0):
        # A record for each multiple of log_every among the steps of window[first:n], in
        # order (the window holds consecutive steps).
        for due in [d for d, _ in window[first:n] if d % log_every == 0]:
            flush(due - window[0][0] + 1)

    def boundary(done: int) -> bool:
        if done == total_steps:
            return True
        if done % steps_per_epoch:
            return False
        return not skip_late_boundary or total_steps - done >= steps_per_epoch / 2

    def save(done: int):
        nonlocal last_saved
        if checkpointer is None:
            return
        flush_due(len(window))  # records due are written, not also kept in the checkpoint
        check(len(window))  # never a checkpoint of a diverged state: its metrics,
        bad = guard.nonfinite_fields(state)  # and the state itself, field by field
        if bad:
            raise NonFiniteError(
                f"non-finite {', '.join(bad)} at step {done}, with finite losses and "
                f"gradients: training diverged; {kept()}. Lower the learning rates")
        saved = state if export is None else export(state)
        info = meta(done) if callable(meta) else {**(meta or {}), "step": done}
        info = {**info, "window": [{k: v.tolist() for k, v in m.items()} for _, m in window]}
        checkpointer.save(done, saved, info)
        last_saved = done

    def call_size(step: int) -> int:
        # Steps the next call runs: `steps_per_call` unless a hook, a checkpoint or the end
        # falls strictly inside them.
        k = steps_per_call if multi_step is not None else 1
        if k == 1 or step + k > total_steps:
            return 1
        for every in (steps_per_epoch, checkpoint_every):
            if every and (step + k - 1) // every > step // every:
                return 1
        return k

    feed = staged(batches, put=put)
    stop = StopRequest()
    try:
        with stop:
            step, last_k = start, 0
            while step < total_steps:
                k = call_size(step)
                if k == 1:
                    state, metrics = train_step(state, next(feed))
                    rows = [metrics]
                else:
                    state, metrics = multi_step(state, _stack([next(feed) for _ in range(k)]))
                    rows = [_Row(metrics, i) for i in range(k)]
                before = len(window)  # the entries of earlier calls
                window.extend((step + 1 + i, m) for i, m in enumerate(rows))
                done = step = step + k
                bar.update(k)
                # The records of the previous call's steps: fetching them does not wait for
                # the call just dispatched.
                flush_due(before, max(0, before - last_k))
                last_k = k
                if boundary(done):
                    flush_due(len(window))
                    if window:
                        flush(len(window))
                    if on_epoch is not None:
                        epoch = math.ceil(done / steps_per_epoch)
                        extra = on_epoch(state, epoch)
                        if extra:
                            write({"step": done, "epoch": epoch, **extra})
                    save(done)
                elif stop.requested is not None or (
                        checkpoint_every and done % checkpoint_every == 0):
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
