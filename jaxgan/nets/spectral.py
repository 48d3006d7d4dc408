"""Spectral normalisation of a discriminator's layers (Miyato et al. 2018).

Each weight matrix ``W`` of D is used as ``W / sigma(W)``, ``sigma`` its largest singular
value, so every layer is 1-Lipschitz and D as a whole is Lipschitz-bounded (its activations
are 1-Lipschitz too): D cannot grow arbitrarily steep around the data, which keeps its
gradients to G informative without a penalty term.

Flax's own ``nnx.SpectralNorm`` does the work: ``sigma`` is estimated by power iteration,
its vector ``u`` (and the last ``sigma``) kept as ``nnx.BatchStat``, so they live in D's
statistics in `jaxgan.state.GANState` (``d_stats``), are checkpointed with them, advance by
one power iteration per train-mode call of a layer (the D update calls D once per batch,
real and fake, so two a step) and stay frozen in inference mode (`jaxgan.functional.
eval_view`). A convolution's kernel is normalised as its ``(kh * kw * in, out)`` matrix, as
in Flax and in Miyato et al.'s code. ``u`` and ``v`` carry no gradient: the gradient flows
through ``W / sigma`` with ``sigma`` taken as the estimate's function of ``W`` alone.

References:
  Miyato, Kataoka, Koyama & Yoshida, Spectral Normalization for Generative Adversarial
  Networks, 2018, Sec. 2.1 and Algorithm 1, https://arxiv.org/abs/1802.05957
"""

from __future__ import annotations

from flax import nnx


class SpectralNorm(nnx.SpectralNorm):
    """``nnx.SpectralNorm`` that `nnx.view` (`jaxgan.functional.eval_view`) switches to
    inference mode like BatchNorm: Flax's class keeps a ``use_running_average`` attribute but
    has no ``set_view``, so without this its power iteration would run on in sampling and
    evaluation."""

    def set_view(self, use_running_average: bool | None = None):
        if use_running_average is not None:
            self.use_running_average = use_running_average


# The layers whose weights are normalised. Embeddings are lookups, not linear maps of the
# input, and stay as they are (as in Miyato & Koyama's projection D).
_NORMALISED = (nnx.Linear, nnx.Conv, nnx.ConvTranspose)


def spectral_norm(module: nnx.Module, rngs: nnx.Rngs, *, n_steps: int = 1) -> nnx.Module:
    """Wraps every Linear and Conv layer inside ``module`` (in place, at any depth, in
    attributes and in ``nnx.List`` / ``nnx.Dict`` / list / tuple / dict containers) in
    `SpectralNorm` (Flax's, made switchable to inference mode) with ``n_steps`` power
    iterations per call; returns ``module``.

    ``rngs`` draws each layer's initial ``u``. Raises ValueError when there is no layer to
    normalise (a plug-in D built of other layers says so rather than training unnormalised).
    """
    count = _wrap(module, rngs, n_steps, seen=set())
    if not count:
        raise ValueError(f"spectral_norm found no Linear or Conv layer in "
                         f"{type(module).__name__}: spectral normalisation divides those "
                         "layers' weights by their largest singular value; drop "
                         "--spectral-norm for this discriminator")
    return module


def _wrap_one(value, rngs, n_steps, seen) -> tuple[object, int]:
    """``value`` wrapped if it is a layer to normalise, else recursed into; and the count."""
    if isinstance(value, nnx.SpectralNorm):
        return value, 1  # already normalised: counted, not wrapped twice
    if isinstance(value, _NORMALISED):
        return SpectralNorm(value, n_steps=n_steps, rngs=rngs), 1
    if isinstance(value, (nnx.List, list)):
        count = 0
        for i, item in enumerate(value):
            value[i], n = _wrap_one(item, rngs, n_steps, seen)
            count += n
        return value, count
    if isinstance(value, tuple):
        items = [_wrap_one(item, rngs, n_steps, seen) for item in value]
        return type(value)(v for v, _ in items), sum(n for _, n in items)
    if isinstance(value, (nnx.Dict, dict)):
        count = 0
        for k in list(value.keys()):
            value[k], n = _wrap_one(value[k], rngs, n_steps, seen)
            count += n
        return value, count
    if isinstance(value, nnx.Module):
        return value, _wrap(value, rngs, n_steps, seen)
    return value, 0


def _wrap(module: nnx.Module, rngs, n_steps, seen) -> int:
    if id(module) in seen:  # a module shared by two parents is wrapped once
        return 0
    seen.add(id(module))
    count = 0
    for name, value in list(vars(module).items()):
        if name.startswith("_"):
            continue
        new, n = _wrap_one(value, rngs, n_steps, seen)
        if n and new is not value:
            setattr(module, name, new)
        count += n
    return count
