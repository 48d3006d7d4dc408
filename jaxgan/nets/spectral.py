"""Spectral normalisation of a discriminator's layers (Miyato et al. 2018).

Each weight matrix ``W`` of D is used as ``W / sigma(W)``, ``sigma`` its largest singular
value, so every layer's Lipschitz constant is bounded by 1 and, its activations (ReLU,
LeakyReLU, tanh) being 1-Lipschitz too, so is D's: D cannot grow arbitrarily steep around
the data, which keeps its gradients to G informative without a penalty term (Sec. 2).

Flax's own ``nnx.SpectralNorm`` does the work. ``sigma`` is estimated by power iteration,
whose vector ``u`` and last ``sigma`` are ``nnx.BatchStat`` variables: they are not
parameters but D's statistics, so they sit in `jaxgan.state.GANState`'s ``d_stats`` beside
BatchNorm's and are checkpointed with them. Each train-mode call of a layer runs ``n_steps``
power iterations from the stored ``u``, divides by the resulting ``sigma`` and returns the
advanced ``u`` and that ``sigma`` in the new statistics (`jaxgan.functional.apply`); the D
update calls D on real and fake data apart, so ``u`` advances twice a step. In inference
mode (`jaxgan.functional.eval_view`, ``use_running_average=True``) the statistics are
frozen: the layer still iterates from the stored ``u``, but keeps nothing, so every
inference call divides by the same ``sigma``. ``u`` and ``v`` carry no gradient: the
gradient flows through ``W / sigma`` with ``sigma = v W u^T`` a linear function of ``W``.

A convolution's kernel is normalised as its ``(kh * kw * in, out)`` matrix, as in Flax and
in Miyato et al.'s code (a bound on the kernel's matrix, not the exact norm of the
convolution operator). Flax writes ``W / sigma`` into the wrapped layer's kernel during the
call; the functional helpers discard those merged parameters, so the stored ``W`` stays the
raw one. (Calling a wrapped module eagerly, outside them, overwrites ``W`` by ``W / sigma``.)

References:
  Miyato, Kataoka, Koyama & Yoshida, Spectral Normalization for Generative Adversarial
  Networks, 2018, Sec. 2.1 and Algorithm 1, https://arxiv.org/abs/1802.05957
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx


class SpectralNorm(nnx.SpectralNorm):
    """``nnx.SpectralNorm`` with two fixes for its use in jaxgan.

    * `nnx.view` (`jaxgan.functional.eval_view`) switches it to inference mode like
      BatchNorm: Flax's class keeps a ``use_running_average`` attribute but has no
      ``set_view``, so its power iteration would otherwise run on in sampling and evaluation.
    * A zero weight maps ``u`` to zero, and power iteration never leaves zero: the
      minibatch-discrimination head (`jaxgan.nets.techniques.MinibatchDiscriminator`)
      starts at zero, and would stay unnormalised for the whole run. A ``u`` that the
      iteration zeroes is not stored (the old one is kept until ``W`` is nonzero).
    """

    def set_view(self, use_running_average: bool | None = None):
        if use_running_average is not None:
            self.use_running_average = use_running_average

    def __call__(self, x, update_stats: bool | None = None):
        if update_stats is None:
            update_stats = not self.use_running_average
        if not update_stats:
            return super().__call__(x, update_stats=False)
        before = {path: stat[...] for path, stat in self.batch_stats.items() if path[-1] == "u"}
        out = super().__call__(x, update_stats=True)
        for path, u in before.items():
            new = self.batch_stats[path][...]
            self.batch_stats[path][...] = jnp.where(jnp.any(new != 0), new, u)
        return out


# The layers whose weights are normalised. Embeddings are lookups, not linear maps of the
# input, and stay as they are (as in Miyato & Koyama's projection D).
_NORMALISED = (nnx.Linear, nnx.Conv, nnx.ConvTranspose)


def spectral_norm(module: nnx.Module, rngs: nnx.Rngs, *, n_steps: int = 1) -> nnx.Module:
    """Wraps every ``nnx.Linear``, ``nnx.Conv`` and ``nnx.ConvTranspose`` inside ``module``
    in `SpectralNorm` (Flax's ``nnx.SpectralNorm``, made switchable to inference mode), in
    place, and returns ``module``.

    Layers are found at any depth: as attributes, in ``nnx.List`` / ``nnx.Dict`` and in
    lists, tuples and dicts (``nnx.data``), inside wrappers such as the conditional and the
    minibatch-discrimination D. A layer held in two places gets one wrapper; layers already
    wrapped are left as they are. ``nnx.Embed`` is not normalised.

    Args:
      module: the discriminator (any ``nnx.Module``).
      rngs: draws each layer's initial power-iteration vector ``u`` (its ``params`` stream).
      n_steps: power iterations per call (Miyato et al. use 1: ``u`` persists across calls,
        so the estimate keeps improving as training runs).

    Raises:
      ValueError: ``module`` holds no layer to normalise (a plug-in D built of other layers
        says so rather than training unnormalised).
    """
    ctx = _Walk(rngs, n_steps)
    ctx.visit(module)
    if not ctx.count:
        raise ValueError(f"spectral_norm found no Linear or Conv layer in "
                         f"{type(module).__name__}: spectral normalisation divides those "
                         "layers' weights by their largest singular value; drop "
                         "--spectral-norm for this discriminator")
    return module


class _Walk:
    """One pass over a module tree; ``count`` layers normalised (or found normalised)."""

    def __init__(self, rngs: nnx.Rngs, n_steps: int):
        self.rngs = rngs
        self.n_steps = n_steps
        self.count = 0
        # id -> replacement, so a shared submodule is visited once and a shared layer gets one
        # wrapper (two would each keep a power iteration of the same weight).
        self.done: dict[int, object] = {}

    def visit(self, value):
        """``value``, with every layer inside it wrapped (lists and dicts in place)."""
        if isinstance(value, nnx.Module):
            if id(value) not in self.done:
                self.done[id(value)] = value  # a reference cycle ends here
                self.done[id(value)] = self._module(value)
            return self.done[id(value)]
        if isinstance(value, list):
            return self._fill(value, range(len(value)))
        if isinstance(value, dict):
            return self._fill(value, list(value))
        if isinstance(value, tuple):
            items = [self.visit(item) for item in value]
            if all(a is b for a, b in zip(items, value)):
                return value
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
        return value

    def _fill(self, container, keys):
        for key in keys:
            item = container[key]
            new = self.visit(item)
            if new is not item:
                container[key] = new
        return container

    def _module(self, module: nnx.Module):
        if isinstance(module, nnx.SpectralNorm):
            self.count += 1  # already normalised: counted, not wrapped twice
            return module
        if isinstance(module, _NORMALISED):
            self.count += 1
            return SpectralNorm(module, n_steps=self.n_steps, rngs=self.rngs)
        if isinstance(module, nnx.List):
            return self._fill(module, range(len(module)))
        if isinstance(module, nnx.Dict):
            return self._fill(module, list(module.keys()))
        for name, value in list(vars(module).items()):
            if name.startswith("_"):  # NNX's own bookkeeping
                continue
            new = self.visit(value)
            if new is not value:
                # A rebuilt tuple must stay a data attribute, as the one it replaces was.
                setattr(module, name, nnx.data(new) if isinstance(new, tuple) else new)
        return module
