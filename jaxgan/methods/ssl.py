"""The semi-supervised K+1-class GAN (Salimans et al. 2016, Sec. 5), as the official MNIST code.

D is a K-class classifier with logits ``l_1..l_K``; generated data is a (K+1)-th class whose
logit is fixed at 0, so ``D(x) = Z / (Z + 1)`` with ``Z = sum_k exp(l_k)``. D minimises

    L = L_sup + w * L_unsup,
    L_sup   = cross-entropy of the K logits on the labelled batch,
    L_unsup = -E_x log D(x) - E_z log(1 - D(G(z)))   (`jaxgan.losses.ssl_d_unsup_loss`),

``w = 0.5`` (the official code's ``0.5 *`` inside ``loss_unl``; ``unsup_weight``), and G
minimises feature matching on D's last hidden layer (`jaxgan.losses.feature_matching`, the
official mean-over-features form). A labelled subset of ``labels`` examples, balanced over the
classes and chosen by ``label_seed``, is all the supervision (`jaxgan.data.semisupervised`);
the rest of the training set is the unlabelled data (``unlabelled="all"`` uses every training image, as the official code,
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
import functools
import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxgan import health, losses, noise, plots, scoring
from jaxgan.averaging import ema_init, ema_read, ema_update
from jaxgan.configs import SSLConfig, sizes
from jaxgan.data import load_dataset
from jaxgan.data.pipeline import scale_images
from jaxgan.data.semisupervised import SSLData, load_ssl_data
from jaxgan.data.sources import read_batch
from jaxgan.functional import apply, call, chunked, eval_view
from jaxgan.methods.base import Method, Run, Samples
from jaxgan.nets.ssl_mnist import SSLMnistDiscriminator, SSLMnistGenerator
from jaxgan.nets.techniques import data_dependent_init
from jaxgan.state import GANState

Array = jax.Array


def to_unit(x):
    """jaxgan's [-1, 1] pixels -> the official code's [0, 1]."""
    return (x + 1.0) * 0.5


# --------------------------------------------------------------------------------------
# State and step
# --------------------------------------------------------------------------------------


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
    return noise.sample_z(key, (n, z_dim), "unit_uniform")


def init_state(cfg: SSLConfig, x_init: np.ndarray | None, num_classes: int = 10,
               example_shape: tuple[int, ...] = (28, 28, 1)) -> tuple[SSLNets, GANState]:
    """Networks, optimisers and the initial state from ``cfg.seed``.

    ``x_init`` (``(n, ...)`` images in [-1, 1]) drives D's data-dependent initialisation
    (every weight-normalised layer's units get zero mean and unit variance on it, noise on,
    as the official ``init_param(trainx[:500])``); ``None`` skips it (a placeholder state to
    restore a checkpoint into).
    """
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
    # The GAN state, with the moving average of D's parameters (zero-started, bias-corrected
    # when read: `averaged_d_params`) in ``extra``.
    state = GANState(
        step=jnp.zeros((), jnp.int32), key=run_key, g_params=g_params, g_stats=g_stats,
        d_params=d_params, d_stats=d_stats, g_opt=tx.init(g_params), d_opt=tx.init(d_params),
        extra={"d_avg": ema_init(d_params)},
    )
    return nets, state


def averaged_d_params(state: GANState, rate: float) -> nnx.State:
    """The moving average of D's parameters, bias-corrected (`jaxgan.averaging.ema_read`);
    D's current parameters before the first step or when ``rate`` is 0."""
    return ema_read(state.extra["d_avg"], state.d_params, state.step, rate)


def make_train_step(cfg: SSLConfig, nets: SSLNets, *, jit: bool = True
                    ) -> Callable[[GANState, dict], tuple[GANState, dict]]:
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
            # D's verdicts (real: Z / (Z + 1) > 1/2, i.e. its real logit > 0) and which of
            # the K classes it sees in the samples (`jaxgan.health`).
            **dict(zip(("d_acc_real", "d_acc_fake"), health.accuracy(
                losses.ssl_real_logit(l_unl), losses.ssl_real_logit(l_fake)))),
            "label_entropy": health.label_entropy(l_fake),
            "spread": health.spread(x_unl, fake),
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

    def train_step(state: GANState, batch: dict) -> tuple[GANState, dict]:
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
        d_avg = ema_update(state.extra["d_avg"], d_params, cfg.ema_rate)

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
            g_opt=g_opt, d_opt=d_opt, extra={**state.extra, "d_avg": d_avg},
        )
        metrics = {
            **aux,
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_grad_norm": health.grad_norm(d_grads),
            "g_grad_norm": health.grad_norm(g_grads),
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
    pred = chunked(functools.partial(predict, d_params, d_stats), x, chunk=chunk)
    return float(np.mean(pred != np.asarray(y)))


def test_errors(predict, state: GANState, rate: float, x: np.ndarray, y: np.ndarray) -> dict:
    """The K+1 GAN's measure: ``test_error`` with the moving average of D's parameters (the
    official code's), ``test_error_raw`` with D's current ones."""
    avg = averaged_d_params(state, rate)
    return {"test_error": test_error(predict, avg, state.d_stats, x, y),
            "test_error_raw": test_error(predict, state.d_params, state.d_stats, x, y)}


def make_sampler(nets: SSLNets) -> Callable:
    """``sample(state, z) -> (N, 28, 28, 1)`` in [-1, 1]: G on the batch's statistics (the
    official G never uses running averages), its state untouched."""

    @jax.jit
    def sample(state: GANState, z: Array) -> Array:
        x = apply(nets.g_graph, state.g_params, state.g_stats, z)[0]
        return x * 2.0 - 1.0

    return sample




# --------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------


def _load_data(cfg: SSLConfig) -> SSLData:
    return load_ssl_data(cfg.dataset, cfg.data_dir, labels=cfg.labels, seed=cfg.subset_seed,
                         unlabelled=cfg.unlabelled)


def _describe(cfg: SSLConfig, data: SSLData) -> dict:
    return {
        "description": data.description,
        "example_shape": list(data.unlabelled.example_shape),
        "num_classes": data.num_classes,
        "labelled_indices": data.labelled_indices.tolist(),
        "num_unlabelled": data.unlabelled.num_examples,
        "num_test": len(data.y_test),
    }


def _init(cfg: SSLConfig, described: dict, data: SSLData | None):
    x_init = None
    if data is not None:
        order = np.random.default_rng(cfg.seed).permutation(data.unlabelled.num_examples)
        images, _ = read_batch(data.unlabelled.source, order[: cfg.init_examples])
        x_init = scale_images(images)
    return init_state(cfg, x_init, described.get("num_classes", 10),
                      tuple(described.get("example_shape", (28, 28, 1))))


def _start(cfg: SSLConfig, nets: SSLNets, data: SSLData, out: Path, progress: bool):
    predict = make_classifier(nets)
    sample = make_sampler(nets)
    z = sample_z(jax.random.PRNGKey(cfg.seed + noise.FIGURE_SEED_OFFSET), cfg.num_samples,
                 cfg.z_dim)
    records_path = out / "metrics.jsonl"
    t0 = time.perf_counter()

    def on_epoch(state: GANState, epoch: int) -> dict:
        result = {**test_errors(predict, state, cfg.ema_rate, data.x_test, data.y_test),
                  "elapsed": round(time.perf_counter() - t0, 1)}
        title = (f"K+1 GAN, {cfg.labels} labels, epoch {epoch}: test error "
                 f"{100 * result['test_error']:.2f}%")
        path = out / "samples" / f"epoch_{epoch:03d}.png"
        plots.save_image_grid(path, np.asarray(sample(state, z)), scale=2)
        shutil.copyfile(path, out / "samples.png")
        plots.save_curves(
            out / "test_error.png", plots.read_metrics(records_path) + [{"epoch": epoch, **result}],
            [("", [("test_error", "moving average of D"), ("test_error_raw", "current D")])],
            title=title, x="epoch", log=True, scale=100, ylabel="test error (%)")
        if progress:
            print(f"epoch {epoch}: test error {100 * result['test_error']:.2f}% "
                  f"(current D {100 * result['test_error_raw']:.2f}%), "
                  f"{result['elapsed']:.0f} s", flush=True)
        return result

    return on_epoch


def _draw(run: Run, z: Array) -> np.ndarray:
    # G on batch statistics (as the official code always runs it): one call per batch of
    # the training batch size, so a sample sees the statistics of batches like G's own.
    sample = make_sampler(run.nets)
    return chunked(lambda z: sample(run.state, jnp.asarray(z)), np.asarray(z),
                   chunk=run.cfg.batch_size, pad=False)


def _sample(run: Run, n: int, seed: int, label: int | None) -> Samples:
    if n < 1:
        raise ValueError(f"-n must be at least 1, got {n}")
    return Samples(_draw(run, sample_z(jax.random.PRNGKey(seed), n, run.cfg.z_dim)))


def _interpolate(run: Run, strips: int, points: int, seed: int, label: int | None) -> Samples:
    z = noise.interpolation_strips(jax.random.PRNGKey(seed), run.cfg.z_dim, strips, points,
                                   "unit_uniform")
    return Samples(_draw(run, z), rows=strips)


def _evaluate(run: Run, n: int, seed: int, data_dir: str | None, progress: bool) -> dict:
    """The test error of D (averaged and current), the K+1 GAN's own measure, and the image
    metrics of G's samples beside the anchors."""
    cfg = run.cfg
    test = load_dataset(cfg.dataset, data_dir=data_dir or cfg.data_dir, split="test").arrays()
    x = _sample(run, n, seed + 12_345, None).x
    result = scoring.score_images(x, cfg.dataset, data_dir or cfg.data_dir, seed=seed,
                                  progress=progress)
    result.update(test_errors(make_classifier(run.nets), run.state, cfg.ema_rate, *test))
    return result


METHOD = Method(
    name="ssl",
    load_data=_load_data,
    describe=_describe,
    init=_init,
    make_step=lambda cfg, nets: (make_train_step(cfg, nets, jit=False), cfg.batch_size),
    batches=lambda cfg, nets, data, per_step, start, shard: data.batches(
        per_step, seed=cfg.seed, start_step=start, shard=shard),
    steps_per_epoch=lambda cfg, data, per_step: data.unlabelled.steps_per_epoch(per_step),
    start=_start,
    sample=_sample,
    interpolate=_interpolate,
    evaluate=_evaluate,
    title=lambda cfg: f"ssl/{cfg.labels} labels",
)
