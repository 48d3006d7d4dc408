"""`GANState`, the one pytree a train step takes and returns, and its initialisation.

The networks are Flax NNX modules used functionally: they are built once, ``nnx.split`` into
a static graph definition (closed over by the step, never in the state) and arrays (in the
state). Everything that changes during training lives in ``GANState``, so a step is a pure
function ``(state, batch) -> (state, metrics)`` that jits once and checkpoints whole.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct

from jaxgan.techniques import Techniques


@struct.dataclass
class GANState:
    """Everything a GAN run changes, as one pytree.

    Attributes:
      step: number of completed train steps (int32 scalar); keys derive from it.
      key: the run's base PRNG key (raw uint32[2]); step ``s`` uses ``fold_in(key, s)``.
      g_params, d_params: ``nnx.Param`` states of G and D.
      g_stats, d_stats: the rest of each network's state (BatchNorm running statistics).
      g_opt, d_opt: optax states.
      extra: technique state, a dict, empty by default. Historical averaging keeps
        ``"g_hist"`` / ``"d_hist"`` there: ``{"mean": params, "count": int32}``
        (`jaxgan.techniques`).
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
    ``techniques`` are the loss techniques `jaxgan.step.make_train_step` applies by default
    (the network ones are already in the graphs).
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
    techniques: Techniques = Techniques()

    @property
    def conditional(self) -> bool:
        """Whether G and D take labels: ``G(z, y)``, ``D(x, y)``."""
        return self.num_classes is not None


def _has_dropout(module: nnx.Module) -> bool:
    return any(isinstance(m, nnx.Dropout) for _, m in nnx.iter_modules(module))


def eval_view(module: nnx.Module) -> nnx.Module:
    """The module in inference mode (running BatchNorm statistics, no dropout)."""
    return nnx.view(module, use_running_average=True, deterministic=True, raise_if_not_found=False)


def split_networks(
    generator: nnx.Module,
    discriminator: nnx.Module,
    g_tx: optax.GradientTransformation,
    d_tx: optax.GradientTransformation,
    key: jax.Array,
    techniques: Techniques = Techniques(),
) -> tuple[Networks, GANState]:
    """Splits built NNX networks into the static `Networks` and an initial `GANState`.

    ``techniques`` are recorded in `Networks` for the step and start their state in
    ``GANState.extra``; the networks must already carry the network techniques
    (`apply_network_techniques`).
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
        g_dropout=_has_dropout(generator),
        d_dropout=_has_dropout(discriminator),
        techniques=techniques,
    )
    state = GANState(
        step=jnp.zeros((), jnp.int32),
        key=key,
        g_params=g_params,
        g_stats=g_stats,
        d_params=d_params,
        d_stats=d_stats,
        g_opt=g_tx.init(g_params),
        d_opt=d_tx.init(d_params),
        extra=techniques.init_extra(g_params, d_params),
    )
    return nets, state


def apply(graph, params: nnx.State, stats: nnx.State, *args, **kwargs):
    """Calls a split module functionally: returns ``(output, new_stats)``.

    BatchNorm's running statistics are returned, not mutated, so the caller decides whether a
    forward pass counts (the D update keeps D's; a G forward inside the D update does not).
    """
    # copy=True gives fresh Variables owned by the current trace: ``stats`` may come from an
    # outer trace (jit, while this runs under grad), and NNX refuses to mutate a BatchStat
    # created at another trace level.
    return call(graph, params, stats, lambda module: module(*args, **kwargs))


def call(graph, params: nnx.State, stats: nnx.State, fn):
    """``fn(module)`` on a split module, functionally: returns ``(fn's output, new_stats)``.

    For methods other than ``__call__`` (a discriminator's ``features``), or several calls
    on one merged module.
    """
    # copy=True gives fresh Variables owned by the current trace: ``stats`` may come from an
    # outer trace (jit, while this runs under grad), and NNX refuses to mutate a BatchStat
    # created at another trace level.
    module = nnx.merge(graph, params, stats, copy=True)
    out = fn(module)
    return out, nnx.split(module, nnx.Param, ...)[2]



POINT_ARCHS = ("mlp", "pacgan_mlp")  # networks of 2-D points
MLP_ARCHS = (*POINT_ARCHS, "cgan_mlp")  # networks without convolutions
ARCHS = (*MLP_ARCHS, "lsgan_mnist", "dcgan")


def build_networks(
    cfg, example_shape: tuple[int, ...], rngs: nnx.Rngs, num_classes: int | None = None
):
    """Builds (G, D) for a config and the data's example shape.

    With ``cfg.conditional``, G and D are built for inputs ``cfg.embed_dim`` wider and wrapped
    to take labels (`jaxgan.nets.conditional`), whatever the architecture. The network
    techniques the config switches on (minibatch discrimination, virtual batch norm) are then
    applied to the pair (`apply_network_techniques`).
    """
    if cfg.arch not in ARCHS:  # before the shape checks, whose advice assumes a known arch
        raise ValueError(f"unknown arch {cfg.arch!r}; valid: {', '.join(ARCHS)}")
    if getattr(cfg, "d_norm", None) is not None and cfg.arch != "dcgan":
        raise ValueError(
            f"d_norm={cfg.d_norm!r} sets the dcgan discriminator's normalisation; arch "
            f"{cfg.arch!r} has its own: drop --d-norm or use --arch dcgan"
        )
    g, d = _build_conditional(cfg, example_shape, rngs, num_classes)
    return apply_network_techniques(
        g, d, Techniques.from_config(cfg), rngs, batch_size=cfg.batch_size, z_dist=cfg.z_dist
    )


def apply_network_techniques(
    g: nnx.Module,
    d: nnx.Module,
    techniques: Techniques,
    rngs: nnx.Rngs,
    *,
    batch_size: int,
    z_dist: str = "normal",
):
    """Wraps D with minibatch discrimination and gives G virtual batch norm, as asked.

    Any architecture: D gains a layer between ``features`` and ``head``
    (`jaxgan.nets.techniques.MinibatchDiscriminator`); G's ``BatchNorm`` layers become
    virtual batch norm over a reference batch of ``vbn_ref_size`` (default ``batch_size``)
    latents drawn once here from ``z_dist`` (a conditional G's reference labels cycle through
    the classes), kept in G's state.
    """
    from jaxgan.nets import techniques as tn

    if techniques.minibatch_disc:
        d = tn.MinibatchDiscriminator(
            d,
            num_kernels=techniques.mbd_kernels,
            kernel_dim=techniques.mbd_kernel_dim,
            include_self=techniques.mbd_self_term,
            rngs=rngs,
        )
    if techniques.vbn:
        from jaxgan.step import sample_z

        size = techniques.vbn_ref_size or batch_size
        z_ref = sample_z(rngs.vbn(), (size, g.z_dim), z_dist)
        num_classes = getattr(g, "num_classes", None)
        y_ref = None if num_classes is None else jnp.arange(size) % num_classes
        g = tn.with_virtual_batch_norm(g, z_ref, y_ref)
    return g, d


def _build_conditional(cfg, example_shape, rngs, num_classes):
    from jaxgan.nets import conditional as cond

    if not cfg.conditional:
        return _build_pair(cfg, cfg.z_dim, example_shape, 0, rngs)
    if not num_classes:
        raise ValueError(
            f"--conditional needs labelled data; {cfg.dataset} has no labels "
            "(use mnist, fashion_mnist, ring8 or grid25)"
        )
    if cfg.arch == "lsgan_mnist":
        raise ValueError(
            "arch 'lsgan_mnist' is the user's unconditional pair; for --conditional use "
            "--arch cgan_mlp (the user's cGAN) or --arch dcgan"
        )
    g, d = _build_pair(cfg, cfg.z_dim + cfg.embed_dim, example_shape, cfg.embed_dim, rngs)
    kw = dict(num_classes=num_classes, embed_dim=cfg.embed_dim, rngs=rngs)
    return cond.ConditionalGenerator(g, **kw), cond.ConditionalDiscriminator(
        d, as_channels=cfg.arch == "dcgan", **kw
    )


def _build_pair(cfg, z_dim: int, example_shape: tuple[int, ...], extra_in: int, rngs):
    """The unconditional pair, D built for ``extra_in`` more input features / channels."""
    from jaxgan import nets  # the step and state need no network classes; only this does
    from jaxgan.nets import conditional as cond

    if cfg.arch == "cgan_mlp":
        return (
            cond.ImageMLPGenerator(z_dim=z_dim, out_shape=example_shape, rngs=rngs),
            cond.ImageMLPDiscriminator(
                in_dim=math.prod(example_shape) + extra_in, dropout=cfg.dropout, rngs=rngs
            ),
        )
    if cfg.arch in POINT_ARCHS:
        if len(example_shape) != 1:
            raise ValueError(
                f"arch {cfg.arch!r} is for 2-D point data; this dataset has images of shape "
                f"{example_shape}: use --arch lsgan_mnist or --arch dcgan"
            )
        if cfg.arch == "pacgan_mlp":  # the published shapes; hidden / depth are the mlp's
            return (
                nets.PacGANGenerator(z_dim=z_dim, out_dim=example_shape[0], rngs=rngs),
                nets.MaxoutDiscriminator(in_dim=example_shape[0] + extra_in, rngs=rngs),
            )
        kw = dict(hidden=cfg.hidden, depth=cfg.depth, activation=cfg.activation, rngs=rngs)
        return (
            nets.MLPGenerator(z_dim=z_dim, out_dim=example_shape[0], **kw),
            nets.MLPDiscriminator(in_dim=example_shape[0] + extra_in, **kw),
        )
    if len(example_shape) != 3:
        raise ValueError(
            f"arch {cfg.arch!r} is for images; this dataset has points of shape "
            f"{example_shape}: use --arch mlp"
        )
    if cfg.arch == "lsgan_mnist":
        if tuple(example_shape) != (28, 28, 1):
            raise ValueError(
                f"arch 'lsgan_mnist' is for 28x28x1 images, not {example_shape}: use --arch dcgan"
            )
        return nets.LSGANMnistGenerator(z_dim=z_dim, rngs=rngs), nets.LSGANMnistDiscriminator(
            rngs=rngs
        )
    if cfg.arch == "dcgan":
        h, _, c = example_shape
        kw = dict(resolution=h, width=cfg.width, rngs=rngs)
        return (
            nets.DCGANGenerator(z_dim=z_dim, channels=c, **kw),
            nets.DCGANDiscriminator(channels=c + extra_in, norm=d_norm(cfg), **kw),
        )
    raise AssertionError(f"arch {cfg.arch!r} is in ARCHS but not built here")


def d_norm(cfg) -> str:
    """The image D's normalisation: ``cfg.d_norm`` if set, else the objective's own."""
    if getattr(cfg, "d_norm", None) is not None:
        return cfg.d_norm
    from jaxgan.objectives import get_objective

    return get_objective(cfg.objective).d_norm


def init_state(
    cfg, example_shape: tuple[int, ...], num_classes: int | None = None
) -> tuple[Networks, GANState]:
    """Networks, optimisers and the initial state of a run, all from ``cfg.seed``."""
    run_key = jax.random.PRNGKey(cfg.seed)
    # Weights are drawn with the "rbg" generator: the same distributions, but XLA compiles its
    # per-shape sampling about 2x faster than threefry's, and init compiles once per shape
    # (about half a minute for the DCGAN pair on a loaded 2-core CPU with threefry).
    init_key = jax.random.key(cfg.seed, impl="rbg")
    g, d = build_networks(cfg, example_shape, nnx.Rngs(init_key), num_classes)
    g_tx = optax.adam(cfg.g_lr, b1=cfg.beta1, b2=cfg.beta2)
    d_tx = optax.adam(cfg.d_lr, b1=cfg.beta1, b2=cfg.beta2)
    return split_networks(g, d, g_tx, d_tx, run_key, Techniques.from_config(cfg))
