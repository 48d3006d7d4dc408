"""Building a run's (G, D) pair from a config and the data's example shape.

The architecture names a config may give (``arch``), the checks that the data fits them,
conditioning on labels (`jaxgan.nets.conditional`) and the network techniques (minibatch
discrimination, virtual batch norm: `jaxgan.nets.techniques`) all meet here, so the state
and the step never need a network class.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgan import plugins
from jaxgan.configs import Techniques
from jaxgan.nets import conditional as cond
from jaxgan.nets import techniques as tn
from jaxgan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from jaxgan.nets.layers import Upsample2x
from jaxgan.nets.lsgan import LSGANMnistDiscriminator, LSGANMnistGenerator
from jaxgan.nets.mlp import (
    MaxoutDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
    PacGANGenerator,
)
from jaxgan.nets.spectral import spectral_norm
from jaxgan.noise import sample_z

# Compute dtypes of `TrainConfig.precision`. Parameters, Adam's moments and batch-norm
# statistics stay float32 either way: bfloat16 has 8 bits of mantissa, too few to accumulate
# small updates (lr 2e-4 times a normalised step is below its resolution near 1).
PRECISIONS = {"fp32": jnp.float32, "bf16": jnp.bfloat16}
POINT_ARCHS = ("mlp", "pacgan_mlp")  # networks of 2-D points
MLP_ARCHS = (*POINT_ARCHS, "cgan_mlp")  # networks without convolutions
ARCHS = (*MLP_ARCHS, "lsgan_mnist", "dcgan")


def build_networks(
    cfg,
    example_shape: tuple[int, ...],
    rngs: nnx.Rngs,
    num_classes: int | None = None,
    *,
    d_norm: str = "batch",
):
    """Builds (G, D) for a GAN config and the data's example shape.

    With ``cfg.conditional``, G and D are built for inputs ``cfg.embed_dim`` wider and wrapped
    to take labels (`jaxgan.nets.conditional`), whatever the architecture. The network
    techniques the config switches on (minibatch discrimination, virtual batch norm) are then
    applied to the pair (`apply_network_techniques`), and D's layers spectrally normalised
    with ``stabilisers.spectral_norm`` (`jaxgan.nets.spectral`). ``d_norm`` is the DCGAN D's
    normalisation, resolved from the config and the objective by the caller.
    """
    if cfg.arch not in ARCHS and not plugins.is_path(cfg.arch):
        # Before the shape checks, whose advice assumes a known arch.
        raise ValueError(f"unknown arch {cfg.arch!r}; valid: {', '.join(ARCHS)}, or your own "
                         "as module:Generator,Discriminator")
    precision = getattr(cfg, "precision", "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if cfg.d_norm is not None and cfg.arch != "dcgan":
        raise ValueError(
            f"d_norm={cfg.d_norm!r} sets the dcgan discriminator's normalisation; arch "
            f"{cfg.arch!r} has its own: drop --d-norm or use --arch dcgan"
        )
    stab = getattr(cfg, "stabilisers", None)
    if stab is not None and stab.diffaug_policy and len(example_shape) != 3:
        raise ValueError(f"--diffaug transforms images (DiffAugment); {cfg.dataset}'s examples "
                         f"have shape {tuple(example_shape)}: drop --diffaug")
    g, d = _build_conditional(cfg, example_shape, rngs, num_classes, d_norm)
    g, d = apply_network_techniques(
        g, d, cfg.techniques, rngs, batch_size=cfg.batch_size, z_dist=cfg.z_dist
    )
    if stab is not None and stab.spectral_norm:
        # After the techniques, so minibatch discrimination's layers are normalised too.
        d = spectral_norm(d, rngs)
    if precision != "fp32":
        set_compute_dtype(g, PRECISIONS[precision])
        set_compute_dtype(d, PRECISIONS[precision])
    return g, d


def set_compute_dtype(module: nnx.Module, dtype) -> None:
    """Mixed precision: every layer of ``module`` computes in ``dtype``; its parameters stay
    in their own (float32) dtype and are cast at each call, so gradients and Adam's updates
    are float32. Flax layers take it as their ``dtype``; jaxgan's own layers that hold
    parameters (`jaxgan.nets.layers.Upsample2x`) read the same attribute. Batch norm computes
    its statistics in float32 whatever the compute dtype (Flax promotes its reductions)."""
    for _, m in nnx.iter_modules(module):
        if (hasattr(m, "dtype") and hasattr(m, "promote_dtype")) or isinstance(m, Upsample2x):
            m.dtype = dtype


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
    if techniques.minibatch_disc:
        d = tn.MinibatchDiscriminator(
            d,
            num_kernels=techniques.mbd_kernels,
            kernel_dim=techniques.mbd_kernel_dim,
            include_self=techniques.mbd_self_term,
            rngs=rngs,
        )
    if techniques.vbn:
        size = techniques.vbn_ref_size or batch_size
        z_ref = sample_z(rngs.vbn(), (size, g.z_dim), z_dist)
        num_classes = getattr(g, "num_classes", None)
        y_ref = None if num_classes is None else jnp.arange(size) % num_classes
        g = tn.with_virtual_batch_norm(g, z_ref, y_ref)
    return g, d


def _build_conditional(cfg, example_shape, rngs, num_classes, d_norm):
    if plugins.is_path(cfg.arch):
        if cfg.conditional:
            raise ValueError(f"--arch {cfg.arch}: your own networks train unconditionally; "
                             "--conditional needs a built-in arch (cgan_mlp, dcgan, mlp)")
        return plugin_pair(cfg.arch, cfg.z_dim, tuple(example_shape), rngs)
    if not cfg.conditional:
        return _build_pair(cfg, cfg.z_dim, example_shape, 0, rngs, d_norm)
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
    kw = dict(num_classes=num_classes, embed_dim=cfg.embed_dim, rngs=rngs)
    if cfg.cond_d in ("projection", "acgan"):
        if cfg.techniques.minibatch_disc:
            raise ValueError(f"--cond-d {cfg.cond_d} adds a label head to D's features, beside "
                             "the head minibatch discrimination replaces: use --cond-d concat "
                             "with it")
        # G takes the label as before; D is the unconditional one (no label input), the
        # label projected onto its features or predicted from them.
        g, d = _build_pair(cfg, cfg.z_dim + cfg.embed_dim, example_shape, 0, rngs, d_norm)
        wrap = (cond.ProjectionDiscriminator if cfg.cond_d == "projection"
                else cond.AuxiliaryClassifierDiscriminator)
        return cond.ConditionalGenerator(g, **kw), wrap(
            d, num_classes=num_classes, num_features=tn.feature_count(d), rngs=rngs)
    g, d = _build_pair(cfg, cfg.z_dim + cfg.embed_dim, example_shape, cfg.embed_dim, rngs,
                       d_norm)
    return cond.ConditionalGenerator(g, **kw), cond.ConditionalDiscriminator(
        d, as_channels=cfg.arch == "dcgan", **kw
    )


def plugin_pair(arch: str, z_dim: int, example_shape: tuple[int, ...], rngs: nnx.Rngs):
    """A user's own pair, ``--arch module:Generator,Discriminator``: NNX modules built as
    ``Generator(z_dim=, out_shape=, rngs=)`` and ``Discriminator(in_shape=, rngs=)``, where
    G maps latents ``(N, z_dim)`` to examples ``(N, *out_shape)`` and D maps examples to one
    logit each, ``(N,)``; checked on a batch of two, with an error saying what differs."""
    module, _, names = arch.partition(":")
    parts = names.split(",")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--arch {arch!r}: expected module:Generator,Discriminator")
    g_cls, d_cls = (plugins.load(f"{module}:{name}", "arch") for name in parts)
    try:
        g = g_cls(z_dim=z_dim, out_shape=example_shape, rngs=rngs)
        d = d_cls(in_shape=example_shape, rngs=rngs)
    except TypeError as e:
        raise ValueError(f"--arch {arch!r}: build as Generator(z_dim=, out_shape=, rngs=) and "
                         f"Discriminator(in_shape=, rngs=): {e}") from None
    for net, role in ((g, "Generator"), (d, "Discriminator")):
        if not isinstance(net, nnx.Module):
            raise ValueError(f"--arch {arch!r}: the {role} is a {type(net).__name__}, not a "
                             "flax.nnx.Module")
    # jaxgan reads these from G (the latent size of the noise, the shape of a figure).
    g.z_dim, g.out_shape = z_dim, example_shape
    x = _output_shape(g, jax.ShapeDtypeStruct((2, z_dim), jnp.float32))
    if x.shape != (2, *example_shape):
        raise ValueError(f"--arch {arch!r}: the Generator maps latents (2, {z_dim}) to "
                         f"{x.shape}; the data's examples are {example_shape}, so (2, "
                         f"{', '.join(map(str, example_shape))}) was expected")
    logits = _output_shape(d, jax.ShapeDtypeStruct((2, *example_shape), jnp.float32))
    if logits.shape != (2,):
        raise ValueError(f"--arch {arch!r}: the Discriminator maps 2 examples to "
                         f"{logits.shape}; one logit per example, (2,), was expected")
    return g, d


def _output_shape(module: nnx.Module, x: jax.ShapeDtypeStruct):
    # Traced on a copy of its state: calling the module itself would advance its batch-norm
    # statistics and its random streams before training starts.
    graph, state = nnx.split(module)
    return jax.eval_shape(lambda st, a: nnx.merge(graph, st)(a), state, x)


def _build_pair(cfg, z_dim: int, example_shape: tuple[int, ...], extra_in: int, rngs, d_norm):
    """The unconditional pair, D built for ``extra_in`` more input features / channels."""
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
                PacGANGenerator(z_dim=z_dim, out_dim=example_shape[0], rngs=rngs),
                MaxoutDiscriminator(in_dim=example_shape[0] + extra_in, rngs=rngs),
            )
        kw = dict(hidden=cfg.hidden, depth=cfg.depth, activation=cfg.activation, rngs=rngs)
        return (
            MLPGenerator(z_dim=z_dim, out_dim=example_shape[0], **kw),
            MLPDiscriminator(in_dim=example_shape[0] + extra_in, **kw),
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
        return LSGANMnistGenerator(z_dim=z_dim, rngs=rngs), LSGANMnistDiscriminator(rngs=rngs)
    if cfg.arch == "dcgan":
        h, _, c = example_shape
        kw = dict(resolution=h, width=cfg.width, rngs=rngs)
        return (
            DCGANGenerator(z_dim=z_dim, channels=c, **kw),
            DCGANDiscriminator(channels=c + extra_in, norm=d_norm, **kw),
        )
    raise AssertionError(f"arch {cfg.arch!r} is in ARCHS but not built here")
