"""Semi-supervised MNIST with the K+1-class GAN and feature matching: Salimans et al. 2016,
"Improved Techniques for Training GANs", arXiv:1606.03498, Sec. 5 and Table 1, with the
official permutation-invariant networks and settings (openai/improved-gan,
``train_mnist_feature_matching.py``; see `jaxgan.methods.ssl`). One seed is also
``jaxgan train --config ssl_mnist``.

Command:
    python experiments/improved_gan_ssl_mnist.py --data-dir ../shared/data/mnist \\
        --labels 100 --seeds 0 1 2 --epochs 300 --out runs/ssl-100
Expected (the paper, full 60,000 training images, 300 epochs, 10 labelled subsets): test
errors out of 10,000 of 1677 +- 452 (20 labels), 221 +- 136 (50), 93 +- 6.5 (100, i.e.
0.93%), 90 +- 4.2 (200). Each seed picks its own balanced labelled subset (and
initialisation); the summary is the mean +- std over seeds of the last epoch's test error,
measured, as the official code does, with the moving average of D's parameters.

Writes per seed ``OUT/seed<S>/`` (a run: metrics.jsonl with the per-epoch test error,
test_error.png, samples.png, checkpoints/), and ``OUT/summary.json`` and
``OUT/test_error.png`` (every seed's curve). Every field of `jaxgan.configs.SSLConfig` is a flag.
"""

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from jaxgan import flags, plots, runs
from jaxgan.configs import SSLConfig

CONFIG = SSLConfig()


@dataclasses.dataclass(frozen=True)
class Options:
    """Runs of the script.

    Attributes:
      seeds: several labelled subsets (each also seeds its run); default: --seed.
      out: output folder (default: runs/ssl-mnist-<labels>).
      progress: show a progress bar.
    """

    seeds: Annotated[tuple[int, ...], tyro.conf.arg(metavar="SEED ...")] = ()
    out: str | None = None
    progress: bool = True
PAPER = {20: (1677, 452), 50: (221, 136), 100: (93, 6.5), 200: (90, 4.2)}


def summarise(results: dict[int, list[dict]], labels: int) -> dict:
    final = {s: h[-1] for s, h in results.items() if h}
    errs = np.array([r["test_error"] for r in final.values()])
    raw = np.array([r["test_error_raw"] for r in final.values()])
    out = {
        "labels": labels,
        "seeds": sorted(final),
        "final": {str(s): r for s, r in final.items()},
        "test_error_mean": float(errs.mean()),
        "test_error_std": float(errs.std(ddof=1)) if len(errs) > 1 else 0.0,
        "test_error_raw_mean": float(raw.mean()),
        "curves": {str(s): h for s, h in results.items()},
    }
    if labels in PAPER:
        out["paper_errors_out_of_10000"] = PAPER[labels]
    return out


def save_curves(path: Path, results: dict[int, list[dict]], title: str) -> None:
    """Every seed's test error (averaged D) against the epoch."""
    rows: dict[int, dict] = {}
    for s, h in results.items():
        for r in h:
            rows.setdefault(r["epoch"], {"epoch": r["epoch"]})[f"seed{s}"] = r["test_error"]
    plots.save_curves(path, [rows[e] for e in sorted(rows)],
                      [("", [(f"seed{s}", f"seed {s}") for s in sorted(results)])], title=title,
                      x="epoch", log=True, scale=100, ylabel="test error (%), averaged D")


def main(argv: list[str]) -> int:
    cfg, opts = flags.parse(CONFIG, argv, prog="improved_gan_ssl_mnist.py",
                            description=__doc__.split("\n\n")[0], extra=Options())
    out = Path(opts.out or f"runs/ssl-mnist-{cfg.labels}")
    seeds = list(opts.seeds) or [cfg.seed]
    results = {}
    for s in seeds:
        run_cfg = dataclasses.replace(cfg, seed=s, label_seed=s if opts.seeds else cfg.label_seed)
        print(f"improved_gan_ssl_mnist: {cfg.labels} labels, seed {s} -> {out / f'seed{s}'}",
              file=sys.stderr)
        run = runs.train(run_cfg, out / f"seed{s}", progress=opts.progress)
        results[s] = [r for r in plots.read_metrics(run.run_dir / "metrics.jsonl")
                      if "test_error" in r]
    summary = summarise(results, cfg.labels)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    m, sd = summary["test_error_mean"], summary["test_error_std"]
    spread = f" +- {100 * sd:.2f}% (std over {len(seeds)} labelled subsets)" if len(seeds) > 1 else "%"
    save_curves(out / "test_error.png", results,
                f"K+1 GAN, {cfg.labels} labels: final test error {100 * m:.2f}{spread}")
    print(f"{cfg.labels} labels, {len(seeds)} seed(s): test error {100 * m:.2f}{spread} "
          f"({10_000 * m:.0f} +- {10_000 * sd:.0f} of 10,000)")
    if cfg.labels in PAPER:
        print(f"paper: {PAPER[cfg.labels][0]} +- {PAPER[cfg.labels][1]} of 10,000 "
              "(60,000 training images, 300 epochs, 10 subsets)")
    print(f"wrote {out / 'summary.json'}, {out / 'test_error.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
