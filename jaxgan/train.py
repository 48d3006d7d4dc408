"""A GAN training run from a config: data, state, step, loop, figures, checkpoints.

What a run writes in its output folder:
  config.json         the resolved config (``jaxgan sample`` and ``--resume`` read it)
  data.json           the data's example shape and description
  metrics.jsonl       one line per ``log_every`` steps: losses, mean D outputs, grad norms
  samples/epoch_NNN.png  a grid from fixed noise (a scatter over the real centres for 2-D data)
  samples.png         the latest of those
  loss_curve.png      losses and mean D outputs against the step
  checkpoints/        Orbax checkpoints of the whole state, one per epoch (the last two kept)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np

from jaxgan import plots
from jaxgan.checkpoint import Checkpointer, check_run_folder, run_directory
from jaxgan.configs import MIXTURES, TrainConfig, load_config
from jaxgan.data import load_dataset, mixtures
from jaxgan.loop import run
from jaxgan.objectives import get_objective
from jaxgan.state import GANState, Networks, init_state
from jaxgan.step import check_labels, make_sampler, make_train_step, sample_z


def fixed_noise(cfg: TrainConfig, nets: Networks, n: int):
    """The noise (and labels) every figure of a run is drawn from, so figures compare.

    A conditional model's figure has one row per class: labels ``0 0 .. 1 1 ..``.
    """
    z = sample_z(jax.random.PRNGKey(cfg.seed + 1_000_003), (n, nets.z_dim), cfg.z_dist)
    if not nets.conditional:
        return z, None
    return z, np.repeat(np.arange(nets.num_classes), -(-n // nets.num_classes))[:n]


def checked_labels(batches, nets: Networks):
    """Passes batches on, checking a conditional model's labels on the host first."""
    for batch in batches:
        check_labels(nets, batch["y"], len(batch["y"]))
        yield batch


def save_samples(
    path: Path, x: np.ndarray, dataset: str, title: str = "", rows: int | None = None
) -> None:
    """A grid for images (``rows`` rows), a scatter over the real centres for 2-D points."""
    if x.ndim == 2:
        centres = mixtures.centres(dataset) if dataset in MIXTURES else None
        plots.save_scatter(path, x, centres, title=title)
    else:
        plots.save_image_grid(path, x, rows=rows, scale=2 if x.shape[1] <= 32 else 1)


def _epoch_scorer(cfg: TrainConfig, nets: Networks, progress: bool):
    """``score(state, figure_samples) -> {"eval/<metric>": value}`` for ``eval_every``."""
    from jaxgan import evaluate  # the evaluator is only loaded when a run asks for it

    if cfg.dataset in MIXTURES:
        # PacGAN scores 2,500 samples; the figure's fixed-noise samples are such a set.
        return lambda state, x: {
            f"eval/{k}": v for k, v in evaluate.score_mixture(x, cfg.dataset).items()
        }
    from jaxgan.sampling import generate

    def score(state, _):
        x, y = generate(nets, state, evaluate.EPOCH_EVAL_SAMPLES, seed=cfg.seed + 7, z_dist=cfg.z_dist)
        result = evaluate.score_images(
            x, cfg.dataset, cfg.data_dir, labels=y, anchors=False, per_class=False,
            progress=progress,
        )
        return {f"eval/{k}": v for k, v in result["samples"].items()}

    return score


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True):
    """Trains ``cfg`` into ``out``; with ``resume`` continues from its latest checkpoint.

    Returns:
      ``(state, nets)`` at the end of training.
    """
    out = Path(out)
    get_objective(cfg.objective)  # fail on a bad name before loading any data
    check_run_folder(out, cfg, resume=resume, load_config=load_config)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, resolution=cfg.resolution)
    nets, state = init_state(cfg, data.example_shape, data.num_classes)
    ckpt = Checkpointer(out / "checkpoints")
    if resume:
        state, _ = ckpt.restore(state)
    else:
        out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.to_json())
    # What sampling a run needs of its data, so `jaxgan sample` works without the dataset.
    (out / "data.json").write_text(
        json.dumps(
            {
                "example_shape": list(data.example_shape),
                "num_classes": data.num_classes,
                "description": data.description,
            }
        )
    )

    objective = get_objective(cfg.objective)
    n_critic = objective.n_critic if cfg.n_critic is None else cfg.n_critic
    steps_per_epoch = data.steps_per_epoch(cfg.batch_size * n_critic)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    step_fn = make_train_step(
        objective, nets, z_dist=cfg.z_dist, n_critic=n_critic
    )
    sampler = make_sampler(nets)
    z, z_labels = fixed_noise(cfg, nets, cfg.num_samples)
    rows = nets.num_classes if nets.conditional and len(nets.out_shape) == 3 else None
    records_path = out / "metrics.jsonl"

    score = _epoch_scorer(cfg, nets, progress)

    def on_epoch(state: GANState, epoch: int) -> dict | None:
        x = np.asarray(sampler(state, z, z_labels))
        title = f"{cfg.objective} on {cfg.dataset}, epoch {epoch}, step {int(state.step)}"
        path = out / "samples" / f"epoch_{epoch:03d}.png"
        save_samples(path, x, cfg.dataset, title, rows=rows)
        shutil.copyfile(path, out / "samples.png")
        plots.save_loss_curves(
            out / "loss_curve.png", plots.read_metrics(records_path), title=title
        )
        if cfg.eval_every and epoch % cfg.eval_every == 0:
            return score(state, x)
        return None

    batches = data.batches(
        cfg.batch_size * n_critic, seed=cfg.seed, start_step=int(state.step)
    )
    if nets.conditional:
        batches = checked_labels(batches, nets)
    state = run(
        state,
        step_fn,
        batches,
        total_steps=total,
        steps_per_epoch=steps_per_epoch,
        out_dir=out,
        checkpointer=ckpt,
        on_epoch=on_epoch,
        log_every=cfg.log_every,
        meta={"config": json.loads(cfg.to_json())},
        desc=f"{cfg.objective}/{cfg.dataset}",
        progress=progress,
    )
    ckpt.close()
    return state, nets


def load_run(run_dir: str | Path) -> tuple[TrainConfig, Networks, GANState]:
    """Config, networks and the latest state of a finished or interrupted run."""
    run_dir = run_directory(run_dir)
    cfg = load_config(run_dir / "config.json")
    data = json.loads((run_dir / "data.json").read_text())
    nets, state = init_state(cfg, tuple(data["example_shape"]), data.get("num_classes"))
    state, _ = Checkpointer(run_dir / "checkpoints").restore(state)
    return cfg, nets, state
