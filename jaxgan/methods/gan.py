"""The GAN variants as a method: every objective, network, conditioning and technique of a
`jaxgan.configs.TrainConfig`, trained by the one step of `jaxgan.step`.

After each epoch a run draws a figure from fixed noise (a grid of images, one row per class
for a conditional model; a scatter over the real centres for 2-D data) and, every
``eval_every`` epochs, scores its samples (`jaxgan.scoring`: PacGAN's mode metrics on the
mixtures, FID / KID / score / precision / recall on images).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jax
import numpy as np

from jaxgan import noise, plots, scoring
from jaxgan.configs import MIXTURES, TrainConfig
from jaxgan.data import Dataset, load_dataset, mixtures
from jaxgan.functional import chunked
from jaxgan.methods.base import Method, Run, Samples
from jaxgan.state import GANState, Networks, init_state
from jaxgan.step import check_labels, make_sampler, make_step

MIXTURE_SAMPLES = 2_500  # PacGAN's protocol scores 2,500 samples of a 2-D mixture
# Evaluations during training use fewer samples than the final 10,000 (FID is biased upwards
# at small n, so compare numbers at equal n only).
EPOCH_EVAL_SAMPLES = 5_000


def fixed_noise(cfg: TrainConfig, nets: Networks, n: int):
    """The noise (and labels) every figure of a run is drawn from, so figures compare.

    A conditional model's figure has one row per class: labels ``0 0 .. 1 1 ..``.
    """
    z = noise.figure_noise(cfg.seed, n, nets.z_dim, cfg.z_dist)
    return z, (noise.class_rows(nets.num_classes, n) if nets.conditional else None)


def generate(nets: Networks, state: GANState, n: int, *, seed: int, z_dist: str, labels=None,
             chunk: int = 1000) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples (and their labels) in chunks, G in inference mode.

    A conditional model without given ``labels`` gets every class equally often
    (``0, 1, .., K-1, 0, 1, ..``); ``labels`` may be one int or ``n`` ints.
    """
    z = noise.sample_z(jax.random.PRNGKey(seed), (n, nets.z_dim), z_dist)
    if nets.conditional:
        labels = np.arange(n) % nets.num_classes if labels is None else labels
        labels = np.broadcast_to(np.asarray(labels), (n,))
    elif labels is not None:
        raise ValueError("--label is for conditional runs; this run is unconditional")
    sample = make_sampler(nets)
    if labels is None:
        return chunked(lambda z: sample(state, z), np.asarray(z), chunk=chunk), None
    return chunked(lambda z, y: sample(state, z, y), np.asarray(z), labels, chunk=chunk), labels


def centres(dataset: str) -> np.ndarray | None:
    """A 2-D mixture's centres, drawn under its samples; None for images."""
    return mixtures.centres(dataset) if dataset in MIXTURES else None


def score_samples(x: np.ndarray, y: np.ndarray | None, cfg: TrainConfig, *,
                  progress: bool = False) -> dict:
    """The metrics of samples during training or a comparison: PacGAN's mode metrics for a
    mixture, else FID / KID / score / precision / recall (no anchors, no per-class split)."""
    if cfg.dataset in MIXTURES:
        return scoring.score_mixture(x, cfg.dataset)
    return scoring.score_images(x, cfg.dataset, cfg.data_dir, labels=y, anchors=False,
                                per_class=False, progress=progress)["samples"]


def _checked_labels(batches, nets: Networks):
    """Passes batches on, checking a conditional model's labels on the host first."""
    for batch in batches:
        check_labels(nets, batch["y"], len(batch["y"]))
        yield batch


def _load_data(cfg: TrainConfig) -> Dataset:
    return load_dataset(cfg.dataset, data_dir=cfg.data_dir, resolution=cfg.resolution,
                        bad_images=cfg.bad_images)


def _describe(cfg: TrainConfig, data: Dataset) -> dict:
    return {"example_shape": list(data.example_shape), "num_classes": data.num_classes,
            "description": data.description}


def _init(cfg: TrainConfig, described: dict, data: Dataset | None):
    return init_state(cfg, tuple(described["example_shape"]), described.get("num_classes"))


def _start(cfg: TrainConfig, nets: Networks, data: Dataset, out: Path, progress: bool):
    sampler = make_sampler(nets)
    z, z_labels = fixed_noise(cfg, nets, cfg.num_samples)
    rows = nets.num_classes if nets.conditional and len(nets.out_shape) == 3 else None
    records_path = out / "metrics.jsonl"

    def on_epoch(state: GANState, epoch: int) -> dict | None:
        x = np.asarray(sampler(state, z, z_labels))
        title = f"{cfg.objective} on {cfg.dataset}, epoch {epoch}, step {int(state.step)}"
        path = out / "samples" / f"epoch_{epoch:03d}.png"
        plots.save_samples(path, x, centres(cfg.dataset), title, rows=rows)
        shutil.copyfile(path, out / "samples.png")
        plots.save_curves(out / "loss_curve.png", plots.read_metrics(records_path),
                          plots.GAN_CURVES, title=title)
        if not (cfg.eval_every and epoch % cfg.eval_every == 0):
            return None
        # PacGAN scores 2,500 samples; a mixture figure's fixed-noise samples are such a set.
        y = None
        if cfg.dataset not in MIXTURES:
            x, y = generate(nets, state, EPOCH_EVAL_SAMPLES, seed=cfg.seed + 7,
                            z_dist=cfg.z_dist)
        return {f"eval/{k}": v for k, v in score_samples(x, y, cfg, progress=progress).items()}

    return on_epoch


def _make_step(cfg: TrainConfig, nets: Networks):
    step, n_critic = make_step(cfg, nets, jit=False)
    return step, cfg.batch_size * n_critic  # each of the n_critic D updates takes a batch


def _batches(cfg: TrainConfig, nets: Networks, data: Dataset, per_step: int, start: int,
             shard: tuple[int, int]):
    batches = data.batches(per_step, seed=cfg.seed, start_step=start, shard=shard)
    return _checked_labels(batches, nets) if nets.conditional else batches


def _sample(run: Run, n: int, seed: int, label: int | None) -> Samples:
    cfg, nets = run.cfg, run.nets
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    rows = None
    if nets.conditional and label is None:
        # Class rows: n // K samples of each class, in order.
        y = noise.class_rows(nets.num_classes, n)
        rows = nets.num_classes if len(nets.out_shape) == 3 else None
    else:
        y = label
    x, y = generate(nets, run.state, n, seed=seed, z_dist=cfg.z_dist, labels=y)
    return Samples(x, y, rows, centres(cfg.dataset))


def _interpolate(run: Run, strips: int, points: int, seed: int, label: int | None) -> Samples:
    cfg, nets = run.cfg, run.nets
    if len(nets.out_shape) != 3:
        raise ValueError("--interpolate draws image strips; this run generates 2-D points")
    z = noise.interpolation_strips(jax.random.PRNGKey(seed), nets.z_dim, strips, points,
                                   cfg.z_dist)
    y = None
    if nets.conditional:  # each strip keeps one class: strip i shows class i mod K
        y = np.repeat(np.arange(strips) % nets.num_classes, points)
        if label is not None:
            y = np.full(len(z), label)
    return Samples(np.asarray(make_sampler(nets)(run.state, z, y)), y, rows=strips)


def _evaluate(run: Run, n: int, seed: int, data_dir: str | None, progress: bool) -> dict:
    """PacGAN's mode metrics (mixtures, 2,500 samples), or the image metrics of ``n``
    samples beside the real-data and noise anchors (per class for a conditional run)."""
    x, y = generate(run.nets, run.state, MIXTURE_SAMPLES if run.cfg.dataset in MIXTURES else n,
                    seed=seed + 12_345, z_dist=run.cfg.z_dist)
    if run.cfg.dataset in MIXTURES:
        return {"samples": scoring.score_mixture(x, run.cfg.dataset), "n": len(x)}
    result = scoring.score_images(x, run.cfg.dataset, data_dir or run.cfg.data_dir, labels=y,
                                  seed=seed, progress=progress)
    result["n"] = len(x)
    return result


METHOD = Method(
    name="gan",
    load_data=_load_data,
    describe=_describe,
    init=_init,
    make_step=_make_step,
    batches=_batches,
    steps_per_epoch=lambda cfg, data, per_step: data.steps_per_epoch(per_step),
    start=_start,
    sample=_sample,
    interpolate=_interpolate,
    evaluate=_evaluate,
    title=lambda cfg: f"{cfg.objective}/{cfg.dataset}",
    conditional=lambda run: run.nets.conditional,
)
