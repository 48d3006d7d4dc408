"""Run folders, the same for every method: written, checked, resumed, loaded, sampled and
evaluated here, and nowhere else.

What a run writes in its folder (``--out``):
  config.json         the resolved config (its class names the method); read by ``--resume``,
                      ``jaxgan sample`` and ``jaxgan eval``
  data.json           what the networks need of the data (shapes, classes) and its description
  metrics.jsonl       one line per ``log_every`` steps (losses, mean D outputs, gradient
                      norms), and per epoch the method's evaluation (``eval/...`` for GANs,
                      ``test_error`` for the K+1 GAN)
  samples/epoch_NNN.png, samples.png   figures from fixed noise, the latest as samples.png
  loss_curve.png (or test_error.png)   curves of metrics.jsonl
  checkpoints/        Orbax checkpoints of the whole state, at every epoch's end (and every
                      ``checkpoint_every`` steps), the last ``keep_checkpoints`` kept
  events.out.tfevents.*   the records and sample grids for TensorBoard
  resumes.jsonl       one line per ``--resume`` that changed a setting: the step, and each
                      changed setting as [before, after]
and what the method adds (GLO: ``pca.npz``, ``reconstructions.png``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import numpy as np

from jaxgan import (
    configs,
    guard,
    health,
    loop,
    mesh,
    methods,
    plots,
    scoring,
    tensorboard,
    xla_cpu,
)
from jaxgan.checkpoint import Checkpointer, saved_steps
from jaxgan.methods.base import Run

# Settings a resumed run may change: how long it runs, how often it logs, and the
# optimisers' hyperparameters (what one tries after a divergence: Adam's and SGD's states
# do not depend on them). Each change is recorded in resumes.jsonl.
RESUMABLE = {"epochs", "steps", "log_every", "eval_every", "g_lr", "d_lr", "lr", "theta_lr",
             "z_lr", "beta1", "beta2"}


def run_directory(path: str | Path) -> Path:
    """The run folder a user named: the ``--out`` of a run, or its ``checkpoints/``."""
    run_dir = Path(path)
    if run_dir.name == "checkpoints":
        run_dir = run_dir.parent
    if not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"{run_dir} has no config.json: is it the --out of a jaxgan run?")
    return run_dir


def check_run_folder(out: Path, cfg, *, resume: bool) -> dict:
    """Refuses, before any data is loaded, to mix two runs up in ``out``: without ``resume``
    a folder that already holds a run (a checkpoint); with it, a folder without one, or a
    config that differs from the saved one in more than `RESUMABLE` settings (the differing
    settings are named). A comparison's folder (`jaxgan.comparison`) is never a run's.

    A run that stopped before its first checkpoint (a bad flag, a crash, Ctrl-C) left no
    run: the same command starts it over, its partial metrics.jsonl dropped.

    Returns the settings a resume changes, as ``{name: (saved, now)}``.
    """
    if (out / "per_seed.json").exists() or (out / "table.md").exists():
        raise FileExistsError(f"{out} holds a comparison (jaxgan compare), not a run: choose "
                              "another --out")
    saved = saved_steps(out / "checkpoints")
    if resume:
        if not (out / "config.json").exists():
            raise FileNotFoundError(f"--resume: {out} holds no run to continue (no config.json)")
        if not saved:
            raise FileNotFoundError(
                f"--resume: {out} has no checkpoint yet (its run stopped before the first "
                "one was saved); run the same command without --resume to start it over")
        saved_cfg = configs.load_config(out / "config.json")
        diff = configs.differences(
            {"config": type(saved_cfg).__name__, **configs.flat_dict(saved_cfg)},
            {"config": type(cfg).__name__, **configs.flat_dict(cfg)})
        if set(diff) - RESUMABLE:
            fixed = {k: v for k, v in diff.items() if k not in RESUMABLE}
            raise ValueError(f"--resume with a config that differs from {out / 'config.json'} "
                             f"in {fixed} (saved, now); only {', '.join(sorted(RESUMABLE))} "
                             "may change on resume")
        if cfg.steps is not None and cfg.steps < saved[-1]:
            raise ValueError(f"--resume --steps {cfg.steps}: the run is already at step "
                             f"{saved[-1]}; pass --steps {saved[-1]} or more")
        return diff
    elif saved:
        raise FileExistsError(
            f"{out} already holds a run (checkpoint at step {saved[-1]}); pass --resume to "
            "continue it or choose another --out")
    elif mesh.is_primary() and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()  # the records of a start that saved nothing
    return {}


def _truncate_records(path: Path, step: int) -> None:
    """Drops the records of steps after ``step`` (written after the checkpoint a run resumes
    from): the resumed run writes them again, the same, so none appears twice."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept))


def train(cfg, out: str | Path, *, resume: bool = False, progress: bool = True, data=None,
          devices: int | None = None, checkpoint_every: int | None = None,
          keep_checkpoints: int = 2, on_nonfinite: str = "raise", max_skips: int = 10,
          halt_on_collapse: bool = False, tensorboard_events: bool = True):
    """Trains ``cfg`` (any method's config) into ``out``; with ``resume`` continues from its
    latest checkpoint, bit for bit (data and noise are indexed by the step), also after a
    SIGKILL: what was written after that checkpoint is written again.

    ``data`` is what the method's ``load_data`` returns, for callers that train several runs
    on the same data. ``devices``: how many devices the step is split over (data parallel,
    `jaxgan.mesh.data_placement`; default: all that the batch splits over evenly); the
    result does not depend on it, up to float rounding, and a run may resume on another
    number than it was saved on. In a multi-process run
    (`jaxgan.mesh.initialize`) every process calls this; process 0 writes the run's files.

    Reliability (`jaxgan.loop.run`, `jaxgan.guard`, `jaxgan.health`): a checkpoint every
    ``checkpoint_every`` steps besides the epochs' ends, the last ``keep_checkpoints``
    kept; ``on_nonfinite``: "raise" stops at the first non-finite loss, gradient or
    parameter, "skip" undoes such steps and stops after ``max_skips`` in a row;
    ``halt_on_collapse`` stops a run whose D has won or whose G collapsed (else a warning).
    ``tensorboard_events``: also write every record and sample grid as TensorBoard events
    into ``out`` (`jaxgan.tensorboard`).
    Returns the finished `Run`. What ``jaxgan train`` does.

    Example::

        import dataclasses, jaxgan
        cfg = jaxgan.MixtureConfig(objective="lsgan", steps=2000)  # LSGAN's ring8 setup
        run = jaxgan.train(cfg, "runs/ring8")
        run = jaxgan.train(dataclasses.replace(cfg, steps=4000), "runs/ring8", resume=True)
    """
    method = methods.for_config(cfg)
    out = Path(out)
    if (cfg.steps is not None and cfg.steps < 1) or (cfg.steps is None and cfg.epochs < 1):
        raise ValueError(f"a run needs at least one step: got --steps {cfg.steps}, --epochs "
                         f"{cfg.epochs}")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be at least 1 step, got {checkpoint_every}")
    if keep_checkpoints < 1:
        raise ValueError(f"--keep-checkpoints must be at least 1, got {keep_checkpoints}")
    if on_nonfinite not in guard.POLICIES:
        raise ValueError(f"--on-nonfinite must be one of {', '.join(guard.POLICIES)}, got "
                         f"{on_nonfinite!r}")
    if max_skips < 1:
        raise ValueError(f"--max-skips must be at least 1, got {max_skips}")
    changed = check_run_folder(out, cfg, resume=resume)
    place = mesh.data_placement(cfg.batch_size, devices)
    mesh.barrier("jaxgan: run folder checked")  # before any process writes to it
    data = method.load_data(cfg) if data is None else data
    described = method.describe(cfg, data)
    nets, state = method.init(cfg, described, data)
    # Placed before a restore, so the checkpoint is read onto this run's mesh whatever the
    # mesh it was saved from.
    state = place.put_state(state)
    ckpt = Checkpointer(out / "checkpoints", max_to_keep=keep_checkpoints)
    pending = None
    if resume:
        state, meta = ckpt.restore(state)
        pending = meta.get("window")
        if mesh.is_primary():
            _truncate_records(out / "metrics.jsonl", int(state.step))
            if changed:
                with open(out / "resumes.jsonl", "a") as f:
                    f.write(json.dumps({"step": int(state.step), "changed": changed}) + "\n")
    # Only process 0 writes the run folder, and draws the figures and evaluations; the other
    # processes write their own files (metrics.jsonl, what a method's start writes) into a
    # scratch folder.
    with contextlib.ExitStack() as scratch:
        scratch.callback(ckpt.close)  # also when the run stops early (`loop.Interrupted`)
        files = out if mesh.is_primary() else Path(
            scratch.enter_context(tempfile.TemporaryDirectory(prefix="jaxgan-process-")))
        files.mkdir(parents=True, exist_ok=True)
        (files / "config.json").write_text(cfg.to_json())
        (files / "data.json").write_text(json.dumps(described))
        progress = progress and mesh.is_primary()

        step_fn, per_step = method.make_step(cfg, nets)
        step_fn = guard.guarded(step_fn, on_nonfinite)
        steps_per_epoch = method.steps_per_epoch(cfg, data, per_step)
        total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
        hook = method.start(cfg, nets, data, files, progress)

        board = tensorboard.Board(files, enabled=tensorboard_events and mesh.is_primary(),
                                  resumed_at=int(state.step) if resume else None)
        scratch.callback(board.close)
        monitor = health.Monitor(
            halt=halt_on_collapse, quiet=not mesh.is_primary(),
            # The K+1 GAN's G learns by feature matching, not by fooling D: its D is meant
            # to win (accuracies of 0.97 to 0.998 in healthy runs).
            d_wins=None if method.name == "ssl" else health.Monitor.d_wins)

        def on_record(record):
            monitor(record)
            board.record(record)

        def on_epoch(state, epoch):
            # From this process's copy of the replicated state, on one device.
            extra = hook(place.local(state), epoch)
            step = int(state.step)
            board.record({"step": step, **(extra or {})})
            board.image("samples", files / "samples.png", step)
            return extra

        batches = method.batches(cfg, nets, data, per_step, int(state.step),
                                 mesh.process_shard())
        # MLP-only steps of a long run go several to a call on CPU
        # (`jaxgan.xla_cpu.steps_per_call`); measured on one device only, so a mesh keeps one.
        k = xla_cpu.steps_per_call(state, total - int(state.step)) if place.size == 1 else 1
        state = loop.run(
            state, place.jit(step_fn, like=state), batches,
            multi_step=place.jit(step_fn, like=state, steps=k) if k > 1 else None,
            steps_per_call=k,
            total_steps=total,
            steps_per_epoch=steps_per_epoch, out_dir=files, checkpointer=ckpt,
            checkpoint_every=checkpoint_every,
            on_epoch=on_epoch if mesh.is_primary() else None,
            on_record=on_record,
            log_every=cfg.log_every, meta={"config": json.loads(cfg.to_json())},
            pending=pending, max_skips=max_skips if on_nonfinite == "skip" else None,
            desc=method.title(cfg), progress=progress, put=place.put_batch,
        )
    return Run(cfg, nets, state, out, described)


def load_run(run_dir: str | Path) -> Run:
    """Config, networks and the latest state of a finished or interrupted run (any method).

    Example::

        run = jaxgan.load_run("runs/ring8")
        print(run.cfg.objective, int(run.state.step))
    """
    run_dir = run_directory(run_dir)
    cfg = configs.load_config(run_dir / "config.json")
    described = json.loads((run_dir / "data.json").read_text())
    nets, like = methods.for_config(cfg).init(cfg, described, None)
    ckpt = Checkpointer(run_dir / "checkpoints")
    try:
        state, _ = ckpt.restore(like)
    finally:
        ckpt.close()
    return Run(cfg, nets, state, run_dir, described)


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def sample(run: Run | str | Path, *, n: int, out: str | Path, seed: int = 0,
           interpolate: int | None = None, points: int = 10, label: int | None = None) -> Path:
    """What ``jaxgan sample`` does on any run: a PNG grid (or a scatter of 2-D points), or an
    ``.npz`` with key ``x`` in [-1, 1] (and ``y``, the labels, for a conditional run);
    ``interpolate=K``: K strips of ``points`` samples walking between two latents; ``label``:
    one class of a conditional run.

    Example::

        jaxgan.sample("runs/ring8", n=2500, out="runs/ring8/points.png")
        jaxgan.sample("runs/mnist", n=10_000, out="samples.npz")  # for jaxgan.evaluate
    """
    out = Path(out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise ValueError(f"--out must end in .png or .npz, got {out}")
    run = _as_run(run)
    method = methods.for_config(run.cfg)
    if label is not None and not method.conditional(run):
        raise ValueError(f"--label is for conditional runs; this {method.name} run has no classes")
    if interpolate is not None:
        if interpolate < 1 or points < 2:
            raise ValueError(f"--interpolate needs at least 1 strip of at least 2 --points, "
                             f"got {interpolate} strips of {points}")
        drawn = method.interpolate(run, interpolate, points, seed, label)
    else:
        drawn = method.sample(run, n, seed, label)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        arrays = {"x": drawn.x} if drawn.y is None else {"x": drawn.x, "y": np.asarray(drawn.y)}
        np.savez_compressed(out, **arrays)
    else:
        plots.save_samples(out, drawn.x, drawn.centres, title=method.title(run.cfg),
                           rows=drawn.rows)
    return out


def evaluate(source: Run | str | Path, *, dataset: str | None = None, n: int = 10_000,
             data_dir: str | None = None, seed: int = 0, progress: bool = True) -> dict:
    """What ``jaxgan eval`` does: scores a run's samples, or an ``.npz`` of samples from
    anywhere, with the dataset's evaluator classifier (FID, KID, classifier score, precision
    and recall, beside real-data and noise anchors; mixtures: PacGAN's mode metrics).

    ``source``: a `Run` or a run folder, whose method draws ``n`` samples (the K+1 GAN adds
    its D's test error); the result is also written to ``eval.json`` in the folder. Or an
    ``.npz`` with key ``x`` (N x H x W x C in [-1, 1], or N x 2 points; ``y``: labels), with
    ``dataset`` naming what they imitate. `jaxgan.scoring.format_table` prints the result.

    Example::

        result = jaxgan.evaluate("runs/mnist")
        theirs = jaxgan.evaluate("their_samples.npz", dataset="mnist")
        print(theirs["samples"]["fid"], theirs["real"]["fid"])
    """
    if not isinstance(source, Run) and (Path(source).suffix.lower() == ".npz" or (
            dataset is not None and not Path(source).is_dir())):
        if dataset is None:
            raise ValueError(f"scoring {source} needs the dataset its samples imitate "
                             "(dataset=..., --dataset)")
        return scoring.evaluate_samples(source, dataset, data_dir=data_dir, seed=seed,
                                        progress=progress)
    run = _as_run(source)
    if dataset is not None and dataset != run.cfg.dataset:
        raise ValueError(f"{run.run_dir} is a run on {run.cfg.dataset}, not {dataset}: leave "
                         "dataset out to score it on its own data")
    result = methods.for_config(run.cfg).evaluate(run, n, seed, data_dir, progress)
    result.update(run=str(run.run_dir), step=int(run.state.step))
    result.setdefault("n", n)
    (run.run_dir / "eval.json").write_text(json.dumps(result, indent=2))
    return result
