"""DiffAugment: Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training", arXiv:2006.10738. A 64 px DCGAN on a folder of a few hundred images, trained with
and without DiffAugment (color, translation, cutout) for the same budget.

The folder is the first ``--images`` MNIST training digits written as 64 px PNGs (what a user
with a few hundred photos of their own has); each arm is a `jaxgan train` run on it, and is
scored by the project's MNIST evaluator (samples reduced to 28 px grey): FID and precision /
recall against the MNIST training set, the full distribution the few images come from, as the
paper scores its 10%-of-the-data runs. D's accuracy on the training images at the end shows
the memorisation DiffAugment is for.

Command:
    python experiments/diffaugment_few_images.py --data-dir ../shared/data/mnist \\
        --out runs/diffaug --docs docs
Expected: without DiffAugment D separates the few real images from G's almost perfectly
and G's samples degrade or repeat; with it D stays uncertain and the FID is lower.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import jax
import numpy as np
from PIL import Image

from jaxgan import flags, runs, scoring
from jaxgan.configs import DCGANConfig
from jaxgan.data import load_dataset

# The paper's setting for small data is DiffAugment's full policy; width 32 (DCGAN's 64
# halved) keeps a CPU run to minutes: the comparison is between the arms, not with the paper.
CONFIG = DCGANConfig(objective="nsgan", resolution=64, width=32, batch_size=64, steps=1500,
                     log_every=50, num_samples=64)
POLICY = "color,translation,cutout"


@dataclasses.dataclass(frozen=True)
class Options:
    """Options of this experiment that are not training config fields.

    Attributes:
      out: folder for the image folder, both runs and the results.
      images: how many MNIST training digits the folder holds.
      samples: samples scored for each arm.
      docs: also write the figure here (e.g. docs).
      progress: show progress bars.
    """

    out: str = "runs/diffaug"
    images: int = 500
    samples: int = 5_000
    docs: str | None = None
    progress: bool = True


def write_folder(folder: Path, data_dir: str | None, n: int) -> Path:
    """The first ``n`` MNIST training digits as 64 px greyscale PNGs (once)."""
    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    x, _ = load_dataset("mnist", data_dir=data_dir).arrays()
    for i, img in enumerate(x[:n]):
        pixels = np.round((img[..., 0] + 1) * 127.5).astype(np.uint8)
        Image.fromarray(pixels, "L").resize((64, 64), Image.BICUBIC).save(folder / f"{i:04d}.png")
    return folder


def as_mnist(x: np.ndarray) -> np.ndarray:
    """64 px samples (any channels) as the evaluator's 28 px grey digits."""
    grey = x.mean(axis=-1, keepdims=True)
    return np.asarray(jax.image.resize(grey, (len(x), 28, 28, 1), "linear", antialias=True))


def last_record(run_dir: Path) -> dict:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()
               if '"d_loss"' in line]
    return records[-1]


def main(argv: list[str]) -> int:
    cfg, opts = flags.parse(CONFIG, argv, prog="diffaugment_few_images.py",
                            description=__doc__.splitlines()[0], extra=Options())
    out = Path(opts.out)
    folder = write_folder(out / f"mnist{opts.images}_64px", cfg.data_dir, opts.images)
    results = {}
    for name, policy in (("plain", ""), ("diffaug", POLICY)):
        arm = dataclasses.replace(cfg, dataset=str(folder), data_dir=None,
                                  stabilisers=dataclasses.replace(cfg.stabilisers,
                                                                  diffaug=policy))
        run_dir = out / name
        if not (run_dir / "config.json").exists():
            runs.train(arm, run_dir, progress=opts.progress)
        else:
            runs.train(arm, run_dir, resume=True, progress=opts.progress)
        path = runs.sample(run_dir, n=opts.samples, out=run_dir / "scored.npz")
        with np.load(path) as f:
            x = f["x"]
        scores = scoring.score_images(as_mnist(x), "mnist", cfg.data_dir, progress=opts.progress)
        record = last_record(run_dir)
        results[name] = {"fid": scores["samples"]["fid"],
                         "precision": scores["samples"]["precision"],
                         "recall": scores["samples"]["recall"],
                         "d_acc_real": record["d_acc_real"], "d_acc_fake": record["d_acc_fake"],
                         "steps": record["step"], "real_fid": scores["real"]["fid"]}
        runs.sample(run_dir, n=64, out=run_dir / "grid.png")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    lines = ["| DiffAugment | FID | precision | recall | D's accuracy, real / fake (last "
             f"{cfg.log_every} steps) |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {'off' if name == 'plain' else POLICY} | {r['fid']:.1f} | "
                     f"{r['precision']:.3f} | {r['recall']:.3f} | {r['d_acc_real']:.2f} / "
                     f"{r['d_acc_fake']:.2f} |")
    print("\n".join(lines))
    print(f"(real MNIST test images score FID {results['plain']['real_fid']:.1f}; "
          f"{results['plain']['steps']} steps of batch {cfg.batch_size} on {opts.images} images)")
    if opts.docs:
        figure(out, results, Path(opts.docs) / f"diffaug_mnist{opts.images}.png")
    return 0


def figure(out: Path, results: dict, path: Path) -> None:
    """Both arms' sample grids side by side, titled with their FIDs."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    for ax, name in zip(axes, results):
        ax.imshow(Image.open(out / name / "grid.png").convert("RGB"))
        label = "without DiffAugment" if name == "plain" else "with DiffAugment"
        ax.set_title(f"{label}: FID {results[name]['fid']:.1f}")
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
