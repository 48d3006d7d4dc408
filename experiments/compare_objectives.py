"""The README's comparison of objectives: ring8 and grid25 with PacGAN's protocol (modes
covered, high-quality fraction, reverse KL; mean +- standard error over seeds), beside PacGAN's
published Table 1 (Lin et al. 2018, arXiv:1712.04086), and MNIST with the evaluator's FID,
precision and recall. Every row is `jaxgan compare` (same networks, data, initialisations,
noise and budget; seeds vmapped).

Command (hours on a 2-core CPU: ~2 h for each mixture per 35,000 steps x 10 seeds, ~25 min for
MNIST at 2 epochs; each README block ends with the exact command that made it):
    python experiments/compare_objectives.py --data-dir ../shared/data/mnist --out runs/compare \\
        --readme README.md --docs docs
Parts: ``--only ring8,grid25,mnist``; budget: ``--steps`` (mixtures), ``--seeds``,
``--mnist-epochs``, ``--mnist-seeds``. ``--reuse`` reads a part already run into ``OUT``
(its ``per_seed.json``, with the same budget) instead of training it again, and draws its
``metrics_by_step.png`` anew from it, so the parts can be run one at a time and the README
regenerated from all of them. ``--resume`` continues the
parts checkpointed in ``OUT`` (every evaluation saves one): an interrupted run, or a finished
one extended to a larger ``--steps``.

Writes ``OUT/<dataset>/`` (a `jaxgan compare` report each, with ``metrics_by_step.png``: the
metrics every tenth of the budget, to see that they have stopped moving) and
``OUT/results.md`` (the blocks of every part in ``OUT``, each also in ``OUT/<part>/block.md``);
``--readme`` replaces, for each part run, the README's block between
``<!-- compare_objectives:PART:begin -->`` and ``<!-- compare_objectives:PART:end -->`` (the
other parts' blocks stay as they are), ``--docs`` copies the figures there.
"""

import argparse
import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

from jaxgan import comparison
from jaxgan.configs import DCGANConfig, MixtureConfig

MIXTURE_OBJECTIVES = "gan,nsgan,lsgan"
MNIST_OBJECTIVES = "gan,nsgan,lsgan,hinge,wgan-gp"
# PacGAN Table 1 (modes, high-quality %, reverse KL), their GAN and PacGAN4 rows: 10 trials,
# their networks and budget (`--config pacgan_mixture`: 400,000 steps of batch 100), on a GPU.
PACGAN = {
    "ring8": [("GAN (PacGAN Table 1)", "6.3 +- 0.5", "98.2", "0.45"),
              ("PacGAN4 (PacGAN Table 1)", "7.8 +- 0.1", "95.9", "0.07")],
    "grid25": [("GAN (PacGAN Table 1)", "17.3 +- 0.8", "94.8", "0.70"),
               ("PacGAN4 (PacGAN Table 1)", "24.8 +- 0.2", "93.6", "0.04")],
}
# MNIST: DCGAN's 28-px pair at half width (32), so that 5 objectives x 3 seeds take minutes
# rather than hours on a CPU; the DCGAN paper's Adam 2e-4 / 0.5, batch 64.
MNIST_BASE = DCGANConfig(dataset="mnist", width=32, batch_size=64)
MODE_KEYS = ("modes_covered", "high_quality", "reverse_kl")
MNIST_KEYS = ("fid", "precision", "recall", "score")  # the columns of the MNIST table
METRIC_NAMES = {"modes_covered": "modes covered", "high_quality": "high quality",
                "reverse_kl": "reverse KL", "fid": "FID", "score": "classifier score"}
PARTS = ("ring8", "grid25", "mnist")


def metric_name(key: str) -> str:
    """A metric's name as the tables print it."""
    return METRIC_NAMES.get(key, key.replace("_", " "))


def markers(part: str) -> tuple[str, str]:
    """The README markers around ``part``'s block."""
    return f"<!-- compare_objectives:{part}:begin -->", f"<!-- compare_objectives:{part}:end -->"


def replace_block(readme: str, part: str, text: str) -> str:
    begin, end = markers(part)
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + text + end + tail


def part_command(part: str, args: argparse.Namespace) -> str:
    """The command that regenerates ``part``'s README block (the data folder as a placeholder:
    it is the reader's own)."""
    words = ["python experiments/compare_objectives.py --only", part]
    if part == "mnist":
        if args.data_dir:
            words.append("--data-dir PATH/TO/mnist")
        words.append(f"--mnist-epochs {args.mnist_epochs:g} --mnist-seeds {args.mnist_seeds}")
    else:
        words.append(f"--steps {args.steps} --seeds {args.seeds}")
    words += [f"--set {s}" for s in args.set]
    return " ".join(words + ["--readme README.md --docs docs"])


def mixture_section(dataset: str, results: dict) -> list[str]:
    _, rows = comparison.summary_rows(results)
    cc = results["config"]
    lines = [
        f"**{dataset}**, {cc['steps']:,} steps, {cc['seeds']} seeds (LSGAN's mixture networks); "
        f"PacGAN's rows are theirs.", "",
        "| objective | modes covered | high quality % | reverse KL | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        (m, m_se), (hq, hq_se), (kl, kl_se) = (r[k] for k in MODE_KEYS)
        lines.append(f"| {r['objective']} | {m:.1f} +- {m_se:.1f} | {100 * hq:.1f} +- "
                     f"{100 * hq_se:.1f} | {kl:.2f} +- {kl_se:.2f} | {r['seconds']:.0f} |")
    for name, m, hq, kl in PACGAN[dataset]:
        lines.append(f"| {name} | {m} | {hq} | {kl} | |")
    return lines + drift_lines(results, MODE_KEYS)


def drift_lines(results: dict, keys: tuple[str, ...]) -> list[str]:
    """One sentence on whether the budget was long enough: for each objective, the largest
    change of any of the table's metrics ``keys`` over (about) the last third of training, in
    standard errors of the per-seed changes, and which objectives were still moving (beyond
    two). Only the table's metrics: the evaluator also reports e.g. KID's own standard
    deviation, an error bar rather than a quality, whose drift says nothing of the budget."""
    moved = comparison.drift(results)
    if not moved:
        return []
    evals = next(iter(results["runs"].values()))["evals"]
    i, j = comparison.drift_pair(evals)
    largest = {}  # objective -> (ratio, metric, change)
    for entry, per in moved.items():
        changes = [(abs(c) / se if se else (0.0 if c == 0 else math.inf), k, c)
                   for k, (c, se) in per.items() if k in keys and math.isfinite(c)]
        if changes:
            largest[entry] = max(changes)
    if not largest:
        return []

    def said(entry, ratio, key, change):
        shown = f"{100 * change:+.1f} points" if key == "high_quality" else f"{change:+.3g}"
        # Every seed moving by the same nonzero amount (modes covered, 7 -> 8) has no spread.
        size = f"{ratio:.1f}" if math.isfinite(ratio) else "every seed changed by as much"
        return f"{entry}'s {metric_name(key)} {shown} ({size})"

    moving = [entry for entry, (ratio, _, _) in largest.items() if ratio > 2]
    verdict = (f"still moving for {_and(moving)}" if moving
               else "every metric had stopped moving")
    a, b = evals[i]["step"], evals[j]["step"]
    return ["", f"From step {a:,} to {b:,}, the last {100 * (b - a) / b:.0f}% of training, the "
            "largest change of a seed mean, in standard errors of the per-seed changes: "
            + ", ".join(said(e, *largest[e]) for e in largest)
            + f". Within about two, a metric has stopped moving: {verdict}."]


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def mnist_section(results: dict) -> list[str]:
    _, rows = comparison.summary_rows(results)
    cc = results["config"]
    lines = [
        f"**MNIST**, {cc['steps']:,} steps (batch {MNIST_BASE.batch_size}), {cc['seeds']} seeds, "
        f"DCGAN 28 px at width {MNIST_BASE.width} (wgan-gp's critic with layer norm in place of "
        "batch norm, as Gulrajani et al. 2017 Sec. 4; 5 critic steps a G step); 10,000 "
        "samples against 10,000 training images.",
        "",
        "| objective | " + " | ".join(metric_name(k) for k in MNIST_KEYS) + " | seconds |",
        "|---" * (len(MNIST_KEYS) + 2) + "|",
    ]
    for r in rows:
        cells = [f"{r[k][0]:.3g} +- {r[k][1]:.2g}" for k in MNIST_KEYS]
        lines.append(f"| {r['objective']} | " + " | ".join(cells) + f" | {r['seconds']:.0f} |")
    return lines + drift_lines(results, MNIST_KEYS)


def reused(run_dir: Path, cc: comparison.CompareConfig) -> dict | None:
    """The results of a part already run into ``run_dir`` with the budget ``cc``, or None."""
    path = run_dir / "per_seed.json"
    if not path.exists():
        return None
    runs = json.loads(path.read_text())
    config = runs.pop("config")
    if config != dataclasses.asdict(cc):
        print(f"{path}: run with {config}, not {dataclasses.asdict(cc)}; running it again",
              flush=True)
        return None
    print(f"reusing {path}", flush=True)
    return {"config": config, "runs": runs}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="compare_objectives.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--only", default="ring8,grid25,mnist")
    p.add_argument("--steps", type=int, default=10_000, help="mixture steps (default: 10000)")
    p.add_argument("--seeds", type=int, default=10, help="mixture seeds (default: 10)")
    p.add_argument("--data-dir", help="MNIST IDX folder (default: TFDS)")
    p.add_argument("--mnist-epochs", type=float, default=3)
    p.add_argument("--mnist-seeds", type=int, default=3)
    p.add_argument("--readme", help="README to update between the compare_objectives markers")
    p.add_argument("--docs", help="folder to copy the sample figures into (for the README)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a training config field in every part (e.g. hidden=64)")
    p.add_argument("--reuse", action="store_true",
                   help="read parts already run into --out with the same budget, not rerun them")
    p.add_argument("--resume", action="store_true",
                   help="continue the parts checkpointed in --out (interrupted, or to more steps)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    parts = [s for s in args.only.split(",") if s]
    bad = set(parts) - set(PARTS)
    if bad:
        p.error(f"unknown parts {sorted(bad)}; choose from {', '.join(PARTS)}")
    if args.readme:  # before hours of training, not after
        readme = Path(args.readme).read_text()
        missing = [m for part in parts for m in markers(part) if m not in readme]
        if missing:
            p.error(f"{args.readme} lacks the markers {missing}: add each part's begin / end "
                    "pair where its results should go")
    out = Path(args.out)
    command = "python experiments/compare_objectives.py " + " ".join(argv)
    blocks = {}
    for part in parts:
        run_dir = out / part
        if part == "mnist":
            train_images = 22_699 if args.data_dir else 60_000  # the shared partial split
            steps = round(args.mnist_epochs * train_images / MNIST_BASE.batch_size)
            cc = comparison.CompareConfig(objectives=MNIST_OBJECTIVES, dataset="mnist",
                                          data_dir=args.data_dir, seeds=args.mnist_seeds,
                                          steps=steps, eval_every=steps // 2)
            base = dataclasses.replace(MNIST_BASE, data_dir=args.data_dir)
        else:
            cc = comparison.CompareConfig(objectives=MIXTURE_OBJECTIVES, dataset=part,
                                          seeds=args.seeds, steps=args.steps,
                                          eval_every=max(args.steps // 10, 1))
            base = MixtureConfig(dataset=part)
        base = comparison.parse_entry("+".join([base.objective, *args.set]), base)
        results = reused(run_dir, cc) if args.reuse else None
        if results is not None and comparison.drift(results):
            # Drawn again from the saved metrics, so that the figure follows the plotting code.
            comparison.metrics_figure(results, comparison.summary_rows(results)[0],
                                      run_dir / "metrics_by_step.png")
        if results is None:
            results = comparison.compare(cc, run_dir, base=base, progress=not args.no_progress,
                                        command=command, resume=args.resume)
        lines = mnist_section(results) if part == "mnist" else mixture_section(part, results)
        if args.docs:
            Path(args.docs).mkdir(parents=True, exist_ok=True)
            shutil.copy(run_dir / "samples.png", Path(args.docs) / f"compare_{part}.png")
            lines += ["", f"![{part}: seed 0 of each objective](docs/compare_{part}.png)"]
            # The course of every metric, to read the drift sentence with.
            if (run_dir / "metrics_by_step.png").exists():
                shutil.copy(run_dir / "metrics_by_step.png",
                            Path(args.docs) / f"compare_{part}_by_step.png")
                lines += ["", f"![{part}: each metric against the step, seed mean +- standard "
                          f"error and each seed](docs/compare_{part}_by_step.png)"]
        minutes = sum(run["seconds"] for run in results["runs"].values()) / 60
        lines += ["", f"Regenerate with `{part_command(part, args)}` ({minutes:.0f} min of "
                  "training on the 2-core CPU these figures come from)."]
        blocks[part] = "\n".join(lines) + "\n"
        (run_dir / "block.md").write_text(blocks[part])
        print(blocks[part], flush=True)
    # Every part in OUT, not only this invocation's: parts are often run one at a time.
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(
        (out / part / "block.md").read_text() for part in PARTS
        if (out / part / "block.md").exists()))
    if args.readme:
        readme = Path(args.readme).read_text()
        for part, text in blocks.items():
            readme = replace_block(readme, part, text)
        Path(args.readme).write_text(readme)
    print(f"wrote {out / 'results.md'}" + (f" and {args.readme}" if args.readme else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
