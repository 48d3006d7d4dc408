"""GLO: Generative Latent Optimization (Bojanowski et al. 2017), a generator without a critic.

Every training image ``x_i`` owns a latent ``z_i``, row ``i`` of an ``(N, d)`` table learned
jointly with the generator's weights theta::

    min_theta 1/N sum_i min_{z_i} loss(g_theta(z_i), x_i),   ||z_i|| = 1 (or <= 1)

The data pipeline hands each batch its dataset indices (``batch["index"]``), so a step gathers
the batch's rows, takes the gradient of the loss with respect to theta and to those rows only,
updates both by SGD and projects the updated rows back onto the unit sphere (the ICML
version) or ball (arXiv v1). Rows of images not in the batch do not change.

Uses, each a function: `reconstruct` training images from their latents, `sample` new images
from a full-covariance Gaussian fitted to the latents, `interpolate` between latents, and
`fit_latents` of held-out images with theta frozen. A run directory looks like a GAN run's
(``config.json`` with ``"config": "GLOConfig"``, ``data.json``, ``metrics.jsonl``,
``samples/``, ``checkpoints/``) plus ``pca.npz`` (the training data's principal components,
the latent initialisation and the baseline GLO must beat), and `load_run` / `sample` make
``jaxgan sample --checkpoint RUN`` work on it.

Choices, documented (see `GLOConfig`): one scalar objective, the mean over the batch of each
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
import json
import shutil
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from jaxgan import pyramid
from jaxgan.state import apply, eval_view

Array = jax.Array

PROJECTIONS = ("sphere", "ball")
INITS = ("pca", "normal")


@dataclasses.dataclass(frozen=True)
class GLOConfig:
    """GLO on images with the DCGAN generator (Bojanowski et al. 2017, arXiv:1707.05776).

    Attributes:
      dataset, data_dir, resolution: as in `jaxgan.configs.TrainConfig`.
      width: DCGAN generator base channel count.
      z_dim: latent size d (the paper: 100 or 512 at 64 px; 32 suffices for 28 px digits).
      projection: ``sphere`` (unit l2 sphere, the ICML version) or ``ball`` (arXiv v1).
      init: ``pca`` (top-d principal-component coefficients of the flattened training images,
        then projected; the paper's) or ``normal`` (Gaussian, then projected).
      lap1_weight, l2_weight: the loss ``a Lap1 + b L2`` (Lap1 alone is the paper's main one).
      levels: Laplacian pyramid depth, residual included (4: 28, 14, 7, 4 px for MNIST).
      weight_exponent: level ``j`` (0 = finest) weighs ``2^(e j)``; 2 is the paper's
        ``2^(2j)``, equal weight per pixel at every level (`jaxgan.pyramid.lap1`).
      pixel_mean: divide each image's loss by its pixel count (else the paper's sums).
      theta_lr: SGD learning rate of the generator. The paper's 1 saturates the DCGAN
        generator's tanh output at the first step on MNIST (outputs all -1, gradients ~0);
        0.3 trains (see the module docstring).
      theta_momentum: SGD momentum of the generator (0: the paper's plain SGD).
      z_lr: SGD learning rate of the latents on the batch-mean loss (the paper's 10).
      batch_size: images per step.
      epochs: passes over the data; ``steps`` overrides it when set.
      steps: total train steps.
      seed: the one seed of the run (init, data order, figure noise).
      log_every: steps between metrics lines.
      num_samples: images in each sample grid.
      fit_steps: SGD steps of `fit_latents` for held-out images (theta frozen).
      fit_lr: their SGD rate on each image's own loss; ``None``: ``z_lr / batch_size``, the
        step a training row takes (it gets ``1/B`` of the batch-mean loss's gradient).
      fit_init: held-out starting latents, ``pca`` (their projected PCA coefficients, as the
        training latents started; on MNIST they start at half the loss of ``nearest``, and
        both end equal) or ``nearest`` (`held_out_init`).
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    resolution: int | None = None
    width: int = 64
    z_dim: int = 32
    projection: str = "sphere"
    init: str = "pca"
    lap1_weight: float = 1.0
    l2_weight: float = 0.0
    levels: int = 4
    weight_exponent: float = 2.0
    pixel_mean: bool = True
    theta_lr: float = 0.3
    theta_momentum: float = 0.0
    z_lr: float = 10.0
    batch_size: int = 128
    epochs: int = 25
    steps: int | None = None
    seed: int = 0
    log_every: int = 50
    num_samples: int = 64
    fit_steps: int = 300
    fit_lr: float | None = None
    fit_init: str = "pca"

    def __post_init__(self):
        if self.projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {self.projection!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")

    def to_json(self) -> str:
        return json.dumps({"config": type(self).__name__, **dataclasses.asdict(self)}, indent=2)

    def loss_fn(self) -> Callable[[Array, Array], Array]:
        """The per-example reconstruction loss ``(x_hat, x) -> (B,)`` of this config."""
        return functools.partial(
            pyramid.reconstruction_loss,
            lap1_weight=self.lap1_weight,
            l2_weight=self.l2_weight,
            levels=self.levels,
            weight_exponent=self.weight_exponent,
            pixel_mean=self.pixel_mean,
        )


def load_config(path: str | Path) -> GLOConfig:
    """Reads the ``config.json`` a GLO run wrote."""
    d = json.loads(Path(path).read_text())
    kind = d.pop("config", None)
    if kind != "GLOConfig":
        raise ValueError(f"{path} is a {kind} run, not a GLO run")
    return GLOConfig(**d)


# --------------------------------------------------------------------------------------
# Latents: projection, PCA initialisation, the fitted Gaussian
# --------------------------------------------------------------------------------------


def project(z: Array, kind: str = "sphere") -> Array:
    """Rows of ``z`` onto the unit l2 sphere (``z / ||z||``) or ball (``z / max(||z||, 1)``)."""
    norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
    if kind == "sphere":
        return z / jnp.maximum(norm, 1e-12)
    if kind == "ball":
        return z / jnp.maximum(norm, 1.0)
    raise ValueError(f"projection must be one of {PROJECTIONS}, got {kind!r}")


class PCA(NamedTuple):
    """Principal components of flattened images: ``x ~ mean + coeffs @ components``."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (d, D), orthonormal rows, largest variance first
    variances: np.ndarray  # (d,)

    def encode(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32).reshape(len(x), -1) - self.mean) @ self.components.T

    def decode(self, coeffs: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return (coeffs @ self.components + self.mean).reshape((len(coeffs), *shape))


def fit_pca(x: np.ndarray, d: int, *, seed: int = 0) -> PCA:
    """The top ``d`` principal components of ``(N, ...)`` images.

    Fewer images than pixels: the thin SVD of the data. Up to 1,024 pixels (MNIST's 784):
    eigenvectors of the D x D covariance. Both exact. Larger images: randomized subspace
    iteration (Halko, Martinsson & Tropp 2011, Alg. 4.4: 10 extra
    directions, 6 power iterations), O(N D d) instead of the O(D^3) of a 12,288-pixel
    eigendecomposition.
    """
    flat = np.asarray(x, np.float32).reshape(len(x), -1)
    n, dim = flat.shape
    if d > min(n, dim):
        raise ValueError(f"z_dim {d} exceeds the rank of {n} images of {dim} pixels")
    mean = flat.mean(0, dtype=np.float64).astype(np.float32)
    centred = flat - mean
    if n <= dim and n <= 4096:
        # Fewer images than pixels: the thin SVD of the data is exact and cheap.
        _, sv, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        components, variances = vt[:d], sv[:d] ** 2 / max(n - 1, 1)
    elif dim <= 1024:
        cov = (centred.T @ centred).astype(np.float64) / max(n - 1, 1)
        values, vectors = np.linalg.eigh(cov)
        top = np.argsort(values)[::-1][:d]
        components, variances = vectors[:, top].T, values[top]
    else:
        q = np.random.default_rng(seed).normal(size=(dim, min(d + 10, n, dim)))
        q = np.linalg.qr(centred @ q.astype(np.float32))[0]
        for _ in range(6):
            q = np.linalg.qr(centred.T @ q)[0]
            q = np.linalg.qr(centred @ q)[0]
        _, sv, vt = np.linalg.svd(q.T @ centred, full_matrices=False)
        components, variances = vt[:d], sv[:d] ** 2 / max(n - 1, 1)
    return PCA(mean, np.asarray(components, np.float32), np.asarray(variances, np.float32))


def init_latents(key: Array, n: int, d: int, kind: str, projection: str,
                 x: np.ndarray | None = None, pca: PCA | None = None) -> Array:
    """The initial ``(n, d)`` table: PCA coefficients of ``x`` or N(0, I), then projected."""
    if kind == "pca":
        if x is None:
            raise ValueError("init 'pca' needs the training images")
        pca = pca if pca is not None else fit_pca(x, d)
        z = jnp.asarray(pca.encode(x))
    elif kind == "normal":
        z = jax.random.normal(key, (n, d))
    else:
        raise ValueError(f"init must be one of {INITS}, got {kind!r}")
    return project(z, projection)


class Gaussian(NamedTuple):
    """A full-covariance Gaussian in latent space (the paper's sampler, Sec. 4), or a mixture.

    ``k = 1`` component is the paper's single Gaussian; ``k > 1`` (`fit_gaussian`'s
    ``components``) is an extension, not in the paper.
    """

    weights: np.ndarray  # (k,)
    mean: np.ndarray  # (k, d)
    chol: np.ndarray  # (k, d, d) lower Cholesky factors of the covariances


def _kmeans(z: np.ndarray, k: int, seed: int, iters: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = z[rng.choice(len(z), k, replace=False)]
    for _ in range(iters):
        d2 = np.sum(z * z, 1)[:, None] - 2 * z @ centres.T + np.sum(centres * centres, 1)
        assign = np.argmin(d2, axis=1)
        for j in range(k):
            members = z[assign == j]
            if len(members):
                centres[j] = members.mean(0)
    return assign


def fit_gaussian(z: Array | np.ndarray, components: int = 1, *, seed: int = 0,
                 iters: int = 25) -> Gaussian:
    """Full-covariance Gaussian(s) fitted to the learned latents ``(N, d)``.

    ``components = 1``: mean and covariance of all latents (the paper's). ``components = k``:
    k-means (Lloyd, ``iters`` rounds) then one Gaussian per cluster, weighted by its size.
    """
    z = np.asarray(z, np.float64)
    n, d = z.shape
    assign = np.zeros(n, int) if components == 1 else _kmeans(z, components, seed, iters)
    weights, means, chols = [], [], []
    for j in range(components):
        members = z[assign == j]
        if len(members) < 2:
            continue
        # Jitter keeps a cluster with fewer than d + 1 points positive definite.
        cov = np.cov(members, rowvar=False) + 1e-6 * np.eye(d)
        weights.append(len(members) / n)
        means.append(members.mean(0))
        chols.append(np.linalg.cholesky(cov))
    weights = np.asarray(weights)
    return Gaussian((weights / weights.sum()).astype(np.float32),
                    np.asarray(means, np.float32), np.asarray(chols, np.float32))


def sample_latents(gaussian: Gaussian, key: Array, n: int, projection: str = "sphere") -> Array:
    """``n`` latents: a component by weight, ``mean + chol @ eps``, projected like the training
    latents. The same key gives the same latents (figures use a fixed one)."""
    return _sample_latents(Gaussian(*map(jnp.asarray, gaussian)), key, n, projection)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _sample_latents(gaussian: Gaussian, key: Array, n: int, projection: str) -> Array:
    k_comp, k_eps = jax.random.split(key)
    comp = jax.random.choice(k_comp, len(gaussian.weights), (n,), p=gaussian.weights)
    eps = jax.random.normal(k_eps, (n, gaussian.mean.shape[-1]))
    z = gaussian.mean[comp] + jnp.einsum("nij,nj->ni", gaussian.chol[comp], eps)
    return project(z, projection)


def interpolate(z0: Array, z1: Array, points: int, projection: str = "sphere") -> Array:
    """``points`` latents on the segment from each row of ``z0`` to ``z1``, then projected:
    ``(k, d), (k, d) -> (k * points, d)``. On the sphere the projected segment is the great-circle
    arc between the endpoints (the paper interpolates linearly)."""
    t = jnp.linspace(0.0, 1.0, points)[None, :, None]
    z = (1 - t) * z0[:, None, :] + t * z1[:, None, :]
    return project(z.reshape(-1, z0.shape[-1]), projection)


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


def build_generator(cfg: GLOConfig, example_shape: tuple[int, ...], rngs: nnx.Rngs):
    from jaxgan.nets import DCGANGenerator

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
    loss_fn = cfg.loss_fn()

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
            "g_grad_norm": optax.tree.norm(g_grads),
            "z_grad_norm": jnp.mean(jnp.linalg.norm(z_grads, axis=-1)),
            "z_step": jnp.mean(jnp.linalg.norm(new_z - z, axis=-1)),
            "g_param_norm": optax.tree.norm(g_params),
        }
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0) if jit else train_step


# --------------------------------------------------------------------------------------
# Uses: generate, reconstruct, fit held-out latents
# --------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=0)
def _generate(g_eval, g_params, g_stats, z):
    return apply(g_eval, g_params, g_stats, z)[0]


def generate(nets: GLONets, state: GLOState, z: Array, *, chunk: int = 500) -> np.ndarray:
    """``g_theta(z)`` in inference mode (running BatchNorm statistics), in chunks.

    Every chunk is padded to ``chunk`` rows (inference-mode G treats rows independently), so
    one compilation serves every number of images.
    """
    z = np.asarray(z, np.float32)
    out = []
    for i in range(0, len(z), chunk):
        part = z[i : i + chunk]
        padded = np.pad(part, ((0, chunk - len(part)), (0, 0)))
        x = _generate(nets.g_eval, state.g_params, state.g_stats, jnp.asarray(padded))
        out.append(np.asarray(x)[: len(part)])
    return np.concatenate(out) if out else np.zeros((0, *nets.out_shape), np.float32)


def reconstruct(nets: GLONets, state: GLOState, indices) -> np.ndarray:
    """Reconstructions of training images ``indices`` from their learned latents."""
    return generate(nets, state, state.latents[jnp.asarray(indices)])


def make_latent_fitter(cfg: GLOConfig, nets: GLONets, *, steps: int | None = None,
                       lr: float | None = None) -> Callable:
    """``fit(state, z0, x) -> (z, losses)``: latents of held-out images with theta frozen.

    ``steps`` (default ``cfg.fit_steps``) projected SGD steps of rate ``lr`` (default
    ``cfg.fit_lr``, see `GLOConfig`) on each image's own loss, the generator in inference
    mode, all in one jitted ``lax.scan``. ``losses`` is ``(steps + 1,)``: the mean loss before
    each step and at the end.
    """
    steps = cfg.fit_steps if steps is None else steps
    if lr is None:
        lr = cfg.fit_lr if cfg.fit_lr is not None else cfg.z_lr / cfg.batch_size
    loss_fn = cfg.loss_fn()

    @jax.jit
    def fit(state: GLOState, z0: Array, x: Array):
        def total(z):
            # Inference-mode G treats images independently: the sum's gradient for row i is
            # image i's own gradient.
            x_hat = apply(nets.g_eval, state.g_params, state.g_stats, z)[0]
            return jnp.sum(loss_fn(x_hat, x))

        def body(z, _):
            value, grad = jax.value_and_grad(total)(z)
            return project(z - lr * grad, cfg.projection), value / x.shape[0]

        z, losses = jax.lax.scan(body, project(z0, cfg.projection), None, length=steps)
        return z, jnp.append(losses, total(z) / x.shape[0])

    return fit


def held_out_init(cfg: GLOConfig, state: GLOState, pca: PCA, x: np.ndarray, *,
                  kind: str = "nearest", train_codes: np.ndarray | None = None) -> np.ndarray:
    """Starting latents for held-out images ``x``.

    ``"pca"``: their PCA coefficients, projected (how the training latents started).
    ``"nearest"``: the learned latent of the training image nearest in PCA space (``d``-dim
    codes ``train_codes = pca.encode(x_train)``, cheap to search), a start already on the
    learned manifold.
    """
    codes = pca.encode(x)
    if kind == "pca":
        return np.asarray(project(jnp.asarray(codes), cfg.projection))
    if kind == "nearest":
        if train_codes is None:
            raise ValueError("held_out_init 'nearest' needs train_codes = pca.encode(x_train)")
        train_codes = jnp.asarray(train_codes)

        @jax.jit
        def nearest(c):
            d2 = (jnp.sum(c * c, 1)[:, None] - 2 * c @ train_codes.T
                  + jnp.sum(train_codes * train_codes, 1)[None, :])
            return jnp.argmin(d2, axis=1)

        idx = np.concatenate([np.asarray(nearest(jnp.asarray(codes[i : i + 1000])))
                              for i in range(0, len(codes), 1000)])
        return np.asarray(state.latents)[idx]
    raise ValueError(f"held_out_init kind must be 'pca' or 'nearest', got {kind!r}")


def fit_latents(cfg: GLOConfig, nets: GLONets, state: GLOState, x: np.ndarray, z0: np.ndarray,
                *, steps: int | None = None, lr: float | None = None, chunk: int = 1000
                ) -> tuple[np.ndarray, np.ndarray]:
    """Fits latents to images ``x`` from ``z0`` (see `make_latent_fitter`), in chunks.

    Returns ``(z, losses)``: the fitted ``(n, d)`` latents and the mean loss curve ``(steps + 1,)``.
    """
    fit = make_latent_fitter(cfg, nets, steps=steps, lr=lr)
    zs, curves = [], []
    for i in range(0, len(x), chunk):
        z, losses = fit(state, jnp.asarray(z0[i : i + chunk]), jnp.asarray(x[i : i + chunk]))
        zs.append(np.asarray(z))
        curves.append(np.asarray(losses) * len(z))
    return np.concatenate(zs), np.sum(curves, axis=0) / len(x)


# --------------------------------------------------------------------------------------
# A run: train, load, sample
# --------------------------------------------------------------------------------------




def save_loss_curve(path: str | Path, records: list[dict], *, title: str = "") -> None:
    """The training loss and per-pixel MSE against the step, with a moving average."""
    from jaxgan import plots  # sets the Agg backend before pyplot is imported

    plt = plots.plt
    rows = [r for r in records if "loss" in r]
    if not rows:
        return
    step = np.array([r["step"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=110)
    for ax, key, label in ((axes[0], "loss", "training loss"), (axes[1], "mse", "MSE per pixel")):
        y = np.array([r[key] for r in rows])
        ax.plot(step, y, alpha=0.4, label=label)
        k = min(len(y), 9)
        if k > 2:
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(step[k - 1 :], smooth, label=f"moving mean of {k}")
        ax.set_xlabel("step")
        plots.log_y(ax)
        ax.legend(fontsize=8)
    axes[0].set_title(title or "GLO", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_pca(path: Path, pca: PCA) -> None:
    np.savez(path, mean=pca.mean, components=pca.components, variances=pca.variances)


def load_pca(path: Path) -> PCA:
    with np.load(path) as f:
        return PCA(f["mean"], f["components"], f["variances"])


def train(cfg: GLOConfig, out: str | Path, *, resume: bool = False, progress: bool = True):
    """Trains GLO into ``out``; with ``resume`` continues from its latest checkpoint.

    Writes, like a GAN run: ``config.json``, ``data.json``, ``metrics.jsonl``,
    ``samples/epoch_NNN.png`` (from the Gaussian fitted to the latents, fixed noise),
    ``samples.png``, ``reconstructions.png`` (real training images on odd rows, their
    reconstructions below), ``loss_curve.png``, ``checkpoints/``; and ``pca.npz``.

    Returns:
      ``(state, nets)`` at the end of training.
    """
    from jaxgan import plots
    from jaxgan.checkpoint import Checkpointer, check_run_folder
    from jaxgan.data import load_dataset
    from jaxgan.loop import run

    out = Path(out)
    check_run_folder(out, cfg, resume=resume, load_config=load_config)
    data = load_dataset(cfg.dataset, data_dir=cfg.data_dir, resolution=cfg.resolution)
    x_train, _ = data.arrays()
    pca = fit_pca(x_train, cfg.z_dim)
    nets, state = init_state(cfg, data.example_shape, data.num_examples, x_train, pca)
    ckpt = Checkpointer(out / "checkpoints")
    if resume:
        state, _ = ckpt.restore(state)
    else:
        out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.to_json())
    (out / "data.json").write_text(json.dumps({
        "example_shape": list(data.example_shape), "description": data.description,
        "num_examples": data.num_examples}))
    save_pca(out / "pca.npz", pca)

    steps_per_epoch = data.steps_per_epoch(cfg.batch_size)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    step_fn = make_train_step(cfg, nets)
    # Sample grids use the same noise all run long, so they are comparable over time.
    figure_key = jax.random.PRNGKey(cfg.seed + 1_000_003)
    shown = np.random.default_rng(cfg.seed).choice(data.num_examples, min(32, data.num_examples),
                                                    replace=False)
    records_path = out / "metrics.jsonl"
    scale = 2 if data.example_shape[0] <= 32 else 1

    def on_epoch(state: GLOState, epoch: int) -> None:
        title = f"GLO, {data.description.split(':')[0]}, epoch {epoch}, step {int(state.step)}"
        z = sample_latents(fit_gaussian(state.latents), figure_key, cfg.num_samples,
                           cfg.projection)
        path = out / "samples" / f"epoch_{epoch:03d}.png"
        plots.save_image_grid(path, generate(nets, state, z), scale=scale)
        shutil.copyfile(path, out / "samples.png")
        plots.save_image_grid(out / "reconstructions.png",
                              paired_rows(x_train[shown], reconstruct(nets, state, shown)),
                              rows=8, scale=scale)
        save_loss_curve(out / "loss_curve.png", plots.read_metrics(records_path), title=title)

    batches = data.batches(cfg.batch_size, seed=cfg.seed, start_step=int(state.step))
    state = run(
        state, step_fn, batches, total_steps=total, steps_per_epoch=steps_per_epoch,
        out_dir=out, checkpointer=ckpt, on_epoch=on_epoch, log_every=cfg.log_every,
        meta={"config": json.loads(cfg.to_json())}, desc=f"glo/{cfg.dataset}", progress=progress,
    )
    ckpt.close()
    return state, nets


def paired_rows(real: np.ndarray, fake: np.ndarray, per_row: int = 8) -> np.ndarray:
    """Interleaves rows of ``per_row`` real images with the rows of their reconstructions."""
    n = len(real) // per_row * per_row
    r = real[:n].reshape(-1, per_row, *real.shape[1:])
    f = fake[:n].reshape(-1, per_row, *fake.shape[1:])
    return np.stack([r, f], axis=1).reshape(-1, *real.shape[1:])


@dataclasses.dataclass
class GLORun:
    """A trained GLO run: its config, networks, latest state and where it lives."""

    cfg: GLOConfig
    nets: GLONets
    state: GLOState
    run_dir: Path
    data: dict

    _fits: dict = dataclasses.field(default_factory=dict, repr=False)

    def gaussian(self, components: int = 1) -> Gaussian:
        """The Gaussian (mixture) fitted to the latents, fitted once per ``components``."""
        if components not in self._fits:
            self._fits[components] = fit_gaussian(self.state.latents, components,
                                                  seed=self.cfg.seed)
        return self._fits[components]

    @functools.cached_property
    def pca(self) -> PCA | None:
        path = self.run_dir / "pca.npz"
        return load_pca(path) if path.exists() else None


def load_run(run_dir: str | Path) -> GLORun:
    """The config, networks and latest state of a finished or interrupted GLO run."""
    from jaxgan.checkpoint import Checkpointer, run_directory

    run_dir = run_directory(run_dir)
    cfg = load_config(run_dir / "config.json")
    data = json.loads((run_dir / "data.json").read_text())
    nets, like = init_state(cfg, tuple(data["example_shape"]), data["num_examples"])
    state, _ = Checkpointer(run_dir / "checkpoints").restore(like)
    return GLORun(cfg, nets, state, run_dir, data)


def is_glo_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` (or its ``checkpoints/``) is a GLO run, by its ``config.json``."""
    run_dir = Path(run_dir)
    if run_dir.name == "checkpoints":
        run_dir = run_dir.parent
    try:
        return json.loads((run_dir / "config.json").read_text()).get("config") == "GLOConfig"
    except (OSError, ValueError):
        return False


def sample(run: GLORun, key: Array, n: int, *, components: int = 1) -> np.ndarray:
    """``n`` new images: latents from the full-covariance Gaussian fitted to the run's
    latents (the paper's sampler; ``components > 1``: a k-means mixture of them, an
    extension), projected, through the generator in inference mode. ``(n, H, W, C)``, [-1, 1]."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    z = sample_latents(run.gaussian(components), key, n, run.cfg.projection)
    return generate(run.nets, run.state, z)


def interpolation_strips(run: GLORun, key: Array, strips: int, points: int) -> np.ndarray:
    """``strips`` rows of ``points`` images, each walking between the latents of two random
    training images: ``(strips * points, H, W, C)``."""
    ends = jax.random.choice(key, run.state.latents.shape[0], (2, strips), replace=False)
    z = interpolate(run.state.latents[ends[0]], run.state.latents[ends[1]], points,
                    run.cfg.projection)
    return generate(run.nets, run.state, z)
