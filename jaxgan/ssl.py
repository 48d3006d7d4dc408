"""The semi-supervised K+1-class GAN (Salimans et al. 2016, Sec. 5), as the official MNIST code.

D is a K-class classifier with logits ``l_1..l_K``; generated data is a (K+1)-th class whose
logit is fixed at 0, so ``D(x) = Z / (Z + 1)`` with ``Z = sum_k exp(l_k)``. D minimises

    L = L_sup + w * L_unsup,
    L_sup   = cross-entropy of the K logits on the labelled batch,
    L_unsup = -E_x log D(x) - E_z log(1 - D(G(z)))   (`jaxgan.losses.ssl_d_unsup_loss`),

``w = 0.5`` (the official code's ``0.5 *`` inside ``loss_unl``; ``unsup_weight``), and G
minimises feature matching on D's last hidden layer (`jaxgan.losses.feature_matching`, the
official mean-over-features form). A labelled subset of ``labels`` examples, balanced over the
classes and chosen by ``label_seed``, is all the supervision; the rest of the training set is
the unlabelled data (``unlabelled="all"`` uses every training image, as the official code,
whose unlabelled set includes the labelled examples).

One step, as one iteration of the official loop (``train_batch_disc`` then
``train_batch_gen``): a D update on a labelled batch (the labelled set tiled: an endless
sequence of its permutations), an unlabelled batch and a batch from G; then a G update
matching D's features of a second, independently shuffled unlabelled batch. An epoch is one
pass over the unlabelled data. Test error on the official test split after every epoch, with
an exponential moving average of D's parameters (``ema_rate``, the official 1e-4 per step)
and, for comparison, with D's current parameters.

Choices, documented:

* The official average starts at zero and is never corrected (``a <- a + 1e-4 (p - a)``); at
  its 180,000 steps the bias is gone, in a short run it is not. Here the average starts at
  zero too but is divided by ``1 - (1 - rate)^t`` (Adam's correction): the same average
  wherever the official one is unbiased, and a weighted mean of the past parameters at any
  ``t``.
* The official G runs on batch statistics always (its batch norm's running averages are
  computed and never updated or used); sample figures here do the same (a batch of 100).
* Adam as the official ``nn.adam_updates``: ``m_hat / sqrt(v_hat + 1e-8)`` (optax's
  ``eps_root``), beta1 0.5, lr 0.003 throughout.
* Pixels in [0, 1] (the official ``mnist.npz``); jaxgan's [-1, 1] batches are mapped.
* ``g_steps`` (default 1, the official): G updates per D update. With the official setting
  G collapses to a saturated mean image within ~20 steps, D rejects its samples with
  ``D(G(z)) ~ 0.01`` and the test error stays at the supervised-only level (~22% with 100
  labels) for the first ~3,000 steps; the gain starts only once G fools D now and then
  (``loss_unl`` rising), since an unlabelled real example's gradient is weighted by
  ``1 - D(x)``. Two G updates per step reach that phase in about half the steps (measured,
  22,699 training images, 100 labels: 15% test error after 3,000 steps against 21%; 2% of
  averaged-D test error after ~18,500 steps, 24 minutes on a loaded 2-core CPU).

References:
  Salimans et al. 2016, Improved Techniques for Training GANs, Sec. 5 and Table 1,
  https://arxiv.org/abs/1606.03498; official code: openai/improved-gan,
  ``mnist_svhn_cifar10/train_mnist_feature_matching.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from jaxgan import losses
from jaxgan.state import apply, call, eval_view

Array = jax.Array

UNLABELLED = ("rest", "all")


@dataclasses.dataclass(frozen=True)
class SSLConfig:
    """The semi-supervised GAN on permutation-invariant MNIST, the official code's defaults.

    Attributes:
      dataset, data_dir: a labelled image dataset (mnist, fashion_mnist) and its IDX folder.
      labels: labelled examples in total, balanced over the classes (the paper: 20, 50, 100,
        200).
      label_seed: which labelled subset (default: ``seed``); the paper averages 10 subsets.
      unlabelled: ``rest`` (the training images not labelled) or ``all`` (every training
        image, as the official code).
      seed: initialisation, noise and data order.
      batch_size: examples in each of the labelled, unlabelled and generated batches.
      lr, beta1, beta2: Adam for both networks (official: 0.003, 0.5, 0.999).
      g_steps: G updates per D update (official: 1). Feature matching's G lags D early in
        training, and the semi-supervised gain only starts once G's samples fool D
        sometimes; 2 gets there in about half the steps (see the module notes).
      unsup_weight: weight of ``L_unsup`` in D's loss (official: 0.5).
      input_noise, hidden_noise: D's Gaussian noise std on the input and after each hidden
        layer (official: 0.3, 0.5).
      z_dim: G's noise, ``U(0, 1)^z_dim``.
      d_hidden, g_hidden: hidden layer sizes, comma-separated (official: 1000,500,250,250,250
        and 500,500).
      init_examples: training images for the weight-norm data-dependent initialisation.
      ema_rate: per-step rate of the moving average of D's parameters used for test error
        (official: 1e-4); 0: test with D's current parameters only.
      epochs: passes over the unlabelled data (official: 300); ``steps`` overrides.
      steps: total train steps.
      log_every: steps between metrics lines.
      num_samples: images in each sample grid.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    labels: int = 100
    label_seed: int | None = None
    unlabelled: str = "rest"
    seed: int = 0
    batch_size: int = 100
    lr: float = 0.003
    beta1: float = 0.5
    beta2: float = 0.999
    g_steps: int = 1
    unsup_weight: float = 0.5
    input_noise: float = 0.3
    hidden_noise: float = 0.5
    z_dim: int = 100
    d_hidden: str = "1000,500,250,250,250"
    g_hidden: str = "500,500"
    init_examples: int = 500
    ema_rate: float = 1e-4
    epochs: int = 300
    steps: int | None = None
    log_every: int = 100
    num_samples: int = 100

    def __post_init__(self):
        if self.unlabelled not in UNLABELLED:
            raise ValueError(f"unlabelled must be one of {UNLABELLED}, got {self.unlabelled!r}")
        if self.labels < 1:
            raise ValueError(f"labels must be positive, got {self.labels}")
        if self.g_steps < 1:
            raise ValueError(f"g_steps must be >= 1, got {self.g_steps}")
        if not 0.0 <= self.ema_rate < 1.0:
            raise ValueError(f"ema_rate must be in [0, 1), got {self.ema_rate}")
        for name in ("d_hidden", "g_hidden"):
            sizes(getattr(self, name), name)

    @property
    def subset_seed(self) -> int:
        return self.seed if self.label_seed is None else self.label_seed

    def to_json(self) -> str:
        return json.dumps({"config": type(self).__name__, **dataclasses.asdict(self)}, indent=2)


def sizes(text: str, name: str = "sizes") -> tuple[int, ...]:
    """``"1000,500"`` -> ``(1000, 500)``."""
    try:
        out = tuple(int(t) for t in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise ValueError(f"{name} must be comma-separated positive sizes, got {text!r}")
    return out


def load_config(path: str | Path) -> SSLConfig:
    d = json.loads(Path(path).read_text())
    if d.pop("config", None) != "SSLConfig":
        raise ValueError(f"{path} is not the config of a semi-supervised run")
    return SSLConfig(**d)


# --------------------------------------------------------------------------------------
# Data: the labelled subset, the unlabelled rest, their batch streams
# --------------------------------------------------------------------------------------


def select_labelled(labels: np.ndarray, n: int, num_classes: int, seed: int) -> np.ndarray:
    """Indices of ``n`` examples, ``n / num_classes`` of each class, chosen by ``seed``.

    As the official code: a seeded permutation of the training set, then the first
    ``n / K`` examples of each class in that order. Returned in class order.
    """
    if n % num_classes:
        raise ValueError(f"{n} labels cannot be balanced over {num_classes} classes")
    per_class = n // num_classes
    order = np.random.default_rng(seed).permutation(len(labels))
    picked = []
    for k in range(num_classes):
        of_k = order[labels[order] == k][:per_class]
        if len(of_k) < per_class:
            raise ValueError(f"class {k} has only {len(of_k)} examples, {per_class} needed")
        picked.append(of_k)
    return np.concatenate(picked)


class SubsetSource:
    """The examples ``indices`` of a source (the unlabelled part of a training set)."""

    def __init__(self, source, indices: np.ndarray):
        self.source = source
        self.indices = np.asarray(indices, np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source[int(self.indices[index])]


def labelled_batches(n: int, batch_size: int, *, seed: int, start_step: int = 0
                     ) -> Iterator[np.ndarray]:
    """Batches of indices into a labelled set of ``n``: an endless sequence of its
    permutations, cut into batches (the official tiling, which for ``n < batch_size`` repeats
    each example within a batch). Batch ``s`` is a function of ``(seed, s)`` only, so a
    resumed run continues the same stream."""
    cache: dict[int, np.ndarray] = {}

    def perm(k: int) -> np.ndarray:
        if k not in cache:
            if len(cache) > 4:
                cache.clear()
            cache[k] = np.random.default_rng([seed, k]).permutation(n)
        return cache[k]

    step = start_step
    while True:
        pos = np.arange(step * batch_size, (step + 1) * batch_size)
        yield np.array([perm(int(p // n))[int(p % n)] for p in pos], np.int64)
        step += 1


@dataclasses.dataclass(frozen=True)
class SSLData:
    """A semi-supervised split: the labelled arrays, the unlabelled `Dataset`, the test set."""

    x_lab: np.ndarray
    y_lab: np.ndarray
    labelled_indices: np.ndarray
    unlabelled: Any  # jaxgan.data.Dataset
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    description: str

    def batches(self, batch_size: int, *, seed: int, start_step: int = 0) -> Iterator[dict]:
        """``{"x_lab", "y_lab", "x_unl", "x_unl2"}`` numpy batches from ``start_step`` on."""
        unl = self.unlabelled.batches(batch_size, seed=seed, start_step=start_step, num_threads=1)
        # A second, independent shuffle for G's feature matching (the official trainx_unl2).
        unl2 = self.unlabelled.batches(
            batch_size, seed=seed + 7919, start_step=start_step, num_threads=1
        )
        lab = labelled_batches(len(self.y_lab), batch_size, seed=seed, start_step=start_step)
        for a, b, idx in zip(unl, unl2, lab):
            yield {"x_lab": self.x_lab[idx], "y_lab": self.y_lab[idx], "x_unl": a["x"],
                   "x_unl2": b["x"]}


def load_ssl_data(cfg: SSLConfig) -> SSLData:
    """The training split cut into labelled / unlabelled by the config, and the test split."""
    from jaxgan.data import Dataset, load_dataset

    train = load_dataset(cfg.dataset, data_dir=cfg.data_dir, split="train")
    if train.num_classes is None or train.source is None:
        raise ValueError(f"{cfg.dataset} has no labelled images; use mnist or fashion_mnist")
    x_train, y_train = train.arrays()
    idx = select_labelled(y_train, cfg.labels, train.num_classes, cfg.subset_seed)
    rest = np.setdiff1d(np.arange(len(y_train)), idx) if cfg.unlabelled == "rest" else (
        np.arange(len(y_train)))
    unlabelled = Dataset(
        name=f"{train.name}-unlabelled", example_shape=train.example_shape,
        num_examples=len(rest), num_classes=train.num_classes,
        description=f"{len(rest):,} unlabelled of {train.description}",
        source=SubsetSource(train.source, rest),
    )
    x_test, y_test = load_dataset(cfg.dataset, data_dir=cfg.data_dir, split="test").arrays()
    return SSLData(
        x_lab=x_train[idx], y_lab=y_train[idx], labelled_indices=idx, unlabelled=unlabelled,
        x_test=x_test, y_test=y_test, num_classes=train.num_classes,
        description=(f"{train.description}: {cfg.labels} labelled (seed {cfg.subset_seed}), "
                     f"{len(rest):,} unlabelled; test {len(y_test):,}"),
    )


def to_unit(x):
    """jaxgan's [-1, 1] pixels -> the official code's [0, 1]."""
    return (x + 1.0) * 0.5


# --------------------------------------------------------------------------------------
# State and step
# --------------------------------------------------------------------------------------


@struct.dataclass
class SSLState:
    """Everything a semi-supervised run changes, as one pytree.

    Attributes:
      step: completed train steps (int32 scalar); keys derive from it.
      key: the run's base PRNG key.
      g_params, g_stats, d_params, d_stats: the networks' parameters and other state (G's
        batch-norm averages; D's fixed weight-norm scales).
      g_opt, d_opt: Adam states.
      d_avg: the zero-started moving average of ``d_params`` (see `averaged_d_params`).
    """

    step: Array
    key: Array
    g_params: nnx.State
    g_stats: nnx.State
    d_params: nnx.State
    d_stats: nnx.State
    g_opt: optax.OptState
    d_opt: optax.OptState
    d_avg: nnx.State


@dataclasses.dataclass(frozen=True)
class SSLNets:
    """The static half: graph definitions (train and inference mode) and optimisers."""

    g_graph: Any
    d_graph: Any
    d_eval: Any
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    z_dim: int
    num_classes: int


def adam(cfg: SSLConfig) -> optax.GradientTransformation:
    # The official nn.adam_updates divides by sqrt(v_hat + 1e-8): optax's eps_root, not eps.
    return optax.adam(cfg.lr, b1=cfg.beta1, b2=cfg.beta2, eps=0.0, eps_root=1e-8)


def sample_z(key: Array, n: int, z_dim: int) -> Array:
    """The official G's noise, ``U(0, 1)^z_dim``."""
    return jax.random.uniform(key, (n, z_dim))


def init_state(cfg: SSLConfig, x_init: np.ndarray | None, num_classes: int = 10,
               example_shape: tuple[int, ...] = (28, 28, 1)) -> tuple[SSLNets, SSLState]:
    """Networks, optimisers and the initial state from ``cfg.seed``.

    ``x_init`` (``(n, ...)`` images in [-1, 1]) drives D's data-dependent initialisation
    (every weight-normalised layer's units get zero mean and unit variance on it, noise on,
    as the official ``init_param(trainx[:500])``); ``None`` skips it (a placeholder state to
    restore a checkpoint into).
    """
    from jaxgan.nets.ssl_mnist import SSLMnistDiscriminator, SSLMnistGenerator
    from jaxgan.nets.techniques import data_dependent_init

    key = jax.random.PRNGKey(cfg.seed)
    g_key, d_key, ddi_key, run_key = jax.random.split(key, 4)
    in_dim = math.prod(example_shape)
    g = SSLMnistGenerator(
        z_dim=cfg.z_dim, hidden=sizes(cfg.g_hidden), out_shape=example_shape, rngs=nnx.Rngs(g_key)
    )
    d = SSLMnistDiscriminator(
        in_dim=in_dim, hidden=sizes(cfg.d_hidden), num_classes=num_classes, input_noise=cfg.input_noise,
        hidden_noise=cfg.hidden_noise, rngs=nnx.Rngs(d_key),
    )
    if x_init is not None:
        x = to_unit(jnp.asarray(x_init, jnp.float32)).reshape(len(x_init), -1)
        data_dependent_init(d, lambda m: m(x, rngs=nnx.Rngs(noise=ddi_key)))
    g_graph, g_params, g_stats = nnx.split(g, nnx.Param, ...)
    d_graph, d_params, d_stats = nnx.split(d, nnx.Param, ...)
    tx = adam(cfg)
    nets = SSLNets(
        g_graph=g_graph, d_graph=d_graph, d_eval=nnx.split(eval_view(d), nnx.Param, ...)[0],
        g_tx=tx, d_tx=tx, z_dim=cfg.z_dim, num_classes=num_classes,
    )
    state = SSLState(
        step=jnp.zeros((), jnp.int32), key=run_key, g_params=g_params, g_stats=g_stats,
        d_params=d_params, d_stats=d_stats, g_opt=tx.init(g_params), d_opt=tx.init(d_params),
        d_avg=jax.tree.map(jnp.zeros_like, d_params),
    )
    return nets, state


def averaged_d_params(state: SSLState, rate: float) -> nnx.State:
    """The moving average of D's parameters, bias-corrected: ``avg / (1 - (1 - rate)^t)``,
    i.e. ``sum_i rate (1 - rate)^(t - i) theta_i`` normalised to weights summing to 1.
    D's current parameters before the first step or when ``rate`` is 0."""
    if not rate:
        return state.d_params
    t = state.step.astype(jnp.float32)
    norm = -jnp.expm1(t * jnp.log1p(-rate))  # 1 - (1 - rate)^t, accurate for small rate
    safe = jnp.where(t > 0, norm, 1.0)
    return jax.tree.map(
        lambda a, p: jnp.where(t > 0, a / safe, p), state.d_avg, state.d_params
    )


def make_train_step(cfg: SSLConfig, nets: SSLNets, *, jit: bool = True
                    ) -> Callable[[SSLState, dict], tuple[SSLState, dict]]:
    """``train_step(state, batch) -> (state, metrics)``, one official iteration.

    ``batch``: ``x_lab`` ``(B, ...)``, ``y_lab`` ``(B,)``, ``x_unl``, ``x_unl2`` ``(B, ...)``
    in [-1, 1]. Metrics: ``loss_lab`` (L_sup), ``loss_unl`` (L_unsup, unweighted),
    ``train_err`` (on the labelled batch, noise on), ``g_loss`` (feature matching),
    ``d_real`` / ``d_fake`` (mean ``D = Z / (Z + 1)``), gradient norms.

    The labelled, unlabelled and generated batches go through D in one call (D has no batch
    statistics and every example draws its own noise, so this is three calls' arithmetic in
    one larger matrix product).
    """
    w = cfg.unsup_weight

    def noise(key):
        return nnx.Rngs(noise=key)

    def generate(params, stats, key, n):
        return apply(nets.g_graph, params, stats, sample_z(key, n, nets.z_dim))

    def d_loss_fn(d_params, d_stats, x_lab, y_lab, x_unl, fake, key):
        n_lab, n_unl = x_lab.shape[0], x_unl.shape[0]
        x = jnp.concatenate([x_lab, x_unl, fake]).reshape(n_lab + n_unl + fake.shape[0], -1)
        logits = apply(nets.d_graph, d_params, d_stats, x, rngs=noise(key))[0]
        l_lab, l_unl, l_fake = logits[:n_lab], logits[n_lab:n_lab + n_unl], logits[n_lab + n_unl:]
        loss_lab = jnp.mean(losses.ssl_sup_loss(l_lab, y_lab))
        loss_unl = jnp.mean(losses.ssl_d_unsup_loss(l_unl, l_fake))
        aux = {
            "loss_lab": loss_lab,
            "loss_unl": loss_unl,
            "train_err": jnp.mean(jnp.argmax(l_lab, axis=-1) != y_lab),
            "d_real": jnp.mean(jax.nn.sigmoid(losses.ssl_real_logit(l_unl))),
            "d_fake": jnp.mean(jax.nn.sigmoid(losses.ssl_real_logit(l_fake))),
        }
        return loss_lab + w * loss_unl, aux

    def d_features(d_params, d_stats, x, key):
        x = x.reshape(x.shape[0], -1)
        return call(nets.d_graph, d_params, d_stats, lambda d: d.features(x, rngs=noise(key)))[0]

    def g_loss_fn(g_params, g_stats, d_params, d_stats, real_f, key):
        kg, kd = jax.random.split(key)
        fake, g_stats = generate(g_params, g_stats, kg, real_f.shape[0])
        fake_f = d_features(d_params, d_stats, fake, kd)
        return losses.feature_matching(real_f, fake_f), g_stats

    def train_step(state: SSLState, batch: dict) -> tuple[SSLState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        k_fake, k_d, k_g = jax.random.split(key, 3)
        x_lab, x_unl, x_unl2 = (to_unit(batch[k]) for k in ("x_lab", "x_unl", "x_unl2"))
        # G in train mode (batch statistics, as always in the official code); only the G
        # update advances its running averages.
        fake = jax.lax.stop_gradient(
            generate(state.g_params, state.g_stats, k_fake, x_unl.shape[0])[0]
        )
        (d_loss, aux), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state.d_params, state.d_stats, x_lab, batch["y_lab"], x_unl, fake, k_d
        )
        updates, d_opt = nets.d_tx.update(d_grads, state.d_opt, state.d_params)
        d_params = optax.apply_updates(state.d_params, updates)
        d_avg = jax.tree.map(lambda a, p: a + cfg.ema_rate * (p - a), state.d_avg, d_params)

        # G matches the features of the D just updated (the official train_batch_gen runs
        # after train_batch_disc); the real features need no gradient, so they are computed
        # outside it.
        k_real, k_g = jax.random.split(k_g)
        real_f = d_features(d_params, state.d_stats, x_unl2, k_real)
        g_params, g_stats, g_opt = state.g_params, state.g_stats, state.g_opt
        for i in range(cfg.g_steps):
            # Further G updates (g_steps > 1) match the same real features with new noise.
            (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
                g_params, g_stats, d_params, state.d_stats, real_f, jax.random.fold_in(k_g, i)
            )
            updates, g_opt = nets.g_tx.update(g_grads, g_opt, g_params)
            g_params = optax.apply_updates(g_params, updates)
        new_state = state.replace(
            step=state.step + 1, g_params=g_params, g_stats=g_stats, d_params=d_params,
            g_opt=g_opt, d_opt=d_opt, d_avg=d_avg,
        )
        metrics = {
            **aux,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_grad_norm": optax.tree.norm(d_grads),
            "g_grad_norm": optax.tree.norm(g_grads),
        }
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0) if jit else train_step


# --------------------------------------------------------------------------------------
# Evaluation and samples
# --------------------------------------------------------------------------------------


def make_classifier(nets: SSLNets) -> Callable:
    """``predict(d_params, d_stats, x) -> (N,) classes``: D in inference mode (no noise)."""

    @jax.jit
    def predict(d_params, d_stats, x):
        logits = apply(nets.d_eval, d_params, d_stats, to_unit(x).reshape(x.shape[0], -1))[0]
        return jnp.argmax(logits, axis=-1)

    return predict


def test_error(predict, d_params, d_stats, x: np.ndarray, y: np.ndarray, chunk: int = 1000
               ) -> float:
    """Fraction of ``x`` misclassified (``x`` in [-1, 1])."""
    wrong = 0
    for i in range(0, len(x), chunk):
        pred = predict(d_params, d_stats, jnp.asarray(x[i : i + chunk]))
        wrong += int(jnp.sum(pred != jnp.asarray(y[i : i + chunk])))
    return wrong / len(x)


def make_sampler(nets: SSLNets) -> Callable:
    """``sample(state, z) -> (N, 28, 28, 1)`` in [-1, 1]: G on the batch's statistics (the
    official G never uses running averages), its state untouched."""

    @jax.jit
    def sample(state: SSLState, z: Array) -> Array:
        x = apply(nets.g_graph, state.g_params, state.g_stats, z)[0]
        return x * 2.0 - 1.0

    return sample


def save_error_curve(path: str | Path, records: list[dict], *, title: str = "") -> None:
    """Test error (EMA and current D) against the epoch."""
    from jaxgan import plots

    plt = plots.plt
    rows = [r for r in records if "test_error" in r]
    if not rows:
        return
    epoch = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=110)
    ax.plot(epoch, [100 * r["test_error"] for r in rows], marker="o", ms=3,
            label="moving average of D")
    if "test_error_raw" in rows[0]:
        ax.plot(epoch, [100 * r["test_error_raw"] for r in rows], alpha=0.6, label="current D")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test error (%)")
    plots.log_y(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------------------
# A run
# --------------------------------------------------------------------------------------


def train(cfg: SSLConfig, out: str | Path, *, resume: bool = False, progress: bool = True,
          data: SSLData | None = None):
    """Trains ``cfg`` into ``out`` (``--resume``: from its latest checkpoint).

    Writes ``config.json``, ``data.json`` (the split, with the labelled indices),
    ``metrics.jsonl`` (training metrics every ``log_every`` steps; per epoch ``test_error``
    with the averaged D, ``test_error_raw`` with the current one, ``elapsed`` seconds),
    ``test_error.png``, ``samples/epoch_NNN.png``, ``samples.png``, ``checkpoints/``.

    Returns:
      ``(state, nets, history)``, history the per-epoch evaluation records.
    """
    from jaxgan import plots
    from jaxgan.checkpoint import Checkpointer
    from jaxgan.loop import run

    out = Path(out)
    if resume:
        saved = load_config(out / "config.json")
        diff = {f.name for f in dataclasses.fields(cfg) if getattr(saved, f.name) != getattr(cfg, f.name)}
        if diff - {"epochs", "steps"}:
            raise ValueError(f"--resume with a config that differs in {sorted(diff)}")
    elif (out / "checkpoints").exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume or choose another --out")
    data = load_ssl_data(cfg) if data is None else data
    order = np.random.default_rng(cfg.seed).permutation(data.unlabelled.num_examples)
    x_init = np.stack([
        np.asarray(data.unlabelled.source[int(i)]["image"]) for i in order[: cfg.init_examples]
    ]).astype(np.float32) / np.float32(127.5) - 1.0
    nets, state = init_state(cfg, x_init, data.num_classes, data.unlabelled.example_shape)
    ckpt = Checkpointer(out / "checkpoints")
    if resume:
        state, _ = ckpt.restore(state)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.to_json())
    (out / "data.json").write_text(json.dumps({
        "description": data.description,
        "labelled_indices": data.labelled_indices.tolist(),
        "num_unlabelled": data.unlabelled.num_examples,
        "num_test": len(data.y_test),
    }))

    steps_per_epoch = data.unlabelled.steps_per_epoch(cfg.batch_size)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    step_fn = make_train_step(cfg, nets)
    predict = make_classifier(nets)
    sample = make_sampler(nets)
    z = sample_z(jax.random.PRNGKey(cfg.seed + 1_000_003), cfg.num_samples, cfg.z_dim)
    records_path = out / "metrics.jsonl"
    history: list[dict] = []
    t0 = time.perf_counter()

    def on_epoch(state: SSLState, epoch: int) -> dict:
        avg = averaged_d_params(state, cfg.ema_rate)
        result = {
            "test_error": test_error(predict, avg, state.d_stats, data.x_test, data.y_test),
            "test_error_raw": test_error(
                predict, state.d_params, state.d_stats, data.x_test, data.y_test
            ),
            "elapsed": round(time.perf_counter() - t0, 1),
        }
        history.append({"epoch": epoch, "step": int(state.step), **result})
        title = (f"K+1 GAN, {cfg.labels} labels, epoch {epoch}: test error "
                 f"{100 * result['test_error']:.2f}%")
        path = out / "samples" / f"epoch_{epoch:03d}.png"
        plots.save_image_grid(path, np.asarray(sample(state, z)), scale=2)
        shutil.copyfile(path, out / "samples.png")
        save_error_curve(out / "test_error.png", plots.read_metrics(records_path) + [
            {"epoch": epoch, **result}], title=title)
        if progress:
            print(f"epoch {epoch}: test error {100 * result['test_error']:.2f}% "
                  f"(current D {100 * result['test_error_raw']:.2f}%), "
                  f"{result['elapsed']:.0f} s", flush=True)
        return result

    batches = data.batches(cfg.batch_size, seed=cfg.seed, start_step=int(state.step))
    state = run(
        state, step_fn, batches, total_steps=total, steps_per_epoch=steps_per_epoch,
        out_dir=out, checkpointer=ckpt, on_epoch=on_epoch, log_every=cfg.log_every,
        meta={"config": json.loads(cfg.to_json())}, desc=f"ssl/{cfg.labels} labels",
        progress=progress,
    )
    ckpt.close()
    return state, nets, history
