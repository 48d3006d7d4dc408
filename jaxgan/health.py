"""Is the GAN game still being played? Signals computed in the step, and a monitor that warns.

A GAN can fail without a NaN: D wins outright (it tells every real from every fake, and G's
gradients vanish: Goodfellow et al. 2014, Sec. 3; Arjovsky & Bottou 2017), or G collapses
onto a few points (Salimans et al. 2016, Sec. 3.2; Metz et al. 2017). Both are visible in
each step's batch at the cost of a few reductions, so the step reports them with its other
metrics and the loop averages them per log window (no extra pass, no extra samples):

  d_acc_real, d_acc_fake   D's accuracy on the real and the fake batch
  spread                   the fake batch's spread (mean per-feature standard deviation)
                           over the real batch's: about 1 when G covers the data, near 0
                           when it collapses
  label_entropy            (the K+1 GAN) entropy of D's class prediction averaged over the
                           fake batch, over log K: 1 when samples spread over all classes,
                           0 when they all look like one

`Monitor` reads the records: a warning names the step where D has won, where the spread or
the label entropy collapsed, or where the run is blowing up without a NaN yet (losses of
1e30, G's gradients exactly 0, samples far wider than the data: what learning rates of 10
and more do), for ``patience`` records in a row; with ``halt`` it stops the run
(`Collapsed`).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

Array = jax.Array


class Collapsed(RuntimeError):
    """The run stopped because D won or G collapsed (``--halt-on-collapse``)."""


def accuracy(real_logits: Array, fake_logits: Array, decision: float = 0.0
             ) -> tuple[Array, Array]:
    """D's accuracy on real and on fake data: the fraction of real outputs above
    ``decision`` (the output halfway between the objective's real and fake targets) and of
    fake outputs below it."""
    return (jnp.mean((real_logits > decision).astype(jnp.float32)),
            jnp.mean((fake_logits < decision).astype(jnp.float32)))


def spread(real: Array, fake: Array) -> Array:
    """The fake batch's mean per-feature standard deviation over the real batch's (per pixel
    for images, per coordinate for points): ~1 when G's samples vary as much as the data,
    -> 0 when G maps every z to nearly the same output."""
    def std(x):
        return jnp.mean(jnp.std(x.reshape(x.shape[0], -1).astype(jnp.float32), axis=0))

    return std(fake) / jnp.maximum(std(real), 1e-12)


def grad_norm(grads) -> Array:
    """The global L2 norm of a gradient pytree (what `optax.tree.norm` computes).

    Taken behind an `optimization_barrier` so that XLA cannot merge its squares with the
    optimiser's: Adam's second moment squares the same gradients, and XLA computes that
    ``g * g`` once and writes it to memory for both consumers (LSGAN's 6272x1024 kernels:
    a 26 MB array written and read again per matrix, ~5% of the step on a 2-core CPU). Behind
    the barrier each reads the gradient in one pass: an in-process A/B of the LSGAN MNIST step
    ran 1.02-1.05x faster, the cGAN MLPs 1.01x, with the same norms.
    """
    return optax.tree.norm(jax.lax.optimization_barrier(grads))


def label_entropy(class_logits: Array) -> Array:
    """Entropy of the mean predicted class distribution over a batch, over ``log K``: 1
    when the batch's predictions spread evenly over the K classes, 0 when all are one."""
    p = jnp.mean(jax.nn.softmax(class_logits.astype(jnp.float32), axis=-1), axis=0)
    k = class_logits.shape[-1]
    return -jnp.sum(p * jnp.log(jnp.maximum(p, 1e-12))) / jnp.log(k)


@dataclasses.dataclass
class Monitor:
    """Warns (once per episode) when a signal stays past its threshold for ``patience``
    records in a row; with ``halt``, raises `Collapsed` instead.

    Thresholds: D wins when both accuracies are at least ``d_wins``; G collapses when the
    spread falls below ``min_spread`` or the label entropy below ``min_entropy``; the run is
    blowing up when the spread exceeds ``max_spread``, a loss's magnitude ``max_loss``, or
    G's gradient norm is exactly 0 (a saturated D passes none back).
    The defaults were chosen on runs that did and did not go wrong (README, "When things go
    wrong"): healthy ring8 runs keep D's accuracies near 0.5 and the spread near 1 (0.14 to
    0.18 at the start), LSGAN on MNIST keeps them below 0.98 and above 0.37 in its first
    steps; a learning rate of 0.1 makes D win by step 400 and spreads G's samples 140 times
    wider than the ring; a mixture collapsed onto one mode has a spread of about 0.014.
    """

    patience: int = 3
    d_wins: float | None = 0.99  # None: D is meant to win (the K+1 GAN)
    min_spread: float = 0.02
    max_spread: float = 10.0
    min_entropy: float = 0.3
    max_loss: float = 1e6
    halt: bool = False
    quiet: bool = False  # a multi-process run's other processes: halt alike, print nothing
    label: str = ""  # what the warning is about, e.g. a comparison's entry
    # Above a progress bar, not through it.
    warn: Callable[[str], None] = lambda message: tqdm.write(message, file=sys.stderr)

    def __post_init__(self):
        self._streak: dict[str, int] = {}
        self.events: list[tuple[int, str]] = []

    def _conditions(self, record: dict) -> dict[str, str]:
        def worst(key, fn):  # a stacked run: the worst seed
            v = record.get(key)
            return None if v is None else float(fn(np.asarray(v, float)))

        found = {}
        real, fake = record.get("d_acc_real"), record.get("d_acc_fake")
        if real is not None and fake is not None:
            # A stacked run: the seed whose D is surest on both.
            i = int(np.argmax(np.minimum(np.asarray(real, float), np.asarray(fake, float))))
            real, fake = np.ravel(real)[i], np.ravel(fake)[i]
        if (self.d_wins is not None and real is not None and fake is not None
                and min(real, fake) >= self.d_wins):
            found["d_wins"] = (f"D wins: it tells real from fake almost perfectly (accuracy "
                               f"{real:.3f} real, {fake:.3f} fake), so G no longer learns "
                               "what the data looks like")
        s = worst("spread", np.min)
        if s is not None and s < self.min_spread:
            found["spread"] = (f"G's samples collapsed: their spread is {s:.3g} of the "
                               "data's")
        s = worst("spread", np.max)
        if s is not None and s > self.max_spread:
            found["spread_wide"] = (f"G's samples spread {s:.3g} times wider than the data "
                                    "(the learning rates are likely too high)")
        h = worst("label_entropy", np.min)
        if h is not None and h < self.min_entropy:
            found["label_entropy"] = (f"G's samples collapsed onto few classes (label "
                                      f"entropy {h:.2f} of the maximum)")
        g = worst("g_grad_norm", np.min)
        if g is not None and g == 0.0:
            found["g_still"] = ("G's gradients are exactly zero: D's output saturates (the "
                                "learning rates are likely too high)")
        losses = [abs(v) for k in ("d_loss", "g_loss", "loss")
                  if (v := worst(k, lambda a: np.max(np.abs(a)))) is not None]
        if losses and max(losses) > self.max_loss:
            found["loss"] = (f"the losses exploded (|loss| up to {max(losses):.3g}; the "
                             "learning rates are likely too high)")
        return found

    def __call__(self, record: dict) -> None:
        found = self._conditions(record)
        for key in list(self._streak):
            if key not in found:
                del self._streak[key]  # the episode is over: a new one warns again
        for key, what in found.items():
            self._streak[key] = self._streak.get(key, 0) + 1
            if self._streak[key] != self.patience:
                continue
            about = f"{self.label} " if self.label else ""
            message = (f"{about}at step {record['step']}: {what} for {self.patience} records "
                       "in a row")
            self.events.append((record["step"], key))
            if self.halt:
                raise Collapsed(f"{message} (--halt-on-collapse)")
            if not self.quiet:
                self.warn(f"jaxgan: warning {message}; --halt-on-collapse stops such a "
                          "run")
