"""`make_train_step`: one jitted function ``(GANState, batch) -> (GANState, metrics)``.

A GAN variant is not a trainer: it is a choice of networks, objective and techniques
(Salimans et al. 2016, `jaxgan.configs.Techniques`) that this factory composes into a single
step (Goodfellow et al. 2014, Algorithm 1: ``k`` D updates, then one G update, which scores
the samples of the last D update as the official DCGAN code does). All randomness derives
from ``fold_in(state.key, state.step)``, so the same seed gives the same bits and a resumed
run continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxgan import health, losses
from jaxgan.augment import diff_augment
from jaxgan.averaging import (
    ema_tracker_read,
    ema_tracker_update,
    history_penalty,
    running_mean_update,
)
from jaxgan.configs import Stabilisers, Techniques
from jaxgan.functional import apply, call, interleave_rows, row_grouped
from jaxgan.nets.features import layer_features
from jaxgan.noise import sample_z
from jaxgan.objectives import Objective, resolve
from jaxgan.state import GANState, Networks

Array = jax.Array


def _mean_output(logits: Array, objective: Objective) -> Array:
    # Sigmoid objectives read D's output as a probability; least squares' is linear.
    return jnp.mean(jax.nn.sigmoid(logits) if objective.sigmoid_output else logits)


def make_train_step(
    objective: Objective,
    nets: Networks,
    *,
    n_critic: int = 1,
    techniques: Techniques = Techniques(),
    stabilisers: Stabilisers = Stabilisers(),
    z_dist: str = "normal",
    jit: bool = True,
    merge_real_fake: bool = True,
    reuse_fake: bool = True,
) -> Callable[[GANState, dict], tuple[GANState, dict]]:
    """Builds the train step for one objective and one pair of networks.

    Args:
      objective: the (D loss, G loss) pair, label smoothing already folded in
        (`jaxgan.objectives.resolve`; `make_step` resolves a config).
      nets: static graph definitions and optimisers from `jaxgan.state.split_networks`.
      n_critic: D updates per G update (Algorithm 1's ``k``). Each D update takes its own
        slice of real data, so ``batch["x"]`` holds ``n_critic * B`` examples.
      techniques: the loss techniques of Salimans et al. 2016 (`jaxgan.configs.Techniques`).
        Feature matching replaces the objective's G loss (real features from the step's last
        D slice, both batches through D in train mode); historical averaging adds
        ``weight * ||theta - mean||^2`` to each player's loss and advances the means in
        ``state.extra`` after every update (each D update counts). Minibatch discrimination
        and virtual batch norm live in the networks (`jaxgan.nets.build`); label smoothing in
        the objective.
      stabilisers: `jaxgan.configs.Stabilisers`. DiffAugment transforms every batch D sees,
        real and fake, in both updates (penalties are taken on what D sees); R1 / R2 add
        ``gamma / 2 * ||grad_x D(x)||^2`` on the real / fake batch to D's loss, every
        ``reg_every``-th D update weighted by ``reg_every``; G's EMA is advanced after each
        G update in ``state.extra["g_ema"]`` and read by `make_sampler`. Spectral norm lives
        in D (`jaxgan.nets.build`).
      z_dist: latent noise (`jaxgan.noise.sample_z`).
      jit: compile with ``jax.jit(donate_argnums=0)`` (the state's buffers are reused).
      merge_real_fake: when one call of D on both batches computes the two calls
        (``nets.d_merges_batches``: D mixes no examples, or only by row-group layers: dropout
        drawing each batch's masks from its own stream, BatchNorm normalising each batch by
        its own statistics), the D update scores real and fake data in one call on their
        rows interleaved (`jaxgan.functional.interleave_rows`: split across devices, no rows
        move between them): the same numbers as two calls, with one matrix product of 2B
        rows per layer instead of two of B (on a 2-core CPU ring8's step runs about 1.13x
        faster, LSGAN's MNIST step 1.04x).
        ``False`` keeps two calls always (the reference the tests compare against).
      reuse_fake: the G update scores the samples G drew for the last D update (the same
        noise, as the official DCGAN code and the PyTorch references do), so G's forward
        pass runs once, kept for its gradient (`jax.vjp`), instead of twice: 9% of the FLOPs
        of LSGAN's MNIST step, 16% of ring8's. ``False`` runs G again on the same noise
        inside the G update's loss (the reference the tests compare against).

    Returns:
      ``train_step(state, batch) -> (state, metrics)``; metrics are scalar arrays: both
      losses, mean D output on real and fake data, gradient norms, D's accuracy on real and
      fake and the fake batch's spread (`jaxgan.health`; of the last D update), and with
      historical averaging both unweighted penalties, ``d_hist_penalty`` and
      ``g_hist_penalty``; with R1 / R2 ``r1_penalty`` / ``r2_penalty`` (the mean squared
      norm, times ``reg_every`` on the steps that take it and 0 between, so a window's mean
      estimates it); with an AC-GAN D (``nets.d_classifies``) ``d_class_loss`` (its class
      cross-entropy on real plus that on fake data) and ``g_class_loss`` (on G's samples).
    """
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")
    tech = techniques
    stab = stabilisers
    hist_weight = tech.historical_avg
    policy = stab.diffaug_policy
    relativistic = objective.relativistic
    merge = merge_real_fake and nets.d_merges_batches

    def generate(params, stats, key, n):
        kz, ky = jax.random.split(key)
        z = sample_z(kz, (n, nets.z_dim), z_dist)
        if not nets.conditional:
            return apply(nets.g_graph, params, stats, z), None
        # Fake labels are drawn uniformly, so G learns every class equally.
        y = jax.random.randint(ky, (n,), 0, nets.num_classes)
        return apply(nets.g_graph, params, stats, z, y), y

    def d_inputs(x, y, key):
        args = (x, y) if nets.conditional else (x,)
        if not nets.d_dropout:
            return args, {}
        # A tuple of keys: one call on equal batches stacked, each batch with its own stream.
        rngs = (tuple(nnx.Rngs(dropout=k) for k in key) if isinstance(key, tuple)
                else nnx.Rngs(dropout=key))
        return args, {"rngs": rngs}

    def discriminate(params, stats, x, y, key):
        """D's logits, its new statistics, and AC-GAN's class logits (else None). A tuple
        of keys, one per equal batch that ``x`` interleaves, also tells D's BatchNorm layers
        to normalise each batch alone (`jaxgan.nets.layers.GroupedBatchNorm`)."""
        args, kwargs = d_inputs(x, y, key)

        def run(d):
            if isinstance(key, tuple):
                d = nnx.view(d, row_groups=len(key), raise_if_not_found=False)
            return d(*args, **kwargs)

        out, stats = call(nets.d_graph, params, stats, run)
        # Losses in float32 whatever D computes in (`TrainConfig.precision`).
        if nets.d_classifies:
            return out[0].astype(jnp.float32), stats, out[1].astype(jnp.float32)
        return out.astype(jnp.float32), stats, None

    def class_loss(class_logits, y):
        # AC-GAN's L_C as a loss (Odena et al. 2017, Eq. 2), a mean over the batch.
        return jnp.mean(losses.class_cross_entropy(class_logits, y))

    def augment(x, key, salt):
        # Keys of their own (fold_in, not a wider split), so that switching DiffAugment on
        # leaves every other random stream of the step as it was.
        return diff_augment(x, jax.random.fold_in(key, salt), policy=policy) if policy else x

    def input_penalty(x, y, d_params, d_stats, key, on):
        """Mean ``||grad_x D(x)||^2`` on ``x`` (R1 on real, R2 on fake data), taken when
        ``on`` (lazy regularisation) and weighted by ``reg_every`` so its mean holds."""
        def take():
            def critic(v):
                return discriminate(d_params, d_stats, v, y, key)[0]
            return stab.reg_every * jnp.mean(losses.input_gradient_penalty(critic, x))

        if stab.reg_every == 1:
            return take()
        return jax.lax.cond(on, take, lambda: jnp.zeros((), jnp.float32))

    def d_features(params, stats, x, y, key):
        # D in train mode, as in the D update; its statistics from this pass are dropped.
        args, kwargs = d_inputs(x, y, key)
        return call(
            nets.d_graph, params, stats,
            lambda d: layer_features(d, tech.fm_layer, *args, **kwargs),
        )[0].astype(jnp.float32)

    def d_loss_fn(d_params, d_stats, real, real_y, fake, fake_y, key, d_hist, reg_on):
        # Real and fake go through D separately, so each BatchNorm batch is pure (as DCGAN
        # and the PyTorch references do) and minibatch discrimination compares each batch
        # only with itself (Salimans et al. 2016, Sec. 3.2); a D whose layers keep the two
        # batches apart takes both in one call (`merge`), which computes the same.
        k1, k2, k3, k4 = jax.random.split(key, 4)
        real, fake = augment(real, key, 101), augment(fake, key, 102)
        if merge:
            # Rows interleaved, so that split across devices each holds its own rows of
            # both (`interleave_rows`). Dropout masks from k1 for the real rows and k2 for
            # the fake, as two calls draw; BatchNorm statistics of each batch, real first,
            # as two calls compute.
            both_y = None if real_y is None else interleave_rows(real_y, fake_y)
            logits, d_stats, cls = discriminate(
                d_params, d_stats, interleave_rows(real, fake), both_y, (k1, k2))
            logits = row_grouped(logits, 2)
            real_logits, fake_logits = logits[:, 0], logits[:, 1]
            if cls is not None:
                cls = row_grouped(cls, 2)
            real_cls, fake_cls = (None, None) if cls is None else (cls[:, 0], cls[:, 1])
        else:
            real_logits, d_stats, real_cls = discriminate(d_params, d_stats, real, real_y, k1)
            fake_logits, d_stats, fake_cls = discriminate(d_params, d_stats, fake, fake_y, k2)
        loss = jnp.mean(objective.d_loss(real_logits, fake_logits))
        regs = {}
        if nets.d_classifies:
            # D classifies real and generated examples alike (L_C over both, the paper's
            # Eq. 2); its weight is the source loss's, as in the paper.
            regs["d_class_loss"] = class_loss(real_cls, real_y) + class_loss(fake_cls, fake_y)
            loss = loss + regs["d_class_loss"]
        if objective.gradient_penalty:
            # Interpolates keep the real labels (a conditional critic's penalty is taken on
            # the real class); BatchNorm statistics of this pass are dropped.
            def critic(x):
                return discriminate(d_params, d_stats, x, real_y, k4)[0]

            gp = losses.gradient_penalty(critic, real, fake, k3)
            loss = loss + objective.gradient_penalty * jnp.mean(gp)
        if stab.r1:
            regs["r1_penalty"] = input_penalty(real, real_y, d_params, d_stats,
                                               jax.random.fold_in(key, 103), reg_on)
            loss = loss + 0.5 * stab.r1 * regs["r1_penalty"]
        if stab.r2:
            regs["r2_penalty"] = input_penalty(fake, fake_y, d_params, d_stats,
                                               jax.random.fold_in(key, 104), reg_on)
            loss = loss + 0.5 * stab.r2 * regs["r2_penalty"]
        hist = jnp.zeros(())
        if hist_weight:
            hist = history_penalty(d_params, d_hist)
            loss = loss + hist_weight * hist
        return loss, (d_stats, real_logits, fake_logits, hist, regs)

    def g_loss_fn(fake, fake_y, d_params, d_stats, key, real, real_y):
        """G's loss on its samples ``fake`` (with labels ``fake_y``), historical averaging
        aside, and its aux metrics."""
        # Three keys, the first unused: D's views of the G update kept the keys they had
        # when the G update drew noise of its own.
        _, kd, kr = jax.random.split(key, 3)
        # G sees D through the same augmentations as D's own update (Zhao et al. 2020).
        fake_seen, real = augment(fake, key, 102), augment(real, key, 101)
        fake_cls = None
        if tech.feature_matching:
            real_f = jax.lax.stop_gradient(d_features(d_params, d_stats, real, real_y, kr))
            fake_f = d_features(d_params, d_stats, fake_seen, fake_y, kd)
            loss = losses.feature_matching(real_f, fake_f, reduce=tech.fm_reduce)
        else:
            # D's statistics from this pass are dropped: the G update changes only G.
            fake_logits, _, fake_cls = discriminate(d_params, d_stats, fake_seen, fake_y, kd)
            if relativistic:
                # G's relativistic loss also pulls D's outputs on real data down.
                real_logits, _, _ = discriminate(d_params, d_stats, real, real_y, kr)
                loss = jnp.mean(objective.g_loss(fake_logits, real_logits))
            else:
                loss = jnp.mean(objective.g_loss(fake_logits))
        aux = {}
        if nets.d_classifies:
            # AC-GAN's G also wants its samples classified as the labels it was given.
            if fake_cls is None:  # feature matching did not score the fakes
                fake_cls = discriminate(d_params, d_stats, fake_seen, fake_y, kd)[2]
            aux["g_class_loss"] = class_loss(fake_cls, fake_y)
            loss = loss + aux["g_class_loss"]
        return loss, aux

    def train_step(state: GANState, batch: dict) -> tuple[GANState, dict]:
        x = batch["x"]
        if x.shape[0] % n_critic:
            raise ValueError(
                f"batch of {x.shape[0]} examples cannot be split into n_critic={n_critic} "
                "D updates; use a batch of n_critic * batch_size"
            )
        y = batch.get("y") if nets.conditional else None
        if nets.conditional and y is None:
            raise ValueError("a conditional model needs labels: batch['y'] is missing")
        extra = dict(state.extra)
        if hist_weight and not {"g_hist", "d_hist"} <= set(extra):
            raise ValueError(
                "historical averaging needs the parameter means in state.extra: build the "
                "state with init_state from a config with historical_avg > 0 (or "
                "split_networks(..., techniques=...))"
            )
        n = x.shape[0] // n_critic
        key = jax.random.fold_in(state.key, state.step)
        d_keys = jax.random.split(jax.random.fold_in(key, 0), 2 * n_critic)
        d_params, d_stats, d_opt = state.d_params, state.d_stats, state.d_opt

        # The G update scores G's samples of the last D update: the same noise, and G's
        # parameters have not moved in between, so its samples are the same numbers.
        g_key = d_keys[2 * (n_critic - 1)]

        def g_forward(g_params):
            (fake, g_stats), fake_y = generate(g_params, state.g_stats, g_key, n)
            return fake, (g_stats, fake_y)

        if reuse_fake:
            # One G forward pass for both updates; its pullback takes G's gradient below.
            g_fake, g_pullback, (g_stats, g_fake_y) = jax.vjp(
                g_forward, state.g_params, has_aux=True)
        for i in range(n_critic):
            if reuse_fake and i == n_critic - 1:
                fake, fake_y = g_fake, g_fake_y
            else:
                # G runs in train mode (batch statistics) as in the G update; its running
                # statistics are only advanced by the G update.
                (fake, _), fake_y = generate(state.g_params, state.g_stats, d_keys[2 * i], n)
            real_y = None if y is None else y[i * n : (i + 1) * n]
            # Lazy regularisation counts D updates, so n_critic > 1 spreads it evenly.
            reg_on = (state.step * n_critic + i) % stab.reg_every == 0
            (d_loss, (d_stats, real_logits, fake_logits, d_pen, regs)), d_grads = (
                jax.value_and_grad(d_loss_fn, has_aux=True)(
                    d_params, d_stats, x[i * n : (i + 1) * n], real_y,
                    jax.lax.stop_gradient(fake), fake_y, d_keys[2 * i + 1],
                    extra.get("d_hist"), reg_on,
                ))
            updates, d_opt = nets.d_tx.update(d_grads, d_opt, d_params)
            d_params = optax.apply_updates(d_params, updates)
            if hist_weight:
                extra["d_hist"] = running_mean_update(extra["d_hist"], d_params)

        # Feature matching's real batch: the last D update's slice.
        last = slice((n_critic - 1) * n, n_critic * n)
        d_acc_real, d_acc_fake = health.accuracy(real_logits, fake_logits, objective.decision)
        g_args = (d_params, d_stats, jax.random.fold_in(key, 1), x[last],
                  None if y is None else y[last])
        if reuse_fake:
            (g_loss, g_aux), d_fake = jax.value_and_grad(g_loss_fn, has_aux=True)(
                fake, fake_y, *g_args)
            (g_grads,) = g_pullback(d_fake)
        else:
            def plain_g_loss(g_params):
                fake, (g_stats, fake_y) = g_forward(g_params)
                loss, aux = g_loss_fn(fake, fake_y, *g_args)
                return loss, (g_stats, aux)

            (g_loss, (g_stats, g_aux)), g_grads = jax.value_and_grad(
                plain_g_loss, has_aux=True)(state.g_params)
        if hist_weight:
            g_pen, pen_grads = jax.value_and_grad(history_penalty)(state.g_params,
                                                                   extra["g_hist"])
            g_loss = g_loss + hist_weight * g_pen
            g_grads = jax.tree.map(lambda g, p: g + hist_weight * p, g_grads, pen_grads)
        updates, g_opt = nets.g_tx.update(g_grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, updates)
        if hist_weight:
            extra["g_hist"] = running_mean_update(extra["g_hist"], g_params)
        if stab.g_ema:
            if "g_ema" not in extra:
                raise ValueError("G's EMA needs its average in state.extra: build the state "
                                 "with init_state from a config with g_ema > 0")
            extra["g_ema"] = ema_tracker_update(extra["g_ema"], g_params, 1.0 - stab.g_ema)

        new_state = state.replace(
            step=state.step + 1,
            g_params=g_params,
            g_stats=g_stats,
            d_params=d_params,
            d_stats=d_stats,
            g_opt=g_opt,
            d_opt=d_opt,
            extra=extra,
        )
        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": _mean_output(real_logits, objective),
            "d_fake": _mean_output(fake_logits, objective),
            "d_grad_norm": health.grad_norm(d_grads),
            "g_grad_norm": health.grad_norm(g_grads),
            "d_acc_real": d_acc_real,
            "d_acc_fake": d_acc_fake,
            "spread": health.spread(x[last], fake),
        }
        if hist_weight:
            metrics["d_hist_penalty"] = d_pen
            metrics["g_hist_penalty"] = g_pen
        metrics.update(regs)
        metrics.update(g_aux)
        return new_state, metrics

    return jax.jit(train_step, donate_argnums=0) if jit else train_step


def make_step(cfg, nets: Networks, *, jit: bool = True):
    """The train step of a GAN config: its objective, ``n_critic`` and techniques resolved
    once (`jaxgan.objectives.resolve`). Returns ``(step, n_critic)``: a step consumes
    ``n_critic * batch_size`` real examples."""
    objective, n_critic, _ = resolve(cfg)
    step = make_train_step(objective, nets, n_critic=n_critic, techniques=cfg.techniques,
                           stabilisers=cfg.stabilisers, z_dist=cfg.z_dist, jit=jit)
    return step, n_critic


def make_sampler(nets: Networks) -> Callable:
    """``sample(state, z[, y]) -> x``: G in inference mode (running BatchNorm statistics),
    with the moving average of its parameters where the run keeps one (``g_ema``).

    A conditional G needs labels ``y`` (int, shape ``(N,)``); an unconditional one takes none.
    """

    @jax.jit
    def _sample(state: GANState, z: Array, y: Array | None) -> Array:
        args = (z,) if y is None else (z, y)
        params = state.g_params
        if "g_ema" in state.extra:
            params = ema_tracker_read(state.extra["g_ema"], params)
        return apply(nets.g_eval, params, state.g_stats, *args)[0].astype(jnp.float32)

    def sample(state: GANState, z: Array, y: Array | None = None) -> Array:
        check_labels(nets, y, len(z))
        return _sample(state, z, None if y is None else jnp.asarray(y, jnp.int32))

    return sample


def check_labels(nets: Networks, y, n: int) -> None:
    """Clear errors for labels that do not fit the model (checked on the host)."""
    if not nets.conditional:
        if y is not None:
            raise ValueError("labels given to an unconditional model (train with --conditional)")
        return
    if y is None:
        raise ValueError(f"a conditional model needs labels in 0..{nets.num_classes - 1}")
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got shape {y.shape} dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= nets.num_classes):
        raise ValueError(
            f"label out of range: got {y.min()}..{y.max()}, valid 0..{nets.num_classes - 1}"
        )
