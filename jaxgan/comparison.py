"""Objectives side by side: the same networks, data, initialisations, noise, optimiser and
budget for every objective, several seeds each, reported as mean +- standard error.

The seeds of one objective train together: the train step is ``jax.vmap``-ed over a leading
seed axis of the state, so S runs are one compiled program and one dispatch per step. Except
for convolutional networks on a CPU (`seeds_vmapped`): there, S seeds step one after the
other through one compiled single-seed step. On several devices the seed axis is split over a
``seed`` mesh axis (`jaxgan.mesh.seed_placement`), each device training its own seeds. Seed
``s`` of every objective starts from the same initial networks (the config seed is the only
thing that differs between seeds; the objective is what differs between rows).

An entry of the objective list is a registry name with optional config overrides joined by
``+``: ``nsgan+conditional``, ``lsgan-pearson``, ``nsgan+label_smoothing=0.9``. Short aliases
for the Improved Techniques switches are in ``ALIASES``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import shlex
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.ticker import EngFormatter

from jaxgan import configs, guard, health, loop, mesh, plots, tensorboard, xla_cpu
from jaxgan.checkpoint import Checkpointer, CheckpointError
from jaxgan.data import load_dataset, mixtures
from jaxgan.methods.gan import generate, score_samples
from jaxgan.nets.build import MLP_ARCHS
from jaxgan.noise import sample_z
from jaxgan.objectives import get_objective
from jaxgan.progress import bar as progress_bar
from jaxgan.state import init_state
from jaxgan.step import make_sampler, make_step

# Short names for switches, so a list reads "nsgan+fm,nsgan+mbd,hinge+sn+ema". Values are the
# papers' usual ones: EMA decay 0.999 (Karras et al. 2018), R1 gamma 10 (Mescheder et al.
# 2018's choice on images), DiffAugment's full policy (Zhao et al. 2020).
ALIASES = {
    "cond": "conditional",
    "fm": "feature_matching",
    "mbd": "minibatch_disc",
    "ha": "historical_avg",
    "ls": "label_smoothing=0.9",
    "sn": "spectral_norm",
    "ema": "g_ema=0.999",
    "r1": "r1=10",
    "r2": "r2=10",
    "diffaug": "diffaug=color/translation/cutout",
    "proj": "cond_d=projection",
    "acgan": "cond_d=acgan",
}

# Methods of jaxgan that are not a G/D objective, so not an entry: what to run instead.
ELSEWHERE = {
    name: "GLO has no discriminator and needs a finite dataset (a latent per example): train "
    "it with `jaxgan train --config glo_mnist` and score it with `jaxgan eval --checkpoint "
    "RUN`, or run `python experiments/glo_mnist.py`"
    for name in ("glo", "lap1")
} | {
    name: "the semi-supervised K+1 GAN trains a classifier from few labels and is judged by "
    "its test error: train it with `jaxgan train --config ssl_mnist` (its test error is in "
    "metrics.jsonl; `jaxgan eval --checkpoint RUN`), or run "
    "`python experiments/improved_gan_ssl_mnist.py`"
    for name in ("ssl", "semi-supervised")
}

MIXTURE_EVAL_SAMPLES = 2_500  # PacGAN's protocol
IMAGE_EVAL_SAMPLES = 10_000


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What ``jaxgan compare`` runs. The defaults are PacGAN's ring8 protocol (gan, nsgan,
    lsgan), on LSGAN's mixture networks, at a budget that finishes in minutes on a laptop CPU;
    ``--paper`` selects PacGAN's networks and budget (`base_config`, `paper_budget`).

    Attributes:
      objectives: comma-separated entries, each an objective with optional +switches (listed
        below), e.g. gan,nsgan+fm,lsgan-pearson.
      dataset: ring8, grid25, mnist or fashion_mnist.
      data_dir: IDX files for mnist / fashion_mnist.
      seeds: runs per objective (seeds 0..S-1), trained together by vmap.
      steps: train steps per run (one G update each).
      eval_every: steps between evaluations of every run (0: only at the end).
      log_every: steps between loss records.

    Example::

        cc = jaxgan.CompareConfig(objectives="gan,nsgan+fm,lsgan", dataset="grid25", seeds=5)
        jaxgan.compare(cc, "runs/grid25")
    """

    objectives: str = "gan,nsgan,lsgan"
    dataset: str = "ring8"
    data_dir: str | None = None
    seeds: int = 3
    steps: int = 3_000
    eval_every: int = 0
    log_every: int = 100


def paper_budget(dataset: str, data_dir: str | None = None) -> dict:
    """The published protocol's budget, evaluated every tenth of it to show whether it
    converged. Mixtures: PacGAN's (400 epochs of 100,000 samples at batch 100, 10 trials).
    Images: no paper compares objectives on them, so each run gets the dataset's paper setup's
    own epochs (`base_config`: LSGAN's 30 on MNIST), at 3 seeds."""
    if dataset in configs.MIXTURES:
        steps = configs.PacGANMixtureConfig.steps
        return {"steps": steps, "seeds": 10, "eval_every": steps // 10}
    cfg = base_config(dataset, data_dir, paper=True)
    steps = cfg.epochs * load_dataset(dataset, data_dir=data_dir).steps_per_epoch(cfg.batch_size)
    return {"steps": steps, "seeds": 3, "eval_every": max(steps // 10, 1)}


def base_config(dataset: str, data_dir: str | None = None, *,
                paper: bool = False) -> configs.TrainConfig:
    """The training config every entry starts from: the dataset's paper setup (mixtures:
    LSGAN's networks), or with ``paper`` PacGAN's mixture networks, whose Table 1 the mixture
    protocol comes from."""
    name = configs.default_config_name(dataset)
    if paper and dataset in configs.MIXTURES:
        name = "pacgan_mixture"
    return configs.config_class(name)(dataset=dataset, data_dir=data_dir)


def parse_entry(entry: str, base: configs.TrainConfig) -> configs.TrainConfig:
    """``"nsgan+fm+label_smoothing=0.8"`` -> the base config with those fields set."""
    name, *mods = entry.strip().split("+")
    if name in ELSEWHERE:
        raise ValueError(f"{entry!r}: {ELSEWHERE[name]}")
    get_objective(name)  # an unknown name lists the valid ones
    types = configs.field_types(type(base))
    overrides: dict = {"objective": name}
    for mod in mods:
        mod = ALIASES.get(mod, mod)
        key, _, value = mod.partition("=")
        if key not in types:
            raise ValueError(
                f"{entry!r}: unknown switch {key!r}; use a config field "
                f"({', '.join(sorted(types))}) or an alias ({', '.join(ALIASES)})"
            )
        t = types[key]
        if not value:
            if t is not bool:
                raise ValueError(f"{entry!r}: {key} needs a value, e.g. +{key}=...")
            overrides[key] = True
        else:
            overrides[key] = (value.lower() in ("1", "true", "yes")) if t is bool else t(value)
    return configs.replace(base, **overrides)


def stack(trees):
    """Stacks pytrees along a new leading (seed) axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error over seeds (PacGAN's reporting)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


class _SeedBatches:
    """Per-seed batches for the vmapped step: a (S, B, ...) stack each step.

    Mixtures draw seed s's batch from its own stream on the device (as a single run with seed
    s would); image datasets give every seed the same batch (the seeds still differ in
    initialisation and noise), read once through the Grain pipeline.
    """

    def __init__(self, data, batch_size: int, seeds: int, start: int = 0):
        self.data, self.seeds, self.batch_size = data, seeds, batch_size
        if data.is_mixture:
            keys = jnp.stack([jax.random.key(s) for s in range(seeds)])
            centres, std = jnp.asarray(data.centres), float(data.std)

            @jax.jit
            def draw(step):
                def one(key):
                    x, y = mixtures.sample_mixture(jax.random.fold_in(key, step), batch_size, centres,
                                                   std)
                    return {"x": x, "y": y}

                return jax.vmap(one)(keys)

            self._draw, self._step = draw, start
        else:
            self._it = data.batches(batch_size, seed=0, start_step=start)

    def __next__(self):
        if self.data.is_mixture:
            batch = self._draw(self._step)
            self._step += 1
            return batch
        b = next(self._it)
        return {k: np.broadcast_to(b[k], (self.seeds, *b[k].shape)) for k in ("x", "y")}


def seeds_vmapped(cfg: configs.TrainConfig) -> bool:
    """Whether the seeds of a run step as one vmapped program (else one after the other).

    vmap turns a convolution whose weights differ per seed into a grouped convolution, which
    XLA's CPU backend runs far slower than separate ones: one DCGAN-32 step at batch 64 took
    1,836 ms vmapped over 3 seeds against 3 x 152 ms one seed at a time on the 2-core CPU
    this was written on. MLPs (the mixtures' networks, the cGAN MLPs) batch well, and so do
    convolutions on GPU and TPU.
    """
    return cfg.arch in MLP_ARCHS or jax.default_backend() != "cpu"


def train_seeds(cfg: configs.TrainConfig, data, seeds: int, steps: int, *, log_every: int,
                eval_every: int, evaluate, bar=None, checkpoint: Checkpointer | None = None,
                devices: int | None = None, on_nonfinite: str = "raise", max_skips: int = 10,
                label: str = "", board: tensorboard.Board | None = None):
    """Trains seeds ``0..seeds-1`` of one config together, through the one host loop
    (`jaxgan.loop.run`: the same logging, non-finite stop and checkpoint cadence as a run).

    On several devices the stacked seed axis is split over a ``seed`` mesh axis
    (`jaxgan.mesh.seed_placement`: as many of ``devices`` as divide ``seeds``): each device
    trains its own seeds with no communication, and the seeds are vmapped whatever the
    networks (one seed per device is no grouped convolution).

    With a ``checkpoint``, the stacked state, the records so far and the time spent are saved
    at every evaluation, and a run found there is continued from its latest save (to a larger
    ``steps`` too): the data stream and the noise are indexed by the step, so the continued
    run is the uninterrupted one.

    ``on_nonfinite``, ``max_skips``: as for a run (`jaxgan.runs.train`), seed by seed: under
    "raise" the first seed that diverges stops the comparison, naming it; under "skip" each
    seed undoes its own bad steps. GAN health warnings (`jaxgan.health`) name ``label``;
    ``board`` receives the records and evaluations, one curve per seed.

    Returns:
      ``(stacked final state, networks, loss records, evaluation records, seconds)``.
    """
    built = [init_state(configs.replace(cfg, seed=s), data.example_shape, data.num_classes)
             for s in range(seeds)]
    nets = built[0][0]
    config = json.loads(cfg.to_json())  # what a checkpoint records, and a resume must match
    start, losses, evals, before, pending = 0, [], [], 0.0, None
    place = mesh.seed_placement(seeds, devices)
    vmapped = place.size > 1 or seeds_vmapped(cfg)
    stacked = stack([s for _, s in built])
    if vmapped:  # placed before a restore: a checkpoint is read onto this mesh
        stacked = place.put_state(stacked)
    restored = None
    if checkpoint is not None and checkpoint.latest_step() is not None:
        try:
            restored, meta = checkpoint.restore(stacked)
        except CheckpointError as e:  # another seed count stacks other shapes
            raise ValueError(
                f"{checkpoint.directory} holds a run of another config or seed count ({e}); "
                "continue it with the settings it was run with, or choose another --out"
            ) from None
        now = configs.flat_dict(cfg) | {"seeds": seeds}
        then = configs.flat_dict(configs.from_dict(meta["config"])) | {"seeds": meta["seeds"]}
        differ = configs.differences(then, now)
        if differ:
            raise ValueError(
                f"{checkpoint.directory} holds a run of another config or seed count "
                f"(saved, now: {differ}); continue it with the settings it was run with, "
                "or choose another --out"
            )
        if meta["step"] > steps:
            raise ValueError(f"{checkpoint.directory} is at step {meta['step']}, past "
                             f"--steps {steps}: pass --steps {meta['step']} or more")
        start, losses, evals, before = meta["step"], meta["losses"], meta["evals"], meta["seconds"]
        pending = meta.get("window")
    raw, n_critic = make_step(cfg, nets, jit=False)
    raw = guard.guarded(raw, on_nonfinite)  # per seed: vmapped, each seed is checked alone
    put = jax.device_put
    if vmapped:
        state = stacked if restored is None else restored
        step, put = place.jit(jax.vmap(raw), like=built[0][1]), place.put_batch
        as_stack = None  # the state is the stack already
    else:
        # A list of per-seed states, stacked only to evaluate, save and return.
        state = ([s for _, s in built] if restored is None
                 else [_unstack(restored, i) for i in range(seeds)])
        one = xla_cpu.jit_step(raw, built[0][1])
        as_stack = stack

        def step(states, batch):
            out = [one(s, _unstack(batch, i)) for i, s in enumerate(states)]
            return [o[0] for o in out], stack([o[1] for o in out])

    interval = eval_every or steps
    t0 = time.perf_counter()
    seconds = before

    def on_epoch(state, epoch):
        nonlocal seconds
        done = min(epoch * interval, steps)
        stacked = as_stack(state) if as_stack else state
        evals.append({"step": done, "metrics": evaluate(nets, stacked, cfg)})
        if board is not None:
            per_seed = evals[-1]["metrics"]
            board.record({"step": done, **{f"eval/{k}": [m[k] for m in per_seed]
                                           for k in scalar_keys(per_seed[0])}})
        # Up to the last evaluation, which is what a checkpoint records: a finished run
        # read back reports the same seconds as the run did.
        seconds = before + time.perf_counter() - t0

    if bar is not None:
        bar.update(start)
    # Warnings only: a comparison runs each entry to its end, a failed one included.
    monitor = health.Monitor(label=label)
    state = loop.run(
        state, step, _SeedBatches(data, cfg.batch_size * n_critic, seeds, start=start),
        start=start, total_steps=steps, steps_per_epoch=interval, checkpointer=checkpoint,
        on_epoch=on_epoch, log_every=log_every,
        # Wall-clock time restarts with a resumed loop; the per-seed losses are what compare.
        on_record=lambda r: (monitor(r), board is not None and board.record(r),
                             losses.append({k: v for k, v in r.items() if k != "time"})),
        meta=lambda done: {"config": config, "seeds": seeds, "step": done, "losses": losses,
                           "evals": evals, "seconds": seconds},
        pending=pending, max_skips=max_skips if on_nonfinite == "skip" else None,
        export=as_stack, skip_late_boundary=True, bar=bar, progress=bar is not None, put=put,
    )
    return (as_stack(state) if as_stack else state), nets, losses, evals, seconds


def _folder_name(entry: str) -> str:
    """A file-system name for an entry (``lsgan+label_smoothing=0.9`` keeps its characters)."""
    return re.sub(r"[^\w.+=-]", "_", entry.strip())


def _unstack(state, i):
    return jax.tree.map(lambda x: x[i], state)


def make_evaluator(dataset: str, data_dir: str | None):
    """``evaluate(nets, stacked_state, cfg) -> [metrics of seed 0, seed 1, ...]``."""
    n = MIXTURE_EVAL_SAMPLES if dataset in configs.MIXTURES else IMAGE_EVAL_SAMPLES

    def run(nets, state, cfg):
        seeds = jax.tree.leaves(state.step)[0].shape[0]
        out = []
        for i in range(seeds):
            # The same evaluation noise for every objective and seed.
            x, y = generate(nets, _unstack(state, i), n, seed=99_991, z_dist=cfg.z_dist)
            out.append(score_samples(x, y, cfg))
        return out

    return run


def compare(cc: CompareConfig | None = None, out: str | Path | None = None, *,
            base: configs.TrainConfig | None = None, overrides: tuple[str, ...] = (),
            paper: bool = False, progress: bool = True, command: str | None = None,
            resume: bool = False, devices: int | None = None, on_nonfinite: str = "raise",
            max_skips: int = 10, tensorboard_events: bool = True) -> dict:
    """Trains every objective of ``cc`` for every seed on the same data, networks,
    initialisations and budget; writes ``table.md``, ``table.csv``, the figures,
    ``per_seed.json`` and TensorBoard events to ``out``, and returns the raw results (with
    ``results["out"]``, the folder written). What ``jaxgan compare`` does.

    Example::

        import jaxgan
        cc = jaxgan.CompareConfig(objectives="nsgan,lsgan,my_losses:hinge2", seeds=3,
                                  steps=3000)
        results = jaxgan.compare(cc, "runs/mine")
        print(open("runs/mine/table.md").read())

    Args:
      cc: the objectives, dataset, seeds and budget (default: `CompareConfig()`, PacGAN's
        ring8 protocol at a laptop budget; ``CompareConfig(**paper_budget(dataset))`` is
        the published budget). An entry is a registered name or an import path
        (``module:attribute``), with optional ``+switches``.
      out: the report folder (default: ``runs/compare-<dataset>``).
      base: the training config every entry starts from (default: `base_config`).
      overrides: ``FIELD=VALUE`` changes to ``base`` for every entry (``--set``).
      paper: with ``base`` unset, PacGAN's mixture networks instead of LSGAN's.
      devices: how many devices the seeds are split over (`train_seeds`; default: as
        many of the local devices as divide ``cc.seeds``); the table does not depend on it.
      resume: each objective's seeds are checkpointed under ``out/checkpoints/`` at every
        evaluation; ``resume`` continues from there: an interrupted comparison, or a finished
        one extended to a larger ``steps`` (objectives already at ``steps`` are read, not
        trained).
      on_nonfinite, max_skips: what a NaN or infinity in a seed does (`jaxgan.guard`).
      tensorboard_events: also write ``out/tensorboard/<entry>/``, one curve per seed.
    """
    cc = cc or CompareConfig()
    out = Path(out or f"runs/compare-{Path(cc.dataset).name}")
    base = base or base_config(cc.dataset, cc.data_dir, paper=paper)
    if overrides:
        base = parse_entry("+".join([base.objective, *overrides]), base)
    entries = [e for e in cc.objectives.split(",") if e.strip()]
    cfgs = [parse_entry(e, base) for e in entries]  # all errors before any training
    if cc.seeds < 1 or cc.steps < 1:
        raise ValueError("--seeds and --steps must be at least 1")
    if (out / "config.json").exists():
        raise FileExistsError(f"{out} holds a training run (jaxgan train), not a comparison: "
                              "choose another --out")
    if (out / "checkpoints").exists() and not resume:
        raise FileExistsError(
            f"{out} holds the checkpoints of an earlier comparison: pass --resume to continue "
            "it (to a larger --steps too), or choose another --out"
        )
    data = load_dataset(cc.dataset, data_dir=cc.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    evaluate = make_evaluator(cc.dataset, cc.data_dir)
    results = {"config": dataclasses.asdict(cc), "base": json.loads(base.to_json()), "runs": {}}
    samples = {}
    with progress_bar(total=len(cfgs) * cc.steps, enabled=progress) as bar:
        for entry, cfg in zip(entries, cfgs):
            bar.set_description(f"{entry} x{cc.seeds} seeds")
            checkpoint = Checkpointer(out / "checkpoints" / _folder_name(entry))
            board = tensorboard.Board(
                out / "tensorboard" / _folder_name(entry), enabled=tensorboard_events,
                resumed_at=checkpoint.latest_step())
            try:
                state, nets, losses, evals, seconds = train_seeds(
                    cfg, data, cc.seeds, cc.steps, log_every=cc.log_every,
                    eval_every=cc.eval_every, evaluate=evaluate, bar=bar,
                    checkpoint=checkpoint, devices=devices, on_nonfinite=on_nonfinite,
                    max_skips=max_skips, label=entry, board=board)
            finally:
                board.close()
            z = sample_z(jax.random.PRNGKey(7), (MIXTURE_EVAL_SAMPLES if data.is_mixture else 64, nets.z_dim), cfg.z_dist)
            y = (np.arange(len(z)) % nets.num_classes) if nets.conditional else None
            samples[entry] = np.asarray(make_sampler(nets)(_unstack(state, 0), z, y))
            results["runs"][entry] = {"seconds": seconds, "losses": losses, "evals": evals}
    write_report(results, samples, out, data, command)
    return {**results, "out": str(out)}


def scalar_keys(metrics: dict) -> list[str]:
    """The metrics reported as one number (per-class lists and histograms are not)."""
    return [k for k, v in metrics.items() if not isinstance(v, (list, np.ndarray))]


def summary_rows(results: dict) -> tuple[list[str], list[dict]]:
    """One row per objective: each final metric as mean +- standard error over seeds."""
    rows, keys = [], None
    for entry, run in results["runs"].items():
        final = run["evals"][-1]["metrics"]
        keys = keys or scalar_keys(final[0])
        row = {"objective": entry, "seconds": run["seconds"]}
        for k in keys:
            row[k] = mean_se([m[k] for m in final])
        rows.append(row)
    return keys or [], rows


def drift_pair(evals: list[dict]) -> tuple[int, int] | None:
    """Indices of the two evaluations `drift` compares: the last one and the latest one at
    most two thirds of the way through the run. Over the last interval alone a metric that
    still climbs slowly hides in the seeds' noise (ring8's high-quality fraction rose from 7%
    to 18% over the last 3,000 of 10,000 steps while each 1,000-step change stayed within
    1.4 standard errors); over the last third it does not."""
    if len(evals) < 2:
        return None
    last = evals[-1]["step"]
    earlier = [i for i, e in enumerate(evals[:-1]) if e["step"] <= 2 * last / 3]
    return (earlier[-1], len(evals) - 1) if earlier else None


def drift(results: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """How much each metric's seed mean still moved over the last third of training, with
    the standard error of that change: ``{objective: {metric: (change, se)}}``. The runs are
    paired (seed s at both steps), so the error is that of the per-seed changes, which seed
    to seed variation of the level does not inflate. At a budget where the metrics "have
    stopped moving" the changes are within about two standard errors. Empty without
    intermediate evaluations (``eval_every``)."""
    out = {}
    for entry, run in results["runs"].items():
        pair = drift_pair(run["evals"])
        if pair is None:
            continue
        prev, last = (run["evals"][i]["metrics"] for i in pair)
        out[entry] = {
            k: mean_se([b[k] - a[k] for a, b in zip(prev, last)]) for k in scalar_keys(last[0])
        }
    return out


def write_report(results: dict, samples: dict, out: Path, data, command: str | None) -> None:
    keys, rows = summary_rows(results)
    cc = results["config"]
    seeds = cc["seeds"]
    lines = [
        f"Objectives on {data.description}; {cc['steps']} steps, {seeds} seeds each; "
        "mean +- standard error over seeds.",
        "",
        "| objective | " + " | ".join(keys) + " | seconds |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for r in rows:
        cells = [f"{r[k][0]:.3g} +- {r[k][1]:.2g}" for k in keys]
        lines.append(f"| {r['objective']} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
    moved = drift(results)
    if moved:
        first = next(iter(results["runs"].values()))["evals"]
        i, j = drift_pair(first)
        lines += ["", f"Change of each metric from step {first[i]['step']} to step "
                  f"{first[j]['step']}, mean over seeds +- its standard error "
                  "(metrics_by_step.png shows the whole course):", "",
                  "| objective | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for entry, per in moved.items():
            lines.append(f"| {entry} | " + " | ".join(
                f"{per[k][0]:+.3g} (se {per[k][1]:.2g})" for k in keys) + " |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    with open(out / "table.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["objective", *(h for k in keys for h in (k, f"{k}_se")), "seconds"])
        for r in rows:
            w.writerow([r["objective"], *(v for k in keys for v in r[k]), f"{r['seconds']:.1f}"])
    (out / "per_seed.json").write_text(json.dumps(results["runs"] | {"config": cc}, indent=1))
    (out / "command.txt").write_text((command or "jaxgan compare") + "\n")
    _figure(samples, out / "samples.png", data, rows, keys)
    _loss_figure(results, out / "loss_curves.png")
    if moved:
        metrics_figure(results, keys, out / "metrics_by_step.png")


def _figure(samples: dict, path: Path, data, rows, keys) -> None:
    n = len(samples)
    fig, axes = plots.plt.subplots(1, n, figsize=(3.4 * n, 3.6), dpi=110, squeeze=False)
    for ax, (entry, x), row in zip(axes[0], samples.items(), rows):
        label = entry + "".join(
            f"\n{k} {row[k][0]:.3g}" for k in keys[:2]
        )
        if x.ndim == 2:
            plots.save_scatter(None, x, data.centres, title=label, ax=ax)
        else:
            grid = plots.image_grid(x, rows=8)
            ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray")
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    fig.suptitle("seed 0 of each objective, same noise; numbers: mean over seeds", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path)
    plots.plt.close(fig)


def _loss_figure(results: dict, path: Path) -> None:
    """D and G loss of every entry against the step, each the mean over its seeds."""
    rows: dict[int, dict] = {}
    for entry, run in results["runs"].items():
        for r in run["losses"]:
            row = rows.setdefault(r["step"], {"step": r["step"]})
            row[f"{entry}/d_loss"] = float(np.mean(r["d_loss"]))
            row[f"{entry}/g_loss"] = float(np.mean(r["g_loss"]))
    entries = list(results["runs"])
    plots.save_curves(path, [rows[k] for k in sorted(rows)], [
        ("D loss (mean over seeds)", [(f"{e}/d_loss", e) for e in entries]),
        ("G loss (mean over seeds)", [(f"{e}/g_loss", e) for e in entries])])


def metrics_figure(results: dict, keys: list[str], path: Path) -> None:
    """Each metric against training steps: seed mean +- standard error per objective, and
    each seed as a thin line (seeds can converge at different steps, which a mean smooths
    into a slow climb)."""
    keys = [k for k in keys if k != "kid_std"]
    fig, axes = plots.plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 3.0), dpi=110,
                             squeeze=False)
    for entry, run in results["runs"].items():
        steps = [e["step"] for e in run["evals"]]
        for ax, k in zip(axes[0], keys):
            per_seed = np.array([[s[k] for s in e["metrics"]] for e in run["evals"]])
            m, se = np.array([mean_se(row) for row in per_seed]).T
            (line,) = ax.plot(steps, m, marker="o", ms=2, label=entry)
            ax.fill_between(steps, m - se, m + se, color=line.get_color(), alpha=0.2)
            ax.plot(steps, per_seed, color=line.get_color(), lw=0.5, alpha=0.3)
    for ax, k in zip(axes[0], keys):
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step")
        # "80k" rather than "80000": six-digit step labels run into each other.
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plots.plt.close(fig)


def command_line(argv: list[str]) -> str:
    return "jaxgan compare " + " ".join(shlex.quote(a) for a in argv) if argv else "jaxgan compare"

