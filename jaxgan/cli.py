"""``jaxgan train / sample / eval / compare``: the command line.

The flags of ``train`` and ``compare`` are generated from the config dataclasses
(`jaxgan.flags`, with tyro): one ``--field-name`` per field, the Improved Techniques' too,
booleans as ``--flag`` / ``--no-flag``, help from the fields' documentation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Literal

import tyro

from jaxgan import (
    bench,
    checkpoint,
    comparison,
    configs,
    flags,
    health,
    loop,
    mesh,
    methods,
    runs,
    scoring,
)
from jaxgan.data import DatasetError
from jaxgan.objectives import OBJECTIVES


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """Options of a training command that are not config fields.

    Attributes:
      out: output folder (default: runs/<dataset>-<objective or method>).
      resume: continue the run in --out from its latest checkpoint.
      progress: show a progress bar.
      devices: devices to split each batch over (data parallel; default: all devices, or
        as many as the batch size is a multiple of). The results do not depend on it.
      distributed: join a multi-process run (jax.distributed.initialize); also when
        $JAX_COORDINATOR_ADDRESS is set. See the README's "Several devices and hosts".
      checkpoint_every: also save a checkpoint every this many steps (default: at each
        epoch's end and at the end only); a killed run loses at most this many steps.
      keep_checkpoints: how many of the latest checkpoints to keep.
      on_nonfinite: when a loss, gradient or parameter becomes NaN or infinite: raise (stop,
        naming the step, the network and the quantity; the last checkpoint is kept as it
        was) or skip (undo that step and go on; skips are counted in metrics.jsonl).
      max_skips: with --on-nonfinite skip, stop after this many steps in a row were undone.
      halt_on_collapse: stop (exit 3) when D wins outright or G's samples collapse, instead
        of warning.
      tensorboard: also write TensorBoard event files into --out (tensorboard --logdir runs/).
    """

    out: str | None = None
    resume: bool = False
    progress: bool = True
    devices: int | None = None
    distributed: bool = False
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    on_nonfinite: Literal["raise", "skip"] = "raise"
    max_skips: int = 10
    halt_on_collapse: bool = False
    tensorboard: bool = True


CONFIG_HELP = (
    "--config {" + ",".join(configs.CONFIGS) + "} picks the paper setup whose defaults the "
    "flags start from (glo_mnist: GLO, ssl_mnist: the semi-supervised K+1 GAN); without it, "
    "--dataset decides: ring8/grid25 -> mixture, mnist/fashion_mnist -> lsgan_mnist, an image "
    "folder -> dcgan. Objectives: " + ", ".join(sorted(OBJECTIVES)) + "."
)


def default_out(cfg) -> str:
    name = getattr(cfg, "objective", type(cfg).method)
    return f"runs/{Path(cfg.dataset).name}-{name}"


def run_config(defaults, argv: list[str], *, prog: str = "jaxgan train",
               description: str | None = None) -> int:
    """Parses ``argv`` as overrides of ``defaults`` (any method's config) and trains it: the
    CLI's ``train`` and the experiment scripts."""
    cls = type(defaults)
    # The config's own docstring heads its box of flags; this says what else can be chosen.
    cfg, opts = flags.parse(
        defaults, argv, prog=prog, extra=TrainOptions(),
        description=description or f"Train {cls.__name__} (method: {cls.method}). {CONFIG_HELP}")
    out = opts.out or default_out(cfg)
    mesh.initialize(opts.distributed)
    if mesh.is_primary():
        print(f"jaxgan: training {methods.for_config(cfg).title(cfg)} -> {out}",
              file=sys.stderr)
    if ("--epochs" in argv or any(a.startswith("--epochs=") for a in argv)) and not (
            "--steps" in argv or any(a.startswith("--steps=") for a in argv)):
        # An explicit --epochs wins over a default --steps (a mixture's config has one).
        cfg = configs.replace(cfg, steps=None)
    runs.train(cfg, out, resume=opts.resume, progress=opts.progress, devices=opts.devices,
               checkpoint_every=opts.checkpoint_every, keep_checkpoints=opts.keep_checkpoints,
               on_nonfinite=opts.on_nonfinite, max_skips=opts.max_skips,
               halt_on_collapse=opts.halt_on_collapse, tensorboard_events=opts.tensorboard)
    if not mesh.is_primary():
        return 0
    figure = "test_error.png" if type(cfg).method == "ssl" else "loss_curve.png"
    print(f"jaxgan: wrote {out}/samples.png, {out}/metrics.jsonl, {out}/{figure}")
    return 0


def train_defaults(argv: list[str]):
    """The config whose defaults ``jaxgan train``'s flags start from, and the rest of argv:
    ``--config``'s class, else the one ``--dataset`` (and ``--conditional``) imply, or the
    saved config of the run ``--resume`` continues."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", choices=sorted(configs.CONFIGS))
    pre.add_argument("--dataset")
    pre.add_argument("--conditional", nargs="?", const="true")
    pre.add_argument("--no-conditional", action="store_true")
    pre.add_argument("--resume", action="store_true")
    pre.add_argument("--out")
    known, _ = pre.parse_known_args(argv)
    # --config chooses the class and is no field of it: drop it (and its value) from argv.
    rest = [a for k, a in enumerate(argv)
            if not (a == "--config" or a.startswith("--config=")
                    or (k and argv[k - 1] == "--config"))]
    saved = Path(known.out or "", "config.json")
    if known.resume and known.out and saved.exists():
        return configs.load_config(saved), rest  # a resumed run keeps its own settings
    conditional = (known.conditional is not None and not known.no_conditional
                   and known.conditional.lower() in ("true", "1", "yes"))
    name = known.config or configs.default_config_name(known.dataset or "ring8", conditional)
    return configs.config_class(name)(), rest


def _train(argv: list[str]) -> int:
    defaults, rest = train_defaults(argv)
    return run_config(defaults, rest)


def _sample(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="jaxgan sample",
        description="Sample a trained run of any method: a GAN's G, a GLO run's generator from "
        "the Gaussian fitted to its latents, the K+1 GAN's G.")
    parser.add_argument("--checkpoint", required=True, help="a run folder (the --out of train)")
    parser.add_argument("-n", type=int, default=64, help="number of samples (default: 64)")
    parser.add_argument("--out", required=True, help="a .png grid, or .npz for raw samples (key x)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    parser.add_argument(
        "--interpolate",
        type=int,
        metavar="K",
        help="instead: K strips, each walking in a straight line between two random z",
    )
    parser.add_argument("--points", type=int, default=10, help="images per strip (default: 10)")
    parser.add_argument(
        "--label", type=int, help="conditional runs: samples of this class only (default: "
        "every class, one row each)"
    )
    args = parser.parse_args(argv)
    run = runs.load_run(args.checkpoint)
    path = runs.sample(
        run, n=args.n, out=args.out, seed=args.seed,
        interpolate=args.interpolate, points=args.points, label=args.label,
    )
    # Which state drew them: the latest intact checkpoint, not always the run's last step.
    print(f"jaxgan: wrote {path} (the run at step {int(run.state.step)})")


def _eval(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="jaxgan eval",
        description="Score a run's samples (or an .npz of samples from anywhere) with the "
        "dataset's evaluator classifier: FID, KID, classifier score, precision / recall, "
        "next to real-data and noise anchors; 2-D mixtures: PacGAN's mode metrics; a K+1 GAN "
        "run also reports its D's test error.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a run folder (the --out of train); writes eval.json there")
    src.add_argument("--samples", help="an .npz with key x (N x H x W x C in [-1, 1], or N x 2)")
    parser.add_argument("--dataset", help="with --samples: what they imitate (mnist, ring8, ...)")
    parser.add_argument("--data-dir", help="IDX files of the dataset (default: the run's)")
    parser.add_argument("-n", type=int, default=10_000, help="samples to draw (default: 10000)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.samples and not args.dataset:
        parser.error("--samples needs --dataset, the data the samples imitate")
    result = runs.evaluate(args.samples or args.checkpoint, dataset=args.dataset, n=args.n,
                           data_dir=args.data_dir, seed=args.seed)
    print(scoring.format_table(result))
    if "test_error" in result:
        print(f"test error of D: {100 * result['test_error']:.2f}% (moving average), "
              f"{100 * result['test_error_raw']:.2f}% (current)")
    if "evaluator_test_accuracy" in result:
        print(f"(evaluator test accuracy {result['evaluator_test_accuracy']:.4f}; n = {result['n']})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


@dataclasses.dataclass(frozen=True)
class CompareOptions:
    """Options of jaxgan compare that are not fields of the comparison.

    Attributes:
      out: output folder (default: runs/compare-<dataset>).
      paper: the published networks and budget (mixtures: PacGAN's, 400k steps x 10 seeds,
        evaluated every 40k; for an accelerator: about 3 days on a 2-core CPU; images: the
        dataset's paper config for its own epochs, 3 seeds). Flags given with it still apply.
      set: FIELD=VALUE, an override of the base training config for every objective (e.g.
        --set hidden=64); repeatable.
      resume: continue the comparison checkpointed in --out: an interrupted one, or a
        finished one to a larger --steps.
      progress: show a progress bar.
      devices: devices to split the seeds over (each device trains its own seeds; default:
        as many of the local devices as divide --seeds evenly).
      on_nonfinite: when a seed's loss, gradient or parameter becomes NaN or infinite: raise
        (stop, naming the objective's seed, step and quantity) or skip (that seed undoes
        the step; skips are counted per seed).
      max_skips: with --on-nonfinite skip, stop after this many steps in a row undone.
      tensorboard: also write TensorBoard event files, one folder per objective under
        --out/tensorboard, one curve per seed.
    """

    out: str | None = None
    paper: bool = False
    set: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    resume: bool = False
    progress: bool = True
    devices: int | None = None
    on_nonfinite: Literal["raise", "skip"] = "raise"
    max_skips: int = 10
    tensorboard: bool = True


def _compare(argv: list[str]) -> None:
    # --paper changes the defaults, not the flags given: --paper --steps 2000 runs 2,000.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--paper", action="store_true")
    pre.add_argument("--dataset", default=comparison.CompareConfig.dataset)
    pre.add_argument("--data-dir")
    known, _ = pre.parse_known_args(argv)
    defaults = comparison.CompareConfig(dataset=known.dataset)
    if known.paper:
        defaults = dataclasses.replace(
            defaults, **comparison.paper_budget(known.dataset, known.data_dir))
    description = (
        comparison.__doc__.split("\n\n")[0] + " Objectives: " + ", ".join(sorted(OBJECTIVES))
        + ". Switches: " + ", ".join(f"+{k} (= {v})" for k, v in comparison.ALIASES.items())
        + ", or +FIELD[=VALUE] for any `jaxgan train` field."
    )
    cc, opts = flags.parse(defaults, argv, prog="jaxgan compare", description=description,
                           extra=CompareOptions())
    out = comparison.compare(
        cc, opts.out, overrides=opts.set, paper=opts.paper, progress=opts.progress,
        command=comparison.command_line(argv), resume=opts.resume, devices=opts.devices,
        on_nonfinite=opts.on_nonfinite, max_skips=opts.max_skips,
        tensorboard_events=opts.tensorboard,
    )["out"]
    print(Path(out, "table.md").read_text())
    print(f"jaxgan: wrote {out}/table.md, table.csv, samples.png, loss_curves.png, per_seed.json")


def _bench(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="jaxgan bench", description=bench.__doc__.split("\n\n")[0],
        epilog="Configurations: " + "; ".join(f"{c.name}: {c.what}" for c in bench.CASES.values()))
    parser.add_argument("--which", default=",".join(bench.CASES),
                        help="comma-separated configurations (default: all)")
    parser.add_argument("--windows", type=int, default=5,
                        help="timed windows per configuration; steps/s is their median "
                        "(default: 5)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="length of each window (default: 1.0)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per configuration instead of the table")
    parser.add_argument("--vs-torch", metavar="PYTHON",
                        help="also time the PyTorch reference of each configuration that has "
                        f"one ({', '.join(c.name for c in bench.CASES.values() if c.torch)}) with PYTHON, a python with torch "
                        "installed, alternating with jaxgan's windows, and print the ratio "
                        "(needs a source checkout: the references are in benchmarks/)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="with --vs-torch: alternating jaxgan / PyTorch runs at least "
                        "(default: 3)")
    parser.add_argument("--scaling", action="store_true",
                        help="instead: time the DCGAN step at --resolutions x --batches "
                        "(beside PyTorch's with --vs-torch) and compare's vmapped step at "
                        "--seeds, and draw --figure")
    parser.add_argument("--resolutions", default="32,64,128",
                        help="with --scaling (default: 32,64,128)")
    parser.add_argument("--batches", default="32,64,128,256",
                        help="with --scaling (default: 32,64,128,256)")
    parser.add_argument("--seeds", default="1,2,4,8,16", help="with --scaling (default: "
                        "1,2,4,8,16)")
    parser.add_argument("--figure", default="docs/bench_scaling.png",
                        help="with --scaling: the log-log figure (default: "
                        "docs/bench_scaling.png)")
    args = parser.parse_args(argv)
    if args.scaling:
        def ints(text):
            return tuple(int(v) for v in text.split(",") if v)

        bench.scaling(resolutions=ints(args.resolutions), batches=ints(args.batches),
                      seeds=ints(args.seeds), seconds=args.seconds, figure=args.figure,
                      torch_python=args.vs_torch, repeats=args.repeats, as_json=args.json)
        return
    bench.run([n for n in args.which.split(",") if n], windows=args.windows,
              seconds=args.seconds, as_json=args.json, torch_python=args.vs_torch,
              repeats=args.repeats)


COMMANDS = {"train": _train, "sample": _sample, "eval": _eval, "compare": _compare,
            "bench": _bench}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"jaxgan {checkpoint.jaxgan_version()}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(
            "usage: jaxgan {" + ",".join(COMMANDS) + "} [--help] ...  |  jaxgan --version\n\n"
            "  train   train a GAN, GLO or the K+1 GAN (jaxgan train --help for every flag)\n"
            "  sample  write samples of a trained run as a PNG grid or an .npz\n"
            "  eval    score a run or an .npz of samples (FID, KID, score, P/R; mode metrics)\n"
            "  compare train objectives x seeds side by side; a table and figures\n"
            "  bench   how fast each main configuration's train step runs here",
            file=sys.stderr,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    warnings.formatwarning = _format_warning
    try:
        return COMMANDS[argv[0]](argv[1:]) or 0
    except BaseException as e:  # noqa: BLE001 - every failure gets its message and code
        code, message = failure(e)
        if code is None:
            raise
        print(f"jaxgan {argv[0]}: {message}", file=sys.stderr)
        return code


def _format_warning(message, category, filename, lineno, line=None) -> str:
    # One line a user reads, not the source line that warned.
    kind = "" if category is UserWarning else f" ({category.__name__})"
    return f"jaxgan: warning{kind}: {message}\n"


# What each kind of failure tells the user, and the exit code: 2 for what the user can fix
# in the command or its inputs (as argparse's usage errors), 3 for a run that diverged,
# 1 for the machine (disk full, no permission), 128 + N for a run stopped by signal N (as
# a shell reports it). Anything else is a bug: its traceback is shown (code None).
EXIT_CODES = {"input": 2, "diverged": 3, "system": 1}


def failure(e: BaseException) -> tuple[int | None, str]:
    """The exit code and message of a failure (``(None, "")``: re-raise, a bug)."""
    if isinstance(e, loop.Interrupted):
        return 128 + e.signum, str(e)
    if isinstance(e, KeyboardInterrupt):  # a second Ctrl-C: nothing was saved after it
        return 128 + signal.SIGINT, "interrupted (nothing saved since the last checkpoint)"
    if isinstance(e, (loop.NonFiniteError, health.Collapsed)):
        return EXIT_CODES["diverged"], f"error: {e}"
    if isinstance(e, (DatasetError, ValueError, FileNotFoundError, FileExistsError)):
        return EXIT_CODES["input"], f"error: {e}"
    if isinstance(e, OSError):  # a full disk, a read-only or missing folder
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return EXIT_CODES["system"], f"error: {e.strerror or e}{where}"
    return None, ""

if __name__ == "__main__":
    sys.exit(main())
