"""`GANState`, the one pytree a GAN train step takes and returns, and its initialisation.

The networks are Flax NNX modules used functionally (`jaxgan.functional`): they are built
once, ``nnx.split`` into a static graph definition (closed over by the step, never in the
state) and arrays (in the state). Everything that changes during training lives in
``GANState``, so a step is a pure function ``(state, batch) -> (state, metrics)`` that jits
once and checkpoints whole.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from jaxgan.averaging import ema_tracker_init, running_mean_init
from jaxgan.configs import Stabilisers, Techniques
from jaxgan.functional import eval_view, has_dropout, merges_row_groups
from jaxgan.nets.build import build_networks
from jaxgan.objectives import resolve


@struct.dataclass
class GANState:
    """Everything a GAN run changes, as one pytree.

    Attributes:
      step: number of completed train steps (int32 scalar); keys derive from it.
      key: the run's base PRNG key (raw uint32[2]); step ``s`` uses ``fold_in(key, s)``.
      g_params, d_params: ``nnx.Param`` states of G and D.
      g_stats, d_stats: the rest of each network's state (BatchNorm running statistics).
      g_opt, d_opt: optax states.
      extra: what a technique or method adds, a dict, empty by default. Historical
        averaging keeps ``"g_hist"`` / ``"d_hist"`` there (``{"mean": params, "count":
        int32}``), G's EMA ``"g_ema"`` (``{"avg": params, "norm": float32}``), the K+1 GAN
        the moving average of D's parameters, ``"d_avg"`` (`jaxgan.averaging`).
    """

    step: jax.Array
    key: jax.Array
    g_params: nnx.State
    g_stats: nnx.State
    d_params: nnx.State
    d_stats: nnx.State
    g_opt: optax.OptState
    d_opt: optax.OptState
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Networks:
    """The static halves of G and D: graph definitions, optimisers, shapes.

    ``g_eval`` / ``d_eval`` are the graph definitions of the same modules viewed in inference
    mode (BatchNorm on running averages, dropout off); they share the train-mode arrays.
    ``d_merges_batches``: one call of D on real and fake data stacked computes the two calls
    (`jaxgan.functional.merges_row_groups`: D mixes no examples, or only by row-group layers
    that keep the batches apart), so the D update may score both in one call.
    ``d_classifies``: D returns ``(logits, class_logits)`` (AC-GAN,
    `jaxgan.nets.conditional.AuxiliaryClassifierDiscriminator`).
    """

    g_graph: Any
    d_graph: Any
    g_eval: Any
    d_eval: Any
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    z_dim: int
    out_shape: tuple[int, ...]
    num_classes: int | None = None
    g_dropout: bool = False
    d_dropout: bool = False
    d_merges_batches: bool = False
    d_classifies: bool = False

    @property
    def conditional(self) -> bool:
        """Whether G and D take labels: ``G(z, y)``, ``D(x, y)``."""
        return self.num_classes is not None


def split_networks(
    generator: nnx.Module,
    discriminator: nnx.Module,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
    key: jax.Array,
    techniques: Techniques = Techniques(),
    stabilisers: Stabilisers = Stabilisers(),
) -> tuple[Networks, GANState]:
    """Splits built NNX networks into the static `Networks` and an initial `GANState`.

    ``techniques`` and ``stabilisers`` start their state in ``GANState.extra`` (historical
    averaging's means, G's EMA);
    the networks must already carry the network techniques (`jaxgan.nets.build`).
    """
    g_graph, g_params, g_stats = nnx.split(generator, nnx.Param, ...)
    d_graph, d_params, d_stats = nnx.split(discriminator, nnx.Param, ...)
    nets = Networks(
        g_graph=g_graph,
        d_graph=d_graph,
        g_eval=nnx.split(eval_view(generator), nnx.Param, ...)[0],
        d_eval=nnx.split(eval_view(discriminator), nnx.Param, ...)[0],
        g_tx=g_tx,
        d_tx=d_tx,
        z_dim=int(generator.z_dim),
        out_shape=tuple(generator.out_shape),
        num_classes=getattr(generator, "num_classes", None),
        g_dropout=has_dropout(generator),
        d_dropout=has_dropout(discriminator),
        d_merges_batches=merges_row_groups(discriminator),
        d_classifies=bool(getattr(discriminator, "CLASSIFIES", False)),
    )
    extra = {}
    if techniques.historical_avg:
        extra = {"g_hist": running_mean_init(g_params), "d_hist": running_mean_init(d_params)}
    if stabilisers.g_ema:
        extra["g_ema"] = ema_tracker_init(g_params)
    state = GANState(
        step=jnp.zeros((), jnp.int32),
        key=key,
        g_params=g_params,
        g_stats=g_stats,
        d_params=d_params,
        d_stats=d_stats,
        g_opt=g_tx.init(g_params),
        d_opt=d_tx.init(d_params),
        extra=extra,
    )
    return nets, state


def init_state(
    cfg, example_shape: tuple[int, ...], num_classes: int | None = None
) -> tuple[Networks, GANState]:
    """Networks, optimisers and the initial state of a GAN run, all from ``cfg.seed``."""
    run_key = jax.random.PRNGKey(cfg.seed)
    # Weights are drawn with the "rbg" generator: the same distributions, but XLA compiles its
    # per-shape sampling about 2x faster than threefry's, and init compiles once per shape
    # (about half a minute for the DCGAN pair on a loaded 2-core CPU with threefry).
    init_key = jax.random.key(cfg.seed, impl="rbg")
    _, _, d_norm = resolve(cfg)
    g, d = build_networks(cfg, example_shape, nnx.Rngs(init_key), num_classes, d_norm=d_norm)
    g_tx = optax.adam(cfg.g_lr, b1=cfg.beta1, b2=cfg.beta2)
    d_tx = optax.adam(cfg.d_lr, b1=cfg.beta1, b2=cfg.beta2)
    return split_networks(g, d, g_tx, d_tx, run_key, cfg.techniques, cfg.stabilisers)
