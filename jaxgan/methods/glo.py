"""GLO: Generative Latent Optimization (Bojanowski et al. 2017), a generator without a critic.

Every training image ``x_i`` owns a latent ``z_i``, row ``i`` of an ``(N, d)`` table learned
jointly with the generator's weights theta::

    min_theta 1/N sum_i min_{z_i} loss(g_theta(z_i), x_i),   ||z_i|| = 1 (or <= 1)

The data pipeline hands each batch its dataset indices (``batch["index"]``), so a step gathers
the batch's rows, takes the gradient of the loss with respect to theta and to those rows only,
updates both by SGD and projects the updated rows back onto the unit sphere (the ICML
version) or ball (arXiv v1). Rows of images not in the batch do not change.

Uses, each a function: `reconstruct` training images from their latents, `sample` new images
from a full-covariance Gaussian fitted to the latents, `interpolation_strips` between
latents, and `fit_held_out` latents of held-out images with theta frozen (the numerics are
in `jaxgan.glo_latents`). A run folder is any run's (`jaxgan.runs`) plus ``pca.npz`` (the
training data's principal components, the latent initialisation and the baseline GLO must
beat) and ``reconstructions.png``; ``jaxgan sample`` and ``jaxgan eval`` draw from the
Gaussian (``sampler_components``) fitted to its latents.

Choices, documented (see `jaxgan.configs.GLOConfig`): one scalar objective, the mean over the batch of each
image's loss, and each image's loss a mean over its pixels (the paper's norms are sums; a
sum over 784 pixels makes every gradient 784x larger). Theta and the batch's rows both step
along the gradient of that scalar, with the paper's rates 10 for z; row ``i`` thus moves by
``z_lr / B`` times the gradient of its own image's loss. Theta's rate is 0.3, not the
paper's 1: with the DCGAN generator (BatchNorm, tanh output) the first SGD step at rate 1
drives the output layer into saturation (every pixel -1, gradients ~0) and training never
starts; 0.3 and 0.5 both train on MNIST, 0.3 with the margin.

References:
  Bojanowski, Joulin, Lopez-Paz, Szlam 2017, "Optimizing the Latent Space of Generative
  Networks", https://arxiv.org/abs/1707.05776
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from jaxgan import health, plots, pyramid, scoring
from jaxgan.configs import GLOConfig
from jaxgan.data import load_dataset
from jaxgan.functional import apply, chunked, eval_view
from jaxgan.glo_latents import (
    PCA,
    fit_gaussian,
    fit_latents,
    fit_pca,
    held_out_init,
    init_latents,
    interpolate,
    load_pca,
    make_latent_fitter,
    project,
    sample_latents,
    save_pca,
)
from jaxgan.methods.base import Method, Run, Samples
from jaxgan.nets.dcgan import DCGANGenerator
from jaxgan.noise import FIGURE_SEED_OFFSET

Array = jax.Array


# --------------------------------------------------------------------------------------
# State and step
# --------------------------------------------------------------------------------------


@struct.dataclass
class GLOState:
    """Everything a GLO run changes, as one pytree.

    Attributes:
      step: completed train steps (int32 scalar).
      key: the run's base PRNG key (the step itself draws no randomness).
      g_params, g_stats: the generator's ``nnx.Param`` state and the rest (BatchNorm stats).
      g_opt: theta's optax state.
      latents: the ``(N, d)`` latent table, row ``i`` for training image ``i``.
      z_opt: the latents' optax state (empty: the latents' optimiser must be stateless, see
        `make_train_step`).
    """

    step: Array
    key: Array
    g_params: nnx.State
    g_stats: nnx.State
    g_opt: optax.OptState
    latents: Array
    z_opt: optax.OptState


@dataclasses.dataclass(frozen=True)
class GLONets:
    """The static half of a GLO run: graph definitions (train and inference mode), optimisers."""

    g_graph: Any
    g_eval: Any
    g_tx: optax.GradientTransformation
    z_tx: optax.GradientTransformation
    z_dim: int
    out_shape: tuple[int, ...]


def reconstruction_loss(cfg: GLOConfig) -> Callable[[Array, Array], Array]:
    """The per-example reconstruction loss ``(x_hat, x) -> (B,)`` of a config."""
    return functools.partial(
        pyramid.reconstruction_loss,
        lap1_weight=cfg.lap1_weight,
        l2_weight=cfg.l2_weight,
        levels=cfg.levels,
        weight_exponent=cfg.weight_exponent,
        pixel_mean=cfg.pixel_mean,
    )


def build_generator(cfg: GLOConfig, example_shape: tuple[int, ...], rngs: nnx.Rngs):
    if len(example_shape) != 3:
        raise ValueError(f"GLO generates images; this dataset's examples are {example_shape}")
    h, _, c = example_shape
    return DCGANGenerator(z_dim=cfg.z_dim, resolution=h, channels=c, width=cfg.width, rngs=rngs)


def _assert_stateless(tx: optax.GradientTransformation, d: int) -> optax.OptState:
    state = tx.init(jnp.zeros((1, d)))
    if jax.tree.leaves(state):
        # A dense update would decay the state of rows not in the batch every step, a lazy
        # one would need per-row step counts; plain SGD (the paper's) needs neither.
        raise ValueError("the latent table's optimiser must be stateless (e.g. optax.sgd "
                         "without momentum): only the batch's rows are updated")
    return state


def init_state(cfg: GLOConfig, example_shape: tuple[int, ...], num_examples: int,
               x: np.ndarray | None = None, pca: PCA | None = None) -> tuple[GLONets, GLOState]:
    """Networks, optimisers and the initial state, all from ``cfg.seed``.

    ``x`` (the training images in index order) is needed for ``init="pca"``; without it the
    table is zeros, a placeholder of the right shape to restore a checkpoint into.
    """
    key = jax.random.PRNGKey(cfg.seed)
    g_key, z_key, run_key = jax.random.split(key, 3)
    g = build_generator(cfg, example_shape, nnx.Rngs(g_key))
    g_graph, g_params, g_stats = nnx.split(g, nnx.Param, ...)
    g_tx = optax.sgd(cfg.theta_lr, momentum=cfg.theta_momentum or None)
    z_tx = optax.sgd(cfg.z_lr)
    nets = GLONets(
        g_graph=g_graph,
        g_eval=nnx.split(eval_view(g), nnx.Param, ...)[0],
        g_tx=g_tx,
        z_tx=z_tx,
        z_dim=cfg.z_dim,
        out_shape=tuple(example_shape),
    )
    if x is None and cfg.init == "pca":
        latents = jnp.zeros((num_examples, cfg.z_dim))
    else:
        latents = init_latents(z_key, num_examples, cfg.z_dim, cfg.init, cfg.projection, x, pca)
    state = GLOState(
        step=jnp.zeros((), jnp.int32),
        key=run_key,
        g_params=g_params,
        g_stats=g_stats,
        g_opt=g_tx.init(g_params),
        latents=latents,
        z_opt=_assert_stateless(z_tx, cfg.z_dim),
    )
    return nets, state


def make_train_step(cfg: GLOConfig, nets: GLONets, *, jit: bool = True
                    ) -> Callable[[GLOState, dict], tuple[GLOState, dict]]:
    """Builds ``train_step(state, batch) -> (state, metrics)`` (Bojanowski et al., Sec. 3).

    The batch's rows ``z = latents[index]`` are gathered; theta and the rows step along the
    gradient of the batch-mean loss (only those rows have a gradient); the rows' updates
    are scatter-added back (repeated indices add up, as the full table's gradient would) and the
    updated rows projected. Cost is O(B d) for the table, whatever N is, and with the state
    donated XLA updates the table in place.

    Metrics: ``loss`` (the batch mean of the training loss), ``mse`` (per pixel, on the
    [-1, 1] scale), ``g_grad_norm``, ``z_grad_norm`` (mean over the batch's rows),
    ``z_step`` (mean distance a row moved, after projection), ``g_param_norm``.
    """
    loss_fn = reconstruction_loss(cfg)

    def objective(g_params, g_stats, z, x):
        x_hat, g_stats = apply(nets.g_graph, g_params, g_stats, z)
        per_example = loss_fn(x_hat, x)
        return jnp.mean(per_example), (g_stats, x_hat)

    def train_step(state: GLOState, batch: dict) -> tuple[GLOState, dict]:
        x, index = batch["x"], batch["index"]
        z = state.latents[index]
        (loss, (g_stats, x_hat)), (g_grads, z_grads) = jax.value_and_grad(
            objective, argnums=(0, 2), has_aux=True
        )(state.g_params, state.g_stats, z, x)
        updates, g_opt = nets.g_tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, updates)
        z_updates, z_opt = nets.z_tx.update(z_grads, state.z_opt)
        latents = state.latents.at[index].add(z_updates)
        new_z = project(latents[index], cfg.projection)
        latents = latents.at[index].set(new_z)
        new_state = state.replace(step=state.step + 1, g_params=g_params, g_stats=g_stats,
                                  g_opt=g_opt, latents=latents, z_opt=z_opt)
        metrics = {
            "loss": loss,
            "mse": jnp.mean(jnp.square(x_hat - x)),
            "g_grad_norm": health.grad_norm(g_grads),
            "z_grad_norm": jnp.mean(jnp.linalg.norm(z_grads, axis=-1)),
            "z_step": jnp.mean(jnp.linalg.norm(new_z - z, axis=-1)),
            "g_param_norm": optax.tree.norm(g_params),
        }
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0) if jit else train_step


@functools.partial(jax.jit, static_argnums=0)
def _generate(g_eval, g_params, g_stats, z):
    return apply(g_eval, g_params, g_stats, z)[0]


def generate(nets: GLONets, state: GLOState, z: Array, *, chunk: int = 500) -> np.ndarray:
    """``g_theta(z)`` in inference mode (running BatchNorm statistics), in chunks.

    Every chunk is padded to ``chunk`` rows (inference-mode G treats rows independently), so
    one compilation serves every number of images.
    """
    z = np.asarray(z, np.float32)
    if not len(z):
        return np.zeros((0, *nets.out_shape), np.float32)
    return chunked(functools.partial(_generate, nets.g_eval, state.g_params, state.g_stats),
                   z, chunk=chunk)


def reconstruct(nets: GLONets, state: GLOState, indices) -> np.ndarray:
    """Reconstructions of training images ``indices`` from their learned latents."""
    return generate(nets, state, state.latents[jnp.asarray(indices)])



def paired_rows(real: np.ndarray, fake: np.ndarray, per_row: int = 8) -> np.ndarray:
    """Interleaves rows of ``per_row`` real images with the rows of their reconstructions."""
    n = len(real) // per_row * per_row
    r = real[:n].reshape(-1, per_row, *real.shape[1:])
    f = fake[:n].reshape(-1, per_row, *fake.shape[1:])
    return np.stack([r, f], axis=1).reshape(-1, *real.shape[1:])




# --------------------------------------------------------------------------------------
# Uses of a trained run
# --------------------------------------------------------------------------------------


def gaussian(run: Run, components: int | None = None):
    """The Gaussian (mixture) fitted to a run's latents, fitted once per ``components``
    (default: the config's ``sampler_components``)."""
    k = run.cfg.sampler_components if components is None else components
    if ("gaussian", k) not in run.cache:
        run.cache[("gaussian", k)] = fit_gaussian(run.state.latents, k, seed=run.cfg.seed)
    return run.cache[("gaussian", k)]


def pca_of(run: Run) -> PCA | None:
    """The training data's PCA the run saved (its initialisation and baseline)."""
    path = run.run_dir / "pca.npz"
    return load_pca(path) if path.exists() else None


def sample(run: Run, key: Array, n: int, *, components: int | None = None) -> np.ndarray:
    """``n`` new images: latents from the full-covariance Gaussian fitted to the run's
    latents (the paper's sampler; ``components > 1``: a k-means mixture of them, an
    extension), projected, through the generator in inference mode. ``(n, H, W, C)``, [-1, 1]."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    z = sample_latents(gaussian(run, components), key, n, run.cfg.projection)
    return generate(run.nets, run.state, z)


def interpolation_strips(run: Run, key: Array, strips: int, points: int) -> np.ndarray:
    """``strips`` rows of ``points`` images, each walking between the latents of two random
    training images: ``(strips * points, H, W, C)``."""
    ends = jax.random.choice(key, run.state.latents.shape[0], (2, strips), replace=False)
    z = interpolate(run.state.latents[ends[0]], run.state.latents[ends[1]], points,
                    run.cfg.projection)
    return generate(run.nets, run.state, z)


def fit_held_out(run: Run, x: np.ndarray, z0: np.ndarray, *, steps: int | None = None,
                 lr: float | None = None, progress: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Latents of held-out images ``x`` from ``z0`` with theta frozen: ``steps`` (default
    ``fit_steps``) projected SGD steps of rate ``lr`` (default ``fit_lr``, see
    `jaxgan.configs.GLOConfig`) on each image's own loss, with a progress bar if
    ``progress``. Returns ``(z, mean loss curve)``."""
    cfg, nets = run.cfg, run.nets
    steps = cfg.fit_steps if steps is None else steps
    if lr is None:
        lr = cfg.fit_lr if cfg.fit_lr is not None else cfg.z_lr / cfg.batch_size
    fit = make_latent_fitter(
        lambda g, z: apply(nets.g_eval, g[0], g[1], z)[0], reconstruction_loss(cfg),
        steps=steps, lr=lr, projection=cfg.projection)
    # Chunks of 250: the bar moves (and its ETA means something) on a 1,000-image fit.
    return fit_latents(fit, (run.state.g_params, run.state.g_stats), x, z0, chunk=250,
                       progress=progress)


def held_out_start(run: Run, pca: PCA, x: np.ndarray, *, kind: str | None = None,
                   x_train: np.ndarray | None = None) -> np.ndarray:
    """Starting latents for held-out images (`jaxgan.glo_latents.held_out_init`), of the
    config's ``fit_init`` kind by default."""
    kind = run.cfg.fit_init if kind is None else kind
    if kind == "nearest" and x_train is None:
        raise ValueError("held_out_start 'nearest' needs x_train, the training images")
    codes = pca.encode(x_train) if kind == "nearest" else None
    return held_out_init(run.state.latents, pca, x, projection=run.cfg.projection, kind=kind,
                         train_codes=codes)


# --------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GLOData:
    """What a GLO run reads: the dataset, its images in index order, and their PCA."""

    dataset: Any  # jaxgan.data.Dataset
    x: np.ndarray
    pca: PCA


def _load_data(cfg: GLOConfig) -> GLOData:
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, resolution=cfg.resolution,
                        bad_images=cfg.bad_images)
    x_train, _ = data.arrays()
    return GLOData(data, x_train, fit_pca(x_train, cfg.z_dim))


def _describe(cfg: GLOConfig, data: GLOData) -> dict:
    return {"example_shape": list(data.dataset.example_shape),
            "description": data.dataset.description,
            "num_examples": data.dataset.num_examples}


def _init(cfg: GLOConfig, described: dict, data: GLOData | None):
    x, pca = (None, None) if data is None else (data.x, data.pca)
    return init_state(cfg, tuple(described["example_shape"]), described["num_examples"], x, pca)


def _start(cfg: GLOConfig, nets: GLONets, data: GLOData, out: Path, progress: bool):
    save_pca(out / "pca.npz", data.pca)
    # Sample grids use the same noise all run long, so they are comparable over time.
    figure_key = jax.random.PRNGKey(cfg.seed + FIGURE_SEED_OFFSET)
    n = data.dataset.num_examples
    shown = np.random.default_rng(cfg.seed).choice(n, min(32, n), replace=False)
    scale = 2 if data.dataset.example_shape[0] <= 32 else 1
    records_path = out / "metrics.jsonl"

    def on_epoch(state: GLOState, epoch: int) -> None:
        title = (f"GLO, {data.dataset.description.split(':')[0]}, epoch {epoch}, "
                 f"step {int(state.step)}")
        z = sample_latents(fit_gaussian(state.latents), figure_key, cfg.num_samples,
                           cfg.projection)
        path = out / "samples" / f"epoch_{epoch:03d}.png"
        plots.save_image_grid(path, generate(nets, state, z), scale=scale)
        shutil.copyfile(path, out / "samples.png")
        plots.save_image_grid(out / "reconstructions.png",
                              paired_rows(data.x[shown], reconstruct(nets, state, shown)),
                              rows=8, scale=scale)
        plots.save_curves(out / "loss_curve.png", plots.read_metrics(records_path),
                          [("", [("loss", "training loss")]), ("", [("mse", "MSE per pixel")])],
                          title=title, log=True, smooth=True)

    return on_epoch


def _sample(run: Run, n: int, seed: int, label: int | None) -> Samples:
    return Samples(sample(run, jax.random.PRNGKey(seed), n))


def _interpolate(run: Run, strips: int, points: int, seed: int, label: int | None) -> Samples:
    return Samples(interpolation_strips(run, jax.random.PRNGKey(seed), strips, points),
                   rows=strips)


def _evaluate(run: Run, n: int, seed: int, data_dir: str | None, progress: bool) -> dict:
    """FID, KID, score, precision / recall of samples from the fitted sampler, beside the
    anchors; and the per-pixel MSE of the training reconstructions."""
    x = sample(run, jax.random.PRNGKey(seed + 12_345), n)
    result = scoring.score_images(x, run.cfg.dataset, data_dir or run.cfg.data_dir, seed=seed,
                                  progress=progress)
    result["sampler_components"] = run.cfg.sampler_components
    return result


METHOD = Method(
    name="glo",
    load_data=_load_data,
    describe=_describe,
    init=_init,
    make_step=lambda cfg, nets: (make_train_step(cfg, nets, jit=False), cfg.batch_size),
    batches=lambda cfg, nets, data, per_step, start, shard: data.dataset.batches(
        per_step, seed=cfg.seed, start_step=start, shard=shard),
    steps_per_epoch=lambda cfg, data, per_step: data.dataset.steps_per_epoch(per_step),
    start=_start,
    sample=_sample,
    interpolate=_interpolate,
    evaluate=_evaluate,
    title=lambda cfg: f"glo/{cfg.dataset}",
)
