"""Time to quality: the FID that LSGAN on MNIST reaches in a wall-clock budget, jaxgan beside
PyTorch.

    python benchmarks/quality.py [--seconds 600] [--samples 10000] [--data-dir PATH/TO/mnist]
                                 [--torch PYTHON] [--out DIR] [--json]

Steps per second (`jaxgan bench --vs-torch`) say how fast a step runs on
random data; what a user waits for is a generator that draws digits. This script trains
jaxgan's ``lsgan_mnist`` config (``jaxgan train --config lsgan_mnist``) for ``--seconds`` of
wall clock on real MNIST, then, with ``--torch PYTHON`` (a venv with torch), the same model in
PyTorch (`benchmarks/torch_lsgan_train.py`: same IDX file, scaling, batch, Adam settings, a-b-c
coding, initialisation, as its docstring lists) for the same budget, one after the other. Both
write ``--samples`` samples as an ``.npz`` and both are scored by the one function that
``jaxgan eval --samples x.npz --dataset mnist`` runs (`jaxgan.scoring.evaluate_samples`: FID on
the features of jaxgan's evaluator classifier, against as many training images). The floor
beside them is the project's anchor computed the same way: real test images against training
images, at the same number of samples.

What is timed: the budget counts training steps only (one D and one G update each; the clock
stops at the first step that ends past it, and the seconds actually spent are reported).
Reading the data, building the networks and, for jaxgan, compiling the step are "startup",
reported apart; importing the framework is in neither (the PyTorch script reports its import
time as ``import_s``). jaxgan trains through its own pieces (`jaxgan.methods`: the config's
data pipeline, state and jitted step, compiled ahead of time) in a loop that keeps one step
in flight, so the clock sees only finished work, and that checks the metrics for non-finite
values as ``jaxgan train``'s loop does. Quote the two rows of one run side by side, never an
absolute number from another day: the machine is shared.

Data: ``--data-dir``, else ``$JAXGAN_DATA_DIR``, else ``../shared/data/mnist`` beside the
repository (there, a partial training split of 22,699 images; the table says so).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from jaxgan import configs, loop, losses, mesh, methods, objectives, runs, scoring
from jaxgan.data import idx
from jaxgan.methods.base import Run

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "mnist"
TORCH_SCRIPT = HERE / "torch_lsgan_train.py"


def data_directory(given: str | None) -> Path:
    """``--data-dir``, else ``$JAXGAN_DATA_DIR``, else ``../shared/data/mnist``."""
    return Path(given or os.environ.get("JAXGAN_DATA_DIR") or DEFAULT_DATA).expanduser()


def lsgan_coding(cfg) -> tuple[float, float, float]:
    """LSGAN's ``(a, b, c)`` as the config's step uses them (label smoothing folded into b).

    Raises ValueError for a config the PyTorch reference does not implement.
    """
    objective, n_critic, _ = objectives.resolve(cfg)
    d_loss, g_loss = objective.d_loss, objective.g_loss
    if (getattr(d_loss, "func", None) is not losses.lsgan_d_loss
            or getattr(g_loss, "func", None) is not losses.lsgan_g_loss):
        raise ValueError(f"the PyTorch reference trains the LSGAN objectives, not {cfg.objective}")
    unsupported = {"arch": cfg.arch != "lsgan_mnist", "conditional": cfg.conditional,
                   "n_critic": n_critic != 1, "z_dist": cfg.z_dist != "normal",
                   "techniques": bool(set(cfg.techniques.names) - {"ls"})}
    if any(unsupported.values()):
        raise ValueError("the PyTorch reference is lsgan_mnist's unconditional pair, one D "
                         "update a step, normal noise, no techniques; this config differs in "
                         + ", ".join(k for k, v in unsupported.items() if v))
    return d_loss.keywords["a"], d_loss.keywords["b"], g_loss.keywords["c"]


def torch_flags(cfg) -> list[str]:
    """The PyTorch script's flags for what ``cfg`` trains: batch, latent size, Adam, seed and
    the a-b-c coding."""
    a, b, c = lsgan_coding(cfg)
    return ["--batch", str(cfg.batch_size), "--z-dim", str(cfg.z_dim),
            "--g-lr", repr(cfg.g_lr), "--d-lr", repr(cfg.d_lr),
            "--beta1", repr(cfg.beta1), "--beta2", repr(cfg.beta2), "--seed", str(cfg.seed),
            "--a", repr(a), "--b", repr(b), "--c", repr(c)]


def train_jaxgan(cfg, seconds: float) -> tuple[Run, dict]:
    """Trains ``cfg`` for ``seconds`` of wall clock through the method's own data, state and
    step; returns the run (not written to disk) and what was timed."""
    method = methods.for_config(cfg)
    t = time.perf_counter()
    data = method.load_data(cfg)
    described = method.describe(cfg, data)
    nets, state = method.init(cfg, described, data)
    step_fn, per_step = method.make_step(cfg, nets)
    place = mesh.placement(1)
    state = place.put_state(state)
    batches = map(place.put_batch, method.batches(cfg, nets, data, per_step, int(state.step),
                                                  mesh.process_shard()))
    batch = next(batches)
    t_compile = time.perf_counter()
    # Compiled ahead of time, so that no step runs outside the budget (the program a run's
    # jitted step builds on one device, with its compiler options; the state still donated).
    step = place.jit(step_fn, like=state).lower(state, batch).compile()
    compile_s = time.perf_counter() - t_compile
    jax.block_until_ready(state)
    startup_s = time.perf_counter() - t

    window, done = [], 0
    t = time.perf_counter()
    deadline = t + seconds
    while True:
        state, metrics = step(state, batch)
        done += 1
        batch = next(batches)  # read while the step runs
        # One step in flight: waiting for the previous one lets the host run ahead by a
        # step, not by a queue of steps the clock has not seen finish.
        if window:
            jax.block_until_ready(window[-1])
        window.append(metrics)
        if len(window) > cfg.log_every:  # as the loop does: stop on a non-finite metric
            loop.summarise(window[:cfg.log_every], done, 0.0)
            del window[:cfg.log_every]
        if time.perf_counter() >= deadline:
            break
    jax.block_until_ready((state, window))
    train_s = time.perf_counter() - t
    record = loop.summarise(window, done, train_s)
    del batches  # Grain's read-ahead threads go with the iterator, before PyTorch's turn
    result = {
        "framework": "jaxgan", "steps": done, "train_s": train_s, "steps_per_s": done / train_s,
        "startup_s": startup_s, "compile_s": compile_s, "d_loss": record["d_loss"],
        "g_loss": record["g_loss"], "jax": jax.__version__, "backend": jax.default_backend(),
        "devices": jax.device_count(), "data": data.description,
    }
    return Run(cfg, nets, state, Path("."), described), result


def train_torch(python: str, cfg, seconds: float, samples: int, out: Path) -> dict:
    """Runs `torch_lsgan_train.py` with ``python`` on the config's IDX file and settings."""
    files = idx.find_idx_files(str(cfg.data_dir), cfg.dataset, "train")
    if files is None:
        raise FileNotFoundError(f"no {cfg.dataset} training IDX files in {cfg.data_dir}")
    command = [python, str(TORCH_SCRIPT), "--images", files[0], "--seconds", repr(seconds),
               "--samples", str(samples), "--out", str(out), *torch_flags(cfg)]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict], floor: float, n: int) -> str:
    """The markdown table: one row per framework, then the evaluator's floor."""
    lines = [f"| framework | steps in budget | train s | steps/s | startup s | FID (n={n:,}) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r["framework"] == "jaxgan":
            name = f"jaxgan (jax {r['jax']}, {r['backend']})"
            startup = f"{r['startup_s']:.1f} (compile {r['compile_s']:.1f})"
        else:
            name = f"PyTorch {r['torch']} ({r['threads']} threads)"
            startup = f"{r['startup_s']:.1f} (+ import {r['import_s']:.1f})"
        lines.append(f"| {name} | {r['steps']:,} | {r['train_s']:.1f} | {r['steps_per_s']:.2f} "
                     f"| {startup} | {r['fid']:.2f} |")
    lines.append(f"| real test images vs training images (floor) | | | | | {floor:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0,
                   help="training budget of each framework, wall clock (default: 600)")
    p.add_argument("--samples", type=int, default=10_000,
                   help="samples scored per framework, and training images they are compared "
                   "with (default: 10000, jaxgan eval's)")
    p.add_argument("--data-dir", help="MNIST IDX files (default: $JAXGAN_DATA_DIR, else "
                   "../shared/data/mnist beside the repository)")
    p.add_argument("--torch", metavar="PYTHON",
                   help="python of a venv with torch: also train the PyTorch reference")
    p.add_argument("--out", help="keep the samples here (jaxgan.npz, torch.npz) for "
                   "`jaxgan eval --samples`; default: a temporary folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object, not a table")
    a = p.parse_args(argv)
    if a.seconds <= 0 or a.samples < 2:
        p.error("--seconds must be positive and --samples at least 2 (FID needs a covariance)")
    data_dir = data_directory(a.data_dir)
    cfg = configs.LSGANMnistConfig(data_dir=str(data_dir), seed=a.seed)
    coding = lsgan_coding(cfg)  # refuses a config PyTorch's side lacks, before any training

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"jaxgan: training lsgan_mnist for {a.seconds:g} s", file=sys.stderr, flush=True)
        run, ours = train_jaxgan(cfg, a.seconds)
        ours["samples"] = str(runs.sample(run, n=a.samples, out=out / "jaxgan.npz", seed=a.seed))
        del run  # its buffers, before PyTorch's turn
        rows = [ours]
        if a.torch:
            print(f"torch: training the same model for {a.seconds:g} s", file=sys.stderr,
                  flush=True)
            rows.append(train_torch(a.torch, cfg, a.seconds, a.samples, out / "torch.npz"))
        print("scoring the samples with jaxgan's evaluator", file=sys.stderr, flush=True)
        floor = None
        for r in rows:
            scores = scoring.evaluate_samples(r["samples"], cfg.dataset, data_dir=str(data_dir),
                                               seed=a.seed, progress=False)
            r.update(fid=scores["samples"]["fid"], scores=scores["samples"], n=scores["n"])
            floor = scores["real"]["fid"]  # the same for every row: same n, same seed
        if not a.out:
            for r in rows:
                r.pop("samples")

    result = {"budget_s": a.seconds, "samples": a.samples, "seed": a.seed,
              "config": json.loads(cfg.to_json()), "data": ours["data"],
              "real_test_fid": floor, "results": rows}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"LSGAN on {ours['data']}; {a.seconds:g} s of training each: lsgan_mnist, "
              f"batch {cfg.batch_size}, Adam {cfg.g_lr:g} / beta1 {cfg.beta1:g}, "
              f"a b c = {' '.join(f'{v:g}' for v in coding)}; FID by jaxgan's evaluator\n")
        print(table(rows, floor, a.samples))
    return result


if __name__ == "__main__":
    main()
