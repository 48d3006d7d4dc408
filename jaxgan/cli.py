"""``jaxgan train / sample``: the command line, its flags generated from the config fields."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

from jaxgan import configs

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _parse_bool(s: str) -> bool:
    try:
        return _BOOL[s.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}") from None


def add_config_flags(parser: argparse.ArgumentParser, defaults) -> None:
    """One ``--field-name`` flag per field of a config dataclass, typed from the class,
    defaulted from ``defaults`` (an instance, so experiment scripts and resumed runs show
    their own)."""
    types = configs.field_types(type(defaults))
    doc = _field_docs(type(defaults))
    if "objective" in doc:  # the names, not where the registry lives
        from jaxgan.objectives import OBJECTIVES

        doc["objective"] = "one of " + ", ".join(sorted(OBJECTIVES)) + "."
    for f in dataclasses.fields(defaults):
        t = types[f.name]
        value = getattr(defaults, f.name)
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=_parse_bool if t is bool else t,
            default=value,
            metavar=t.__name__.upper(),
            help=f"{doc.get(f.name, '')} (default: {value})",
        )


def _field_docs(cls) -> dict[str, str]:
    # The "Attributes:" section of the base class's docstring documents every field once.
    base = [c for c in cls.__mro__ if "Attributes:" in (c.__doc__ or "")]
    docs, current = {}, None
    for line in ((base[0].__doc__ if base else "") or "").splitlines():
        line = line.strip()
        if ":" in line and not line.startswith("Attributes"):
            names, _, text = line.partition(":")
            names = [n.strip() for n in names.split(",")]
            if all(n.isidentifier() for n in names):
                current = names
                for n in names:
                    docs[n] = text.strip()
                continue
        if current and line:
            for n in current:
                docs[n] += " " + line
    # Docstring markup (``name``, `ref`) reads as noise in a terminal.
    return {n: re.sub(r"`+([^`]+)`+", r"\1", text) for n, text in docs.items()}


CONFIG_HELP = (
    "--config {" + ",".join(configs.CONFIGS) + "} picks the paper setup whose defaults the "
    "flags start from; without it, --dataset decides: ring8/grid25 -> mixture, "
    "mnist/fashion_mnist -> lsgan_mnist, an image folder -> dcgan."
)


def run_config(
    defaults: configs.TrainConfig, argv: list[str], *, prog: str = "jaxgan train", epilog=None
) -> int:
    """Parses ``argv`` as overrides of ``defaults`` and trains: the CLI and experiment scripts."""
    cls = type(defaults)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Train a GAN. Defaults shown are those of {cls.__name__}: "
        + (cls.__doc__ or "").strip().splitlines()[0],
        epilog=epilog,
    )
    parser.add_argument("--out", help="output folder (default: runs/<dataset>-<objective>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(parser, defaults)
    args = parser.parse_args(argv)
    cfg = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
    out = args.out or f"runs/{Path(cfg.dataset).name}-{cfg.objective}"
    from jaxgan.train import train  # heavy imports only once the flags are valid

    print(f"jaxgan: training {cfg.objective} on {cfg.dataset} -> {out}", file=sys.stderr)
    train(cfg, out, resume=args.resume, progress=not args.no_progress)
    print(f"jaxgan: wrote {out}/samples.png, {out}/metrics.jsonl, {out}/loss_curve.png")
    return 0


def _train(argv: list[str]) -> int:
    # The config class depends on --config / --dataset (or the run being resumed), and the
    # flags' defaults on the class: parse those first, then the full flags for that class.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", choices=sorted(configs.CONFIGS))
    pre.add_argument("--dataset")
    pre.add_argument("--conditional")
    pre.add_argument("--resume", action="store_true")
    pre.add_argument("--out")
    known, rest = pre.parse_known_args(argv)
    rest += [a for a in ("--resume",) if known.resume]
    rest += ["--out", known.out] if known.out else []
    rest += ["--dataset", known.dataset] if known.dataset else []
    rest += ["--conditional", known.conditional] if known.conditional else []
    saved = Path(known.out or "", "config.json")
    if known.resume and known.out and saved.exists():
        defaults = configs.load_config(saved)  # a resumed run keeps its own settings
    else:
        conditional = known.conditional is not None and _parse_bool(known.conditional)
        name = known.config or configs.default_config_name(known.dataset or "ring8", conditional)
        defaults = configs.config_class(name)()
    return run_config(defaults, rest, epilog=CONFIG_HELP)


def _sample(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="jaxgan sample", description="Sample a trained run.")
    parser.add_argument("--checkpoint", required=True, help="a run folder (the --out of train)")
    parser.add_argument("-n", type=int, default=64, help="number of samples (default: 64)")
    parser.add_argument("--out", required=True, help="a .png grid, or .npz for raw samples (key x)")
    parser.add_argument("--seed", type=int, default=0)
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
    from jaxgan import sampling

    path = sampling.sample_command(
        args.checkpoint, n=args.n, out=args.out, seed=args.seed,
        interpolate=args.interpolate, points=args.points, label=args.label,
    )
    print(f"jaxgan: wrote {path}")


def _eval(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="jaxgan eval",
        description="Score a run's samples (or an .npz of samples from anywhere) with the "
        "dataset's evaluator classifier: FID, KID, classifier score, precision / recall, "
        "next to real-data and noise anchors; 2-D mixtures: PacGAN's mode metrics.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a run folder (the --out of train); writes eval.json there")
    src.add_argument("--samples", help="an .npz with key x (N x H x W x C in [-1, 1], or N x 2)")
    parser.add_argument("--dataset", help="with --samples: what they imitate (mnist, ring8, ...)")
    parser.add_argument("--data-dir", help="IDX files of the dataset (default: the run's)")
    parser.add_argument("-n", type=int, default=10_000, help="samples to draw (default: 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    from jaxgan import evaluate

    if args.samples:
        if not args.dataset:
            parser.error("--samples needs --dataset, the data the samples imitate")
        result = evaluate.evaluate_samples(args.samples, args.dataset, data_dir=args.data_dir, seed=args.seed)
    else:
        result = evaluate.evaluate_run(args.checkpoint, n=args.n, data_dir=args.data_dir, seed=args.seed)
    print(evaluate.format_table(result))
    if "evaluator_test_accuracy" in result:
        print(f"(evaluator test accuracy {result['evaluator_test_accuracy']:.4f}; n = {result['n']})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


def _compare(argv: list[str]) -> None:
    from jaxgan import compare
    from jaxgan.objectives import OBJECTIVES

    parser = argparse.ArgumentParser(
        prog="jaxgan compare",
        description=compare.__doc__.split("\n\n")[0],
        epilog="Objectives: " + ", ".join(sorted(OBJECTIVES)) + ". Switches: "
        + ", ".join(f"+{k} (= {v})" for k, v in compare.ALIASES.items())
        + ", or +FIELD[=VALUE] for any `jaxgan train` field.",
    )
    # --paper changes the defaults, not the flags given: --paper --steps 2000 runs 2,000.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--paper", action="store_true")
    pre.add_argument("--dataset", default=compare.CompareConfig.dataset)
    pre.add_argument("--data-dir")
    known, _ = pre.parse_known_args(argv)
    defaults = compare.CompareConfig(dataset=known.dataset)
    if known.paper:
        defaults = dataclasses.replace(
            defaults, **compare.paper_budget(known.dataset, known.data_dir))
    add_config_flags(parser, defaults)
    parser.add_argument("--out", help="output folder (default: runs/compare-<dataset>)")
    parser.add_argument(
        "--paper", action="store_true",
        help="the published networks and budget (mixtures: PacGAN's, 400k steps x 10 "
        "seeds, evaluated every 40k; for an accelerator: about 3 days on a 2-core CPU; "
        "images: the dataset's paper config for its own epochs, 3 seeds)",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override a field of the base training config for every objective "
        "(e.g. --set hidden=64); repeatable",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the comparison checkpointed in --out: an interrupted one, or a finished "
        "one to a larger --steps",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(compare.CompareConfig)}
    cc = compare.CompareConfig(**fields)
    base = compare.base_config(cc.dataset, cc.data_dir, paper=args.paper)
    base = compare.parse_entry("+".join([base.objective, *args.set]), base)
    out = args.out or f"runs/compare-{Path(cc.dataset).name}"
    compare.run_compare(
        cc, out, base=base, progress=not args.no_progress, command=compare.command_line(argv),
        resume=args.resume,
    )
    print(Path(out, "table.md").read_text())
    print(f"jaxgan: wrote {out}/table.md, table.csv, samples.png, loss_curves.png, per_seed.json")


COMMANDS = {"train": _train, "sample": _sample, "eval": _eval, "compare": _compare}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(
            "usage: jaxgan {" + ",".join(COMMANDS) + "} [--help] ...\n\n"
            "  train   train a GAN (jaxgan train --help for every flag)\n"
            "  sample  write samples of a trained run as a PNG grid or an .npz\n"
            "  eval    score a run or an .npz of samples (FID, KID, score, P/R; mode metrics)\n"
            "  compare train objectives x seeds side by side; a table and figures",
            file=sys.stderr,
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from jaxgan.data import DatasetError

    try:
        return COMMANDS[argv[0]](argv[1:]) or 0
    except (DatasetError, ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"jaxgan {argv[0]}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
