"""The techniques of "Improved Techniques for Training GANs" as switches on any GAN run.

Salimans et al. 2016 (arXiv:1606.03498) propose, Sec. 3:

=========================  =============================  ====================================
technique                  where it acts                  config field / flag
=========================  =============================  ====================================
feature matching (3.1)     G's loss                       ``--feature-matching`` (+ ``--fm-layer``,
                                                          ``--fm-reduce``)
minibatch discrim. (3.2)   D's network                    ``--minibatch-disc`` (+ ``--mbd-*``)
historical averaging (3.3) both players' losses           ``--historical-avg WEIGHT``
label smoothing (3.4)      D's loss (real targets only)   ``--label-smoothing ALPHA``
virtual batch norm (3.5)   G's network                    ``--vbn`` (+ ``--vbn-ref-size``)
=========================  =============================  ====================================

A `Techniques` value describes a run's choice. The network techniques are applied when the
networks are built (`jaxgan.state.build_networks` wraps D / rewires G, see
`jaxgan.nets.techniques`); the loss techniques by `jaxgan.step.make_train_step`, which takes
them from ``nets.techniques`` (set by `jaxgan.state.init_state` from the config), so every
objective, conditioning and ``n_critic`` composes with every technique in the one step.

Historical averaging keeps, per player, the running mean of the parameters it has had
(initial values included) in ``GANState.extra``; no public GAN library implements it, and
the official code does not either.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array

FM_REDUCTIONS = ("mean", "sum")
FEATURES = "features"


@dataclasses.dataclass(frozen=True)
class Techniques:
    """Which of the paper's techniques a run uses (all off by default).

    Attributes:
      feature_matching: G minimises `jaxgan.losses.feature_matching` between D's features of
        real and generated data instead of the objective's G loss (Sec. 3.1).
      fm_layer: which D layer: ``"features"`` (D's ``features(x)``, its last hidden layer
        after the activation: the user's choice and the official code's) or the path of a
        submodule of D, e.g. ``"hidden/0"``, ``"convs/1"``, whose output (before the
        activation D applies to it) is flattened (`feature_layers` lists them).
      fm_reduce: ``"mean"`` over features of the squared difference of batch means (the
        official code) or ``"sum"`` (the paper's squared norm).
      minibatch_disc: D gets a `MinibatchDiscrimination` layer between features and head.
      mbd_kernels, mbd_kernel_dim: its B and C (official CIFAR / SVHN code: 100, 5).
      mbd_self_term: include ``j = i`` in ``o(x_i)`` (the paper) or not (the official code).
      historical_avg: weight of ``||theta - mean of past theta||^2`` in each player's loss
        (0: off). The paper gives no value.
      label_smoothing: D's target for real data, ``alpha`` (1: off; the paper's example 0.9);
        fake targets stay 0.
      vbn: replace G's batch norm by virtual batch norm with a fixed reference batch.
      vbn_ref_size: examples in that reference batch (default: the batch size).
    """

    feature_matching: bool = False
    fm_layer: str = FEATURES
    fm_reduce: str = "mean"
    minibatch_disc: bool = False
    mbd_kernels: int = 100
    mbd_kernel_dim: int = 5
    mbd_self_term: bool = True
    historical_avg: float = 0.0
    label_smoothing: float = 1.0
    vbn: bool = False
    vbn_ref_size: int | None = None

    def __post_init__(self):
        if self.fm_reduce not in FM_REDUCTIONS:
            raise ValueError(f"fm_reduce must be one of {FM_REDUCTIONS}, got {self.fm_reduce!r}")
        if self.historical_avg < 0:
            raise ValueError(f"historical_avg is a weight >= 0, got {self.historical_avg}")
        if not 0.0 < self.label_smoothing <= 1.0:
            raise ValueError(
                f"label_smoothing is the real target alpha in (0, 1] (1: off), got "
                f"{self.label_smoothing}"
            )
        if self.mbd_kernels < 1 or self.mbd_kernel_dim < 1:
            raise ValueError("mbd_kernels and mbd_kernel_dim must be positive")
        if self.vbn_ref_size is not None and self.vbn_ref_size < 1:
            raise ValueError(f"vbn_ref_size must be positive, got {self.vbn_ref_size}")

    @classmethod
    def from_config(cls, cfg) -> "Techniques":
        """The techniques named by a config's fields (missing fields: off)."""
        return cls(
            **{f.name: getattr(cfg, f.name, f.default) for f in dataclasses.fields(cls)}
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the techniques switched on, e.g. ``("fm", "mbd")``."""
        on = [
            ("fm", self.feature_matching),
            ("mbd", self.minibatch_disc),
            ("ha", self.historical_avg > 0),
            ("ls", self.label_smoothing < 1),
            ("vbn", self.vbn),
        ]
        return tuple(name for name, flag in on if flag)

    def init_extra(self, g_params: nnx.State, d_params: nnx.State) -> dict:
        """The technique state a `GANState.extra` starts with (historical averages)."""
        if not self.historical_avg:
            return {}
        return {"g_hist": history_init(g_params), "d_hist": history_init(d_params)}


# --------------------------------------------------------------------------------------
# Historical averaging (Sec. 3.3)
# --------------------------------------------------------------------------------------


def history_init(params) -> dict:
    """A running mean of a player's parameters, started with their initial values."""
    return {"mean": jax.tree.map(jnp.copy, params), "count": jnp.ones((), jnp.int32)}


def history_update(history: dict, params) -> dict:
    """Adds the parameters after an update: ``mean += (theta - mean) / (count + 1)``.

    After ``t`` updates the mean is ``1/(t+1) sum_{i=0..t} theta_i``, the average of every
    value the player has had (the paper's ``1/t sum_i theta[i]``), in one pass and one copy
    of the parameters, exact up to float rounding.
    """
    count = history["count"] + 1
    w = 1.0 / count.astype(jnp.float32)
    mean = jax.tree.map(lambda m, p: m + w * (p - m), history["mean"], params)
    return {"mean": mean, "count": count}


def history_penalty(params, history: dict) -> Array:
    """``|| theta - mean ||_2^2`` over all of a player's parameters (a scalar).

    The mean is a constant of the update (no gradient flows into the past), so the penalty's
    gradient is ``2 (theta - mean)``: it pulls each player back towards its history, damping
    the orbits simultaneous gradient descent can fall into (Sec. 3.3).
    """
    mean = jax.lax.stop_gradient(history["mean"])
    sq = jax.tree.map(lambda p, m: jnp.sum(jnp.square(p - m)), params, mean)
    return sum(jax.tree.leaves(sq), jnp.zeros(()))


# --------------------------------------------------------------------------------------
# Feature matching's features (Sec. 3.1)
# --------------------------------------------------------------------------------------


def feature_layers(discriminator: nnx.Module, *args, **kwargs) -> list[str]:
    """The ``fm_layer`` paths of a D: submodules whose output its ``features`` computes
    (``args`` an example batch; run eagerly)."""
    _, inter = nnx.capture(
        discriminator.features, nnx.Intermediate, method_outputs=nnx.Intermediate
    )(*args, **kwargs)
    paths = []
    for path, _ in nnx.to_flat_state(inter):
        if path[-1] == "__call__":
            paths.append("/".join(str(p) for p in path[:-1]))
    return [FEATURES, *paths]


def layer_features(discriminator: nnx.Module, layer: str, *args, **kwargs) -> Array:
    """D's features of a batch at ``layer`` (see `Techniques.fm_layer`), ``(N, F)``."""
    if layer == FEATURES:
        f = discriminator.features(*args, **kwargs)
        return f.reshape(f.shape[0], -1)
    _, inter = nnx.capture(
        discriminator.features, nnx.Intermediate, method_outputs=nnx.Intermediate
    )(*args, **kwargs)
    captured = {
        "/".join(str(p) for p in path[:-1]): v
        for path, v in nnx.to_flat_state(inter)
        if path[-1] == "__call__"
    }
    if layer not in captured:
        raise ValueError(
            f"fm_layer {layer!r} is not a submodule D's features run; valid: "
            f"{', '.join([FEATURES, *captured])}"
        )
    value = captured[layer].get_value()
    out = value[0] if isinstance(value, tuple) else value
    return out.reshape(out.shape[0], -1)
