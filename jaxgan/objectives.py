"""The objective registry: a name -> a (D loss, G loss) pair of per-example loss functions.

An objective adds itself with one entry in ``OBJECTIVES``. The train step only ever calls
``objective.d_loss(real_logits, fake_logits)`` and ``objective.g_loss(fake_logits)`` and
reduces with a mean, so conditioning, techniques and the loop never depend on which
objective runs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax

from jaxgan import losses, plugins

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class Objective:
    """A GAN objective: per-example D and G losses on D's logits.

    Attributes:
      name: registry name.
      d_loss: ``(real_logits, fake_logits) -> (N,)``.
      g_loss: ``fake_logits -> (N,)``.
      summary: one line for ``--help`` and tables.
      reference: the paper.
      sigmoid_output: whether D's output is read through a sigmoid (a probability); a least
        squares D's output is linear. Only the reported mean D(x) depends on it.
      gradient_penalty: weight of `losses.gradient_penalty` in D's loss (0: none).
      n_critic: D updates per G update that the paper uses (a run's ``--n-critic`` overrides).
      d_norm: the normalisation the paper puts in an image D ("batch" for DCGAN's, "layer"
        for a critic with a gradient penalty); a run's ``--d-norm`` overrides.
      smoothed_d_loss: ``alpha -> d_loss`` with the real target moved to ``alpha`` (one-sided
        label smoothing), or None where the loss has no targets to smooth (hinge, WGAN).
      decision: D's output halfway between its real and fake targets, where it calls a sample
        real (D's accuracy, `jaxgan.health`): 0 for logits and for the -1/1 coding, 0.5 for
        least squares' 0-1 coding; a WGAN critic has no targets, and its sign is read.
      relativistic: G's loss also reads D's outputs on real data, ``g_loss(fake_logits,
        real_logits)``, and both losses compare each example with the other batch's mean
        (Jolicoeur-Martineau 2018; `jaxgan.losses.relativistic_average`): batch-coupled on
        purpose, so real and fake batches must be of one size.

    Example (a hinge loss with a margin of 2; the README's "Your own objective")::

        hinge2 = jaxgan.Objective(
            "hinge2", lambda real, fake: jax.nn.relu(2 - real) + jax.nn.relu(2 + fake),
            lambda fake: -fake, "hinge, margin 2", "Lim & Ye 2017", sigmoid_output=False)
        jaxgan.compare(jaxgan.CompareConfig(objectives="nsgan,my_losses:hinge2"), "runs/h2")
    """

    name: str
    d_loss: Callable[[Array, Array], Array]
    g_loss: Callable[[Array], Array]
    summary: str
    reference: str
    sigmoid_output: bool = True
    gradient_penalty: float = 0.0
    n_critic: int = 1
    d_norm: str = "batch"
    smoothed_d_loss: Callable[[float], Callable[[Array, Array], Array]] | None = None
    decision: float = 0.0
    relativistic: bool = False

    def with_label_smoothing(self, alpha: float) -> "Objective":
        """This objective with one-sided label smoothing: real targets ``alpha``, fakes kept.

        Salimans et al. 2016, Sec. 3.4: smoothing the fake targets too would reinforce G's
        current samples where data is absent, so only the positive targets move. ``alpha = 1``
        returns the objective unchanged.
        """
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"label smoothing's real target must be in (0, 1], got {alpha}")
        if alpha == 1.0:
            return self
        if self.smoothed_d_loss is None:
            smoothable = ", ".join(n for n, o in OBJECTIVES.items() if o.smoothed_d_loss)
            raise ValueError(
                f"objective {self.name!r} has no real target to smooth; label smoothing "
                f"applies to {smoothable}"
            )
        return dataclasses.replace(
            self, name=f"{self.name}+ls{alpha:g}", d_loss=self.smoothed_d_loss(alpha)
        )


def _smoothed_gan(alpha: float):
    return functools.partial(losses.gan_d_loss, real_target=alpha)


def _lsgan(name: str, coding: str) -> Objective:
    a, b, c = losses.LSGAN_CODINGS[coding]

    def smoothed(alpha: float):
        # The real target moves a fraction 1 - alpha of the way to the fake one, as the
        # cross-entropy's target 1 -> alpha does between 1 and 0 (0-1 coding: b -> alpha).
        return functools.partial(losses.lsgan_d_loss, a=a, b=alpha * b + (1.0 - alpha) * a)

    return Objective(
        name=name,
        d_loss=functools.partial(losses.lsgan_d_loss, a=a, b=b),
        g_loss=functools.partial(losses.lsgan_g_loss, c=c),
        summary=f"least squares, a={a:g} b={b:g} c={c:g} ({coding} coding)",
        reference="Mao et al. 2017, arXiv:1611.04076",
        sigmoid_output=False,
        smoothed_d_loss=smoothed,
        decision=(a + b) / 2,
    )


OBJECTIVES: dict[str, Objective] = {
    "gan": Objective(
        "gan",
        losses.gan_d_loss,
        losses.gan_g_loss_minimax,
        "GAN, minimax (saturating) G loss log(1 - D(G(z)))",
        "Goodfellow et al. 2014, arXiv:1406.2661",
        smoothed_d_loss=_smoothed_gan,
    ),
    "nsgan": Objective(
        "nsgan",
        losses.gan_d_loss,
        losses.gan_g_loss_nonsaturating,
        "GAN, non-saturating G loss -log D(G(z))",
        "Goodfellow et al. 2014, arXiv:1406.2661",
        smoothed_d_loss=_smoothed_gan,
    ),
    # The paper adopts the 0-1 coding for its experiments (Sec. 3.2.2), as does its
    # released mixture-of-Gaussians code; both codings are reachable by name.
    "lsgan": _lsgan("lsgan", "01"),
    "lsgan-01": _lsgan("lsgan-01", "01"),
    "lsgan-pearson": _lsgan("lsgan-pearson", "pearson"),
    "hinge": Objective(
        "hinge",
        losses.hinge_d_loss,
        losses.hinge_g_loss,
        "hinge loss (geometric GAN / SN-GAN)",
        "Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, arXiv:1802.05957",
        sigmoid_output=False,
    ),
    # The paper's Adam (lr 1e-4, betas 0, 0.9) is not forced here: a comparison keeps one
    # optimiser for every objective; set --beta1 0 --beta2 0.9 to match it.
    "wgan-gp": Objective(
        "wgan-gp",
        losses.wasserstein_d_loss,
        losses.wasserstein_g_loss,
        "Wasserstein critic with gradient penalty (lambda 10, 5 critic steps)",
        "Gulrajani et al. 2017, arXiv:1704.00028",
        sigmoid_output=False,
        gradient_penalty=10.0,
        n_critic=5,
        d_norm="layer",  # Sec. 4: "no critic batch normalization"; layer norm in its place
    ),
    # Relativistic average GANs: G's loss is D's with real and fake swapped.
    **{
        name: Objective(
            name,
            d_loss,
            lambda fake, real, d_loss=d_loss: d_loss(fake, real),
            f"relativistic average {kind}: each output minus the other batch's mean",
            "Jolicoeur-Martineau 2018, arXiv:1807.00734",
            sigmoid_output=sigmoid,
            relativistic=True,
        )
        for name, kind, d_loss, sigmoid in (
            ("ragan", "GAN (RaSGAN)", losses.ragan_d_loss, True),
            ("ralsgan", "LSGAN (RaLSGAN)", losses.ralsgan_d_loss, False),
            ("rahinge", "hinge (RaHingeGAN)", losses.rahinge_d_loss, False),
        )
    },
}


def get_objective(name: str) -> Objective:
    """Looks an objective up by registry name or import path (``module:attribute``, a user's
    own `Objective`: `jaxgan.plugins`); an unknown name lists the valid ones.

    Example::

        nsgan = jaxgan.get_objective("nsgan")
        mine = jaxgan.get_objective("my_losses:hinge2")  # imports my_losses
        d_loss = nsgan.d_loss(real_logits, fake_logits)  # (N,)
    """
    if name in OBJECTIVES:
        return OBJECTIVES[name]
    if plugins.is_path(name):
        return check_objective(plugins.load(name, "objective"), name)
    valid = ", ".join(sorted(OBJECTIVES))
    raise ValueError(f"unknown objective {name!r}; valid objectives: {valid}, or your own as "
                     "module:attribute")


def register(objective: Objective, *, replace: bool = False) -> Objective:
    """Adds ``objective`` to the registry under its name, so configs, ``jaxgan train
    --objective NAME`` (in a process that registered it) and `jaxgan.comparison` find it; returns
    it. A built-in name is refused unless ``replace``.

    Example::

        import jax, jaxgan.objectives as jo
        hinge2 = jo.Objective("hinge2", d_loss=lambda r, f: jax.nn.relu(1 - r) + jax.nn.relu(1 + f),
                              g_loss=lambda f: -f, summary="hinge again", reference="me",
                              sigmoid_output=False)
        jo.register(hinge2)
    """
    check_objective(objective, objective.name if isinstance(objective, Objective) else "?")
    if objective.name in OBJECTIVES and not replace:
        raise ValueError(f"objective {objective.name!r} is already registered; pass "
                         "replace=True to replace it")
    OBJECTIVES[objective.name] = objective
    return objective


def check_objective(objective, where: str) -> Objective:
    """``objective`` if it is an `Objective` whose losses map logits of shape (N,) to
    per-example losses of shape (N,); else a ValueError saying what is wrong."""
    if not isinstance(objective, Objective):
        raise ValueError(f"objective {where!r} is a {type(objective).__name__}, not a "
                         "jaxgan.objectives.Objective (d_loss, g_loss, summary, reference)")
    logits = jax.numpy.linspace(-2.0, 2.0, 4)
    g_args = (logits, -logits) if objective.relativistic else (logits,)
    for loss, args in (("d_loss", (logits, -logits)), ("g_loss", g_args)):
        try:
            out = jax.eval_shape(getattr(objective, loss), *args)
        except Exception as e:  # noqa: BLE001 - the user's function: say which failed
            raise ValueError(f"objective {where!r}: {loss} fails on logits of shape (4,): "
                             f"{type(e).__name__}: {e}") from None
        if getattr(out, "shape", None) != (4,):
            raise ValueError(f"objective {where!r}: {loss} must give one loss per example "
                             f"(shape (4,) for logits of shape (4,)), got "
                             f"{getattr(out, 'shape', type(out).__name__)}")
    return objective


def resolve(cfg) -> tuple[Objective, int, str]:
    """What a GAN config's objective means for its step and networks, decided once:
    ``(objective, n_critic, d_norm)``.

    The objective has the config's one-sided label smoothing folded into its D loss (the
    only technique that changes a loss's hyperparameter); ``n_critic`` and the DCGAN D's
    normalisation are the config's where it sets them, else the objective's own (5 critic
    steps and layer norm for wgan-gp; 1 and batch norm otherwise).
    """
    objective = get_objective(cfg.objective)
    n_critic = objective.n_critic if cfg.n_critic is None else cfg.n_critic
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")
    d_norm = objective.d_norm if cfg.d_norm is None else cfg.d_norm
    return objective.with_label_smoothing(cfg.techniques.label_smoothing), n_critic, d_norm
