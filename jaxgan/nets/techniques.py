"""Layers of "Improved Techniques for Training GANs" (Salimans et al. 2016, arXiv:1606.03498).

* :class:`MinibatchDiscrimination` (Sec. 3.2) and :class:`MinibatchDiscriminator`, which adds
  it to any discriminator between ``features`` and ``head`` (as `jaxgan.nets.conditional`
  wraps any network for labels), so ``--minibatch-disc`` needs no change to an architecture.
* :class:`VirtualBatchNorm` (Sec. 3.5) and :func:`with_virtual_batch_norm`, which swaps every
  ``nnx.BatchNorm`` of any generator for it and feeds a fixed reference batch through G
  alongside each batch (:class:`VBNGenerator`).
* :class:`WeightNormDense` (Salimans & Kingma 2016, with data-dependent initialisation) and
  :class:`GaussianNoise`, the parts of the official semi-supervised MNIST discriminator
  (`jaxgan.nets.ssl_mnist`).

References:
  Salimans, Goodfellow, Zaremba, Cheung, Radford, Chen 2016, Improved Techniques for Training
  GANs, https://arxiv.org/abs/1606.03498; official code https://github.com/openai/improved-gan
  Salimans & Kingma 2016, Weight Normalization, https://arxiv.org/abs/1602.07868
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array


class MinibatchDiscrimination(nnx.Module):
    """Minibatch discrimination: each example learns how close it is to the rest of its batch.

    For features ``f(x_i) in R^A`` and a learned tensor ``T in R^{A x B x C}``:
    ``M_i = f(x_i) T in R^{B x C}``, ``c_b(x_i, x_j) = exp(-|| M_{i,b} - M_{j,b} ||_1)``,
    ``o(x_i)_b = sum_j c_b(x_i, x_j)``; the layer returns ``o`` ``(N, B)``; the caller
    concatenates it to ``f`` (see :class:`MinibatchDiscriminator`). A batch of identical
    examples gives ``o_b = N`` (``N - 1`` without the self-term); a collapsed G is thereby
    visible to D. Real and generated batches must be passed separately (the paper; jaxgan's
    step already runs them through D apart).

    Choices (``include_self``, ``use_bias``): the paper sums over all ``j``; the official code
    excludes ``j = i`` and adds a learned bias to ``o``. Followed by a linear layer (as in
    :class:`MinibatchDiscriminator` and the official code) both only shift the logit by a
    constant the next layer's bias absorbs, so the default is the paper's (self-term
    included, no bias). The self-term is removed by subtracting ``exp(0) = 1``, which is exact.
    The official code also weight-normalises ``T`` with a data-dependent scale; here ``T`` is
    a plain parameter drawn from ``N(0, init_std^2)`` (the official ``theta`` init, 0.05).

    Cost: the pairwise L1 distances are ``N^2 B C`` numbers, accumulated one of the ``C``
    coordinates at a time into a ``(B, N, N)`` array with the batch axis innermost, so memory
    is ``B N^2`` (100 MB at ``N = 512, B = 100``) and the CPU vectorises along the batch.
    (Measured, forward + backward at ``N = 128, B = 50, C = 5`` on 2 cores: 12 ms, against 43
    ms for row blocks of ``(N, B, C)`` differences, whose innermost axis is the short ``C``.)

    Args:
      in_features: A.
      num_kernels: B (the official CIFAR / SVHN code: 100).
      kernel_dim: C (official: 5).
      include_self: sum over ``j = i`` too (the paper) or not (the official code).
      use_bias: add a learned bias to ``o`` (the official code; initialised to 0 here).
      init_std: standard deviation of ``T``'s initialisation.
      rngs: parameter keys.

    References:
      Salimans et al. 2016, Sec. 3.2 and Fig. 1. https://arxiv.org/abs/1606.03498
    """

    def __init__(
        self,
        in_features: int,
        num_kernels: int = 100,
        kernel_dim: int = 5,
        *,
        include_self: bool = True,
        use_bias: bool = False,
        init_std: float = 0.05,
        rngs: nnx.Rngs,
    ):
        self.in_features = in_features
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.include_self = include_self
        init = nnx.initializers.normal(stddev=init_std)
        self.T = nnx.Param(init(rngs.params(), (in_features, num_kernels, kernel_dim)))
        self.bias = nnx.Param(jnp.zeros((num_kernels,))) if use_bias else None

    def __call__(self, f: Array) -> Array:
        """``(N, A)`` features -> ``(N, B)`` closeness to the batch."""
        m = jnp.einsum("na,abc->nbc", f.reshape(f.shape[0], -1), self.T[...])
        mt = m.transpose(1, 2, 0)  # (B, C, N)
        dist = jnp.zeros((mt.shape[0], mt.shape[2], mt.shape[2]), mt.dtype)
        for c in range(mt.shape[1]):  # C is small (5): one (B, N, N) term each
            dist = dist + jnp.abs(mt[:, c, :, None] - mt[:, c, None, :])
        o = jnp.sum(jnp.exp(-dist), axis=-1).T  # (N, B); includes the self term exp(0)
        if not self.include_self:
            o = o - 1.0
        if self.bias is not None:
            o = o + self.bias[...]
        return o


def feature_count(d: nnx.Module) -> int:
    """The width of ``d.features``: its own ``num_features``, or that of the D it wraps."""
    while not hasattr(d, "num_features") and hasattr(d, "base"):
        d = d.base
    if not hasattr(d, "num_features"):
        raise ValueError(f"{type(d).__name__} does not say its number of features (num_features)")
    return int(d.num_features)


class MinibatchDiscriminator(nnx.Module):
    """Any discriminator with minibatch discrimination between ``features`` and ``head``.

    ``features`` is the base's (so feature matching sees the same layer with or without
    it); ``head(f) = base.head(f) + w . o(f)``. For the linear heads of jaxgan's
    discriminators that is exactly a linear layer on ``[f, o(f)]``, the paper's "concatenated
    to f and fed to the next layer", with the base head's weights as the ``f`` part. ``w``
    starts at zero, so training starts from the base D and ``o``'s large initial values
    (up to N) cannot swamp its logits.

    The base keeps its call signature: ``features(x)``, ``features(x, y)`` for a conditional
    D, ``rngs=`` for dropout.
    """

    def __init__(
        self,
        base: nnx.Module,
        *,
        num_kernels: int = 100,
        kernel_dim: int = 5,
        include_self: bool = True,
        rngs: nnx.Rngs,
    ):
        self.base = base
        self.num_features = feature_count(base)
        self.num_classes = getattr(base, "num_classes", None)
        self.mbd = MinibatchDiscrimination(
            self.num_features, num_kernels, kernel_dim, include_self=include_self, rngs=rngs
        )
        self.mbd_out = nnx.Linear(
            num_kernels, 1, use_bias=False, kernel_init=nnx.initializers.zeros_init(), rngs=rngs
        )

    def features(self, *args, **kwargs) -> Array:
        return self.base.features(*args, **kwargs)

    def head(self, f: Array) -> Array:
        return self.base.head(f) + self.mbd_out(self.mbd(f))[:, 0]

    def __call__(self, *args, **kwargs) -> Array:
        return self.head(self.features(*args, **kwargs))


class ReferenceBatch(nnx.Variable):
    """VBN's reference inputs: fixed at the start of training, never optimised (kept in the
    network's non-parameter state, hence in the train state and its checkpoints)."""


class VirtualBatchNorm(nnx.Module):
    """Virtual batch normalisation: each example is normalised with the statistics of a
    reference batch fixed at the start of training, plus the example itself.

    Input ``(R + N, ..., F)``: the first ``R = ref_size`` rows are the reference batch's
    activations (they flow through the network with every batch, so their statistics follow
    the current parameters), the others the live examples. As in the official code
    (openai/improved-gan, ``imagenet`` ``VBN``): the reference rows are normalised with the
    reference statistics (mean over rows and spatial axes); a live example ``x`` with
    ``mean = 1/(R+1) mean(x) + R/(R+1) ref_mean`` (and the same for the mean square), its own
    statistics taken over its spatial axes only. So an example's output does not depend on the
    rest of its batch, unlike batch norm's.

    ``scale`` and ``bias`` are per feature, as batch norm's; ``epsilon`` is added to the
    variance.

    References:
      Salimans et al. 2016, Sec. 3.5. https://arxiv.org/abs/1606.03498
    """

    def __init__(
        self,
        num_features: int,
        *,
        ref_size: int,
        epsilon: float = 1e-5,
        use_scale: bool = True,
        use_bias: bool = True,
        rngs: nnx.Rngs | None = None,
    ):
        if ref_size < 1:
            raise ValueError(f"the reference batch needs at least one example, got {ref_size}")
        self.num_features = num_features
        self.ref_size = ref_size
        self.epsilon = epsilon
        self.scale = nnx.Param(jnp.ones((num_features,))) if use_scale else None
        self.bias = nnx.Param(jnp.zeros((num_features,))) if use_bias else None

    def __call__(self, x: Array) -> Array:
        r = self.ref_size
        axes = tuple(range(1, x.ndim - 1))  # each example's own (spatial) axes
        ref = x[:r]
        ref_mean = jnp.mean(ref, axis=(0, *axes), keepdims=True)
        ref_sq = jnp.mean(jnp.square(ref), axis=(0, *axes), keepdims=True)
        live = x[r:]
        c = 1.0 / (r + 1.0)
        mean = c * jnp.mean(live, axis=axes, keepdims=True) + (1.0 - c) * ref_mean
        sq = c * jnp.mean(jnp.square(live), axis=axes, keepdims=True) + (1.0 - c) * ref_sq
        out = jnp.concatenate(
            [self._normalise(ref, ref_mean, ref_sq), self._normalise(live, mean, sq)]
        )
        return out

    def _normalise(self, x: Array, mean: Array, sq: Array) -> Array:
        # E[x^2] - E[x]^2 is a variance (of the reference rows mixed with the example), >= 0;
        # the clamp only removes float rounding below zero.
        var = jnp.maximum(sq - jnp.square(mean), 0.0)
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        if self.scale is not None:
            y = y * self.scale[...]
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class VBNGenerator(nnx.Module):
    """``G(z) = base([z_ref, z])[R:]``: a generator whose normalisation layers are
    :class:`VirtualBatchNorm` sees the fixed reference batch ahead of every batch.

    ``z_ref`` (and, for a conditional G, ``y_ref``) are :class:`ReferenceBatch` variables:
    part of G's state, not its parameters. Made by :func:`with_virtual_batch_norm`.
    """

    def __init__(self, base: nnx.Module, z_ref: Array, y_ref: Array | None = None):
        self.base = base
        self.z_ref = ReferenceBatch(z_ref)
        self.y_ref = None if y_ref is None else ReferenceBatch(jnp.asarray(y_ref, jnp.int32))
        self.ref_size = int(z_ref.shape[0])
        self.z_dim = base.z_dim
        self.out_shape = base.out_shape
        self.num_classes = getattr(base, "num_classes", None)

    def __call__(self, z: Array, y: Array | None = None, **kwargs) -> Array:
        zz = jnp.concatenate([self.z_ref[...], z])
        if self.y_ref is None:
            return self.base(zz, **kwargs)[self.ref_size :]
        yy = jnp.concatenate([self.y_ref[...], y.astype(jnp.int32)])
        return self.base(zz, yy, **kwargs)[self.ref_size :]


def with_virtual_batch_norm(
    generator: nnx.Module, z_ref: Array, y_ref: Array | None = None
) -> VBNGenerator:
    """Replaces every ``nnx.BatchNorm`` of ``generator`` (in place) by a
    :class:`VirtualBatchNorm` with the same ``epsilon``, scale and bias, and wraps it to carry
    the reference batch ``z_ref`` (``(R, z_dim)``; ``y_ref`` ``(R,)`` labels for a conditional
    G). Raises if G has no batch norm (virtual batch norm would change nothing).
    """
    ref_size = int(z_ref.shape[0])
    found = []
    for path, module in list(nnx.iter_modules(generator)):
        if isinstance(module, nnx.BatchNorm):
            found.append(path)
            vbn = VirtualBatchNorm(
                module.num_features,
                ref_size=ref_size,
                epsilon=module.epsilon,
                use_scale=module.scale is not None,
                use_bias=module.bias is not None,
            )
            if module.scale is not None:
                vbn.scale[...] = module.scale[...]
            if module.bias is not None:
                vbn.bias[...] = module.bias[...]
            parent = generator
            for name in path[:-1]:
                parent = parent[name] if isinstance(name, int) else getattr(parent, name)
            if isinstance(path[-1], int):
                parent[path[-1]] = vbn
            else:
                setattr(parent, path[-1], vbn)
    if not found:
        raise ValueError(
            f"{type(generator).__name__} has no BatchNorm layer for virtual batch norm to "
            "replace (use a generator with batch norm, e.g. --arch lsgan_mnist or dcgan)"
        )
    return VBNGenerator(generator, z_ref, y_ref)


class GaussianNoise(nnx.Module):
    """Adds ``N(0, std^2)`` noise in training; the identity when ``deterministic`` (inference,
    `jaxgan.state.eval_view`) or ``std == 0``. Keys come at call time from the ``noise``
    stream of ``rngs`` (as dropout's do), derived from the step's key.

    The official semi-supervised discriminators regularise with it: std 0.3 on the input,
    0.5 after each hidden layer (``nn.GaussianNoiseLayer``).
    """

    def __init__(self, std: float, *, deterministic: bool = False):
        self.std = std
        self.deterministic = deterministic

    def set_view(self, deterministic: bool | None = None):
        """Used by ``nnx.view`` (`jaxgan.state.eval_view`).

        Args:
          deterministic: if True, no noise is added.
        """
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(self, x: Array, *, rngs: nnx.Rngs | None = None) -> Array:
        if self.deterministic or self.std == 0:
            return x
        if rngs is None:
            raise ValueError("GaussianNoise in training needs rngs= with a 'noise' stream")
        return x + self.std * jax.random.normal(rngs.noise(), x.shape, x.dtype)


class FixedScale(nnx.Variable):
    """A weight-norm scale set by data-dependent initialisation and then kept (the official
    MNIST discriminator's hidden layers, ``train_scale=False``): state, not a parameter."""


class WeightNormDense(nnx.Module):
    """A weight-normalised dense layer ``y = x (g * V / ||V||) + b``, norms per output unit.

    Data-dependent initialisation (Salimans & Kingma 2016, Sec. 3): with ``init_mode`` set,
    a call on a batch computes ``t = x (g V / ||V||)``, sets ``g <- g / std(t)`` and
    ``b <- -mean(t) / std(t)`` (per unit) and returns the normalised ``t``, so every unit
    starts with zero mean and unit variance on that batch; run it on the whole network in
    order (`data_dependent_init`). The official MNIST discriminator (``nn.DenseLayer``) draws
    ``V ~ N(0, 0.1^2)``, keeps ``g`` fixed after initialisation in the hidden layers and
    trains it in the output layer (``trainable_scale``); its generator's output layer
    (``nn.l2normalize``) has a trained ``g`` starting at 1 and a 1e-6 inside the norm.

    Args:
      in_features, out_features: sizes.
      trainable_scale: ``g`` an ``nnx.Param`` (trained) or a :class:`FixedScale`.
      v_init: initialiser of ``V``.
      eps: added to ``||V||^2``.
      rngs: parameter keys.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        trainable_scale: bool = False,
        v_init=nnx.initializers.normal(stddev=0.1),
        eps: float = 0.0,
        rngs: nnx.Rngs,
    ):
        self.in_features = in_features
        self.out_features = out_features
        self.eps = eps
        self.V = nnx.Param(v_init(rngs.params(), (in_features, out_features)))
        scale = jnp.ones((out_features,))
        self.g = nnx.Param(scale) if trainable_scale else FixedScale(scale)
        self.b = nnx.Param(jnp.zeros((out_features,)))
        self.init_mode = False

    def kernel(self) -> Array:
        v = self.V[...]
        return v * (self.g[...] / jnp.sqrt(jnp.sum(jnp.square(v), axis=0) + self.eps))

    def __call__(self, x: Array) -> Array:
        t = x.reshape(x.shape[0], -1) @ self.kernel()
        if not self.init_mode:
            return t + self.b[...]
        mean = jnp.mean(t, axis=0)
        std = jnp.sqrt(jnp.mean(jnp.square(t - mean), axis=0))
        self.g[...] = self.g[...] / std
        self.b[...] = -mean / std
        return (t - mean) / std


def data_dependent_init(module: nnx.Module, fn=None):
    """Initialises every :class:`WeightNormDense` of ``module`` from data, in place.

    ``fn(module)`` runs the forward pass on the initialisation batch (default: none given,
    so pass e.g. ``lambda d: d(x, rngs=nnx.Rngs(noise=key))``). It is run once, compiled,
    with the layers in initialisation mode: each layer is normalised on the batch as the
    layers below it already normalise it. Returns ``fn``'s output.
    """
    layers = [m for _, m in nnx.iter_modules(module) if isinstance(m, WeightNormDense)]
    for m in layers:
        m.init_mode = True
    try:
        graph, state = nnx.split(module)
    finally:
        for m in layers:
            m.init_mode = False

    @jax.jit
    def run(state):
        m = nnx.merge(graph, state, copy=True)
        out = fn(m)
        return out, nnx.state(m)

    out, new_state = run(state)
    nnx.update(module, new_state)
    return out
