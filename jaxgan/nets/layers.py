"""The generators' 2x upsampling layer, in forms that are fast on XLA:CPU, and init helpers.

Both GAN papers of this package double the resolution with a 4x4 stride-2 transposed
convolution with padding 1 (PyTorch's ``ConvTranspose2d(c_in, c_out, 4, 2, 1)``). On XLA:CPU
the *kernel gradient* of that op, lowered as an input-dilated convolution, is very slow (a
hand-written LSGAN MNIST step ran at 0.7x PyTorch's speed). :class:`Upsample2x` keeps the
parameters of the transposed convolution (so checkpoints, initialisation and parameter
counts are unchanged) but computes the same function from ops whose gradients are cheap:

* ``impl="gemm"`` (default): one matrix product gives every input pixel's 4x4 output
  footprint, ``P[n, h, w, ky, kx, :] = x[n, h, w, :] @ kernel[ky, kx]``, and the footprints
  are overlap-added (col2im) by 4 shifted pads. Same FLOPs as the transposed convolution;
  autodiff turns it into two more 2-D matrix products plus slicing (im2col of the
  cotangent). Its transient ``P`` is 4x the size of the output.
* ``impl="conv3x3"``: a 3x3 stride-1 'SAME' convolution to ``4 * out`` channels followed by
  depth-to-space (pixel shuffle); the 3x3 kernel is a differentiable rearrangement of the
  4x4 one. 2.25x the FLOPs (20 of the 36 taps per (in, out) pair are zero) but no transient
  beyond the output.

``benchmarks/upsample.py`` times forward + backward (batch 64, 2 shared CPU cores): at the
LSGAN MNIST shapes gemm was 19x (7x7x128 -> 14x14x64) and 3x (14x14x64 -> 28x28x1) faster
than the textbook form, and 3.4x / 3x faster than conv3x3; at the DCGAN 64 px shapes 10x to
38x faster than the textbook form. ``tests/test_nets_layers.py`` proves outputs and
gradients equal to :func:`conv_transpose_reference` and to PyTorch's definition, on
hand-worked examples and random shapes.

The GEMMs of these layers, and the dense layers of the networks with large kernels, multiply
through :func:`matmul`: ``x @ kernel``, whose gradients on CPU take the products XLA:CPU runs
fastest (:func:`weight_gradient`), tested equal to ``jnp.dot``'s in every derivative.

The discriminators halve the resolution with a 4x4 stride-2 convolution with padding 1
(PyTorch's ``Conv2d(c_in, c_out, 4, 2, 1)``). :class:`Downsample2x` is that ``nnx.Conv``, whose
call on CPU is :func:`conv_down_gemm`: space-to-depth of the padded input, im2col of its 4
block offsets, one 2-D GEMM. Its forward and backward alone time like XLA's strided
convolution (``benchmarks/upsample.py``: 14x14x64 -> 7x7x128, batch 64, 18.5 against 18.4
ms), but inside the training steps the strided convolution's kernel gradients (input-dilated
convolutions) ran at 40-60 GFLOP/s (LSGAN step's profile; why there and not alone was not
found), the GEMM form's products at about 130. Whole steps, one process alternating
windows: LSGAN MNIST 1.048x, 1.091x and 1.060x, DCGAN at 64 px 1.48x (1.40x from its layers
after the first, 1.03x from the first alone). On GPU and TPU the backend's own convolutions
stay.

Kernel convention: ``kernel[ky, kx, i, o]`` is PyTorch's ``ConvTranspose2d.weight[i, o, ky,
kx]`` (torch stores ``(in, out, kh, kw)``). With it the op is PyTorch's documented scatter,
per spatial axis ``out[2 * m - 1 + k] += x[m] * kernel[k]`` for taps k = 0..3, keeping
output indices 0 .. 2H - 1.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax.nnx.nn import normalization as _norm
from jax.custom_derivatives import SymbolicZero

from jaxgan import xla_cpu
from jaxgan.functional import interleave_rows, row_grouped

Initializer = Callable[..., jax.Array]

_DIMS = ("NHWC", "HWIO", "NHWC")

# DCGAN (Radford et al. 2015, Sec. 4): "All weights were initialized from a zero-centered
# Normal distribution with standard deviation 0.02."
dcgan_init: Initializer = nnx.initializers.normal(stddev=0.02)

# PyTorch's default for Linear / Conv weights: kaiming_uniform(a=sqrt(5)), which is
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)), i.e. variance 1 / (3 fan_in).
torch_kernel_init: Initializer = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# PyTorch takes a ConvTranspose2d's fan_in from dim 1 of its (in, out, kh, kw) weight, i.e.
# out * kh * kw; in our (kh, kw, in, out) layout that is in_axis=-1, out_axis=-2.
torch_transpose_kernel_init: Initializer = nnx.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform", in_axis=-1, out_axis=-2
)


def torch_bias_init(fan_in: int) -> Initializer:
    """PyTorch's default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


# Rows up to which a kernel gradient transposes the layer's input first (`weight_gradient`):
# the batch of a dense layer (64 to 512 here), not the N * H * W rows of a convolution's GEMM.
FEW_ROWS = 512
# Kernel entries from which a dense layer's input gradient takes the wide-output product
# (`matmul`): LSGAN's 1024x6272 and 6272x1024 kernels, not the cGAN MLPs' (at most 1024x794).
BIG_MATRIX = 1024 * 1024


def _gradient_form(rows: int, i: int, o: int) -> str:
    """Which product `weight_gradient` takes for (rows, I) and (rows, O) operands."""
    if jax.default_backend() != "cpu" or i * o <= xla_cpu.SMALL_MATRIX:
        return "plain"
    if rows <= FEW_ROWS:
        return "input_transposed"
    return "wide_output" if o < i else "plain"


def _input_gradient_form(rows: int, i: int, o: int) -> str:
    """Which product the input gradient ``g @ kernel.T`` of `matmul` takes for (rows, I) inputs."""
    if jax.default_backend() != "cpu" or rows > FEW_ROWS or i * o < BIG_MATRIX:
        return "plain"
    return "wide_output"


def weight_gradient(x: jax.Array, g: jax.Array, precision=None) -> jax.Array:
    """``x.T @ g`` for ``x`` (rows, I) and ``g`` (rows, O), the kernel gradient of
    ``x @ kernel``, in the form XLA:CPU multiplies fastest.

    Autodiff gives it as one product contracting both operands' first axis, which XLA:CPU
    runs at half its speed when the (I, O) output is taller than wide (50 against 105 GFLOP/s
    on one core of this project's CPU for LSGAN D's (6272, 1024) x (6272, 128)), and at 88-127
    GFLOP/s on two cores for dense layers at batch 64-128, whatever the shape. On CPU, for
    kernels above `jaxgan.xla_cpu.SMALL_MATRIX` entries (smaller ones run on Eigen, where
    neither form is faster):

    * up to `FEW_ROWS` rows (a dense layer's batch), ``x.T`` materialised (a small copy),
      then a plain product: the cGAN MLPs' and LSGAN's dense layers 1.4-1.7x faster (two
      cores, medians of 7 alternating rounds: e.g. (128, 1024) x (128, 512) 107 -> 177
      GFLOP/s);
    * more rows (a convolution's GEMM) and a taller than wide output: ``(g.T @ x).T``, the
      product with the wide output, then its small transpose: LSGAN's (6272 rows) 87 -> 108,
      DCGAN's (32768, 1024) x (32768, 128) 92 -> 150, (8192, 2048) x (8192, 256) 121 -> 146,
      (2048, 4096) x (2048, 512) 168 -> 193.

    ``optimization_barrier`` keeps XLA from folding the transposes back into the product.
    Whole steps, one process alternating windows: LSGAN MNIST 1.04x, the cGAN MLPs 1.036x
    (21 windows each), DCGAN 64 px 1.07x (7); the K+1 GAN, GLO and ring8 level. Other
    backends: ``x.T @ g``.
    """
    form = _gradient_form(x.shape[0], x.shape[1], g.shape[1])
    if form == "input_transposed":
        return jnp.dot(jax.lax.optimization_barrier(x.T), g, precision=precision)
    if form == "wide_output":
        return jax.lax.optimization_barrier(jnp.dot(g.T, x, precision=precision)).T
    return jnp.dot(x.T, g, precision=precision)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def matmul(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
    """``x @ kernel`` for ``x`` (..., I) and ``kernel`` (I, O), whose gradients in reverse mode
    are the products XLA:CPU runs fastest: the kernel's in `weight_gradient`'s form, and the
    input's, ``g @ kernel.T``, as ``(kernel @ g.T).T`` (the product then its small transpose)
    for up to `FEW_ROWS` rows and kernels of `BIG_MATRIX` entries or more. The latter ran
    at 116-149 GFLOP/s against 165-195 for (64 or 128 rows) x (1024 or 6272 square or
    either way round) on two cores, medians of 7 alternating rounds; LSGAN's step 1.018x
    and 1.022x (one process, 15 and 25 alternating windows). Smaller kernels were level
    either way (the cGAN MLPs': 143 against 136 GFLOP/s for 1024x784).

    A ``custom_jvp``, not a ``custom_vjp``, so that forward mode and every order of
    derivative work as for ``jnp.dot``: the rule writes the tangents ``x @ d_kernel`` and
    ``d_x @ kernel`` so that their transposes, which reverse mode computes, are those
    products."""
    return jnp.dot(x, kernel, precision=precision)


@functools.partial(matmul.defjvp, symbolic_zeros=True)
def _matmul_jvp(precision, primals, tangents):
    x, kernel = primals
    d_x, d_kernel = tangents
    y = jnp.dot(x, kernel, precision=precision)
    terms = []
    if not isinstance(d_x, SymbolicZero):
        if _input_gradient_form(math.prod(x.shape[:-1]), *kernel.shape) == "wide_output":
            # transposed: ((kernel @ g.T) materialised).T
            rows = d_x.reshape(-1, d_x.shape[-1])
            t = jnp.dot(jax.lax.optimization_barrier(rows.T).T, kernel, precision=precision)
            terms.append(t.reshape(y.shape))
        else:
            terms.append(jnp.dot(d_x, kernel, precision=precision))
    if not isinstance(d_kernel, SymbolicZero):
        rows = x.reshape(-1, x.shape[-1])
        form = _gradient_form(*rows.shape, kernel.shape[1])
        if form == "input_transposed":  # transposed: (x.T materialised) @ g
            t = jnp.dot(jax.lax.optimization_barrier(rows.T).T, d_kernel, precision=precision)
        elif form == "wide_output":  # transposed: ((g.T @ x) materialised).T
            t = jnp.dot(jax.lax.optimization_barrier(d_kernel.T), rows.T, precision=precision).T
        else:
            t = jnp.dot(rows, d_kernel, precision=precision)
        terms.append(t.reshape(y.shape))
    return y, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(y)


# A dense layer with at most `NARROW` input or output features (the mixtures' 2-D points in
# and out, a discriminator's one logit) and at least `NARROW_ROWS` rows runs on CPU as
# `narrow_matmul`, not as a matrix product.
NARROW = 2
NARROW_ROWS = 256


def _is_narrow(rows: int, i: int, o: int) -> bool:
    return jax.default_backend() == "cpu" and min(i, o) <= NARROW and rows >= NARROW_ROWS


def narrow_matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x @ kernel`` for ``x`` (..., I) and a kernel (I, O) with at most `NARROW` rows or
    columns, as broadcast products and sums instead of a matrix product.

    Why: XLA:CPU multiplies such thin matrices far below its speed. In ring8's step
    (``jax.profiler`` trace, 2026-12-07) its 8 products with a side of 1 or 2 took 217 us of
    op time for 2 MFLOP, the slowest G's last kernel gradient, (128, 512) x (512, 2), 80 us;
    alone, that layer's forward and backward took 150 us as products and 57 us in this form.
    Here the I <= 2 case is an elementwise sum of I scaled rows of the kernel and the O <= 2
    case O sums along each row, so they and their derivatives, which autodiff takes of these
    plain ops, are loop fusions and reductions. Alone, the other thin layers' products are
    the faster (D's 2 -> 128 first layer 85 against 164 us, its 128 -> 1 logit 34 against 81),
    but in the step taking only G's last layer this way was level with taking them all
    (0.993-0.997x, three alternating runs), so one rule serves. Whole steps, one process, 15
    alternating windows: ring8 1.054x, 1.064x and 1.074x, ring8 x 10 seeds 1.031x; the cGAN
    MLPs level (their 64-128 rows keep the product). Sums in another order than the
    product's, so float32 results differ in the last bits.
    """
    i, o = kernel.shape
    if i <= o:
        y = x[..., :1] * kernel[0]
        for r in range(1, i):
            y = y + x[..., r:r + 1] * kernel[r]
        return y
    return jnp.sum(x[..., None, :] * kernel.T, axis=-1)


def dense_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                      out_sharding=None):
    """``jax.lax.dot_general`` for ``nnx.Linear(..., dot_general=dense_dot_general)``: a
    layer's product ``inputs @ kernel`` goes through `matmul` (its gradients in the products
    XLA:CPU runs fastest), or `narrow_matmul` for a kernel of 1 or 2 rows or columns at many
    rows on CPU; anything else to ``jax.lax.dot_general`` as given."""
    (lhs_contract, rhs_contract), batch = dimension_numbers
    if (rhs.ndim == 2 and tuple(lhs_contract) == (lhs.ndim - 1,) and tuple(rhs_contract) == (0,)
            and not any(batch) and preferred_element_type is None and out_sharding is None):
        if _is_narrow(math.prod(lhs.shape[:-1]), *rhs.shape):
            return narrow_matmul(lhs, rhs)
        return matmul(lhs, rhs, precision)
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                               preferred_element_type=preferred_element_type,
                               out_sharding=out_sharding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def dense_of_parts(parts: tuple[jax.Array, ...], kernel: jax.Array, precision=None) -> jax.Array:
    """``concatenate(parts, -1) @ kernel``, whose gradient takes each part's own product.

    Autodiff of the concatenated product gives every part its gradient as a slice of one
    product over all columns, ``g @ kernel.T``, which XLA does not narrow to the slice: a
    part that needs its gradient pays for all of them. Here each part's gradient is its own
    product with its rows of the kernel, and a part whose gradient is unused costs nothing.
    The widest part takes its columns of the full product instead (about as many FLOPs):
    XLA:CPU copies a row slice of the kernel before multiplying, which for most of the
    kernel costs more than the few extra columns. Reverse mode only (``jax.custom_vjp``).
    """
    return _dense_of_parts_fwd(parts, kernel, precision)[0]


def _dense_of_parts_fwd(parts, kernel, precision):
    x = jnp.concatenate(parts, axis=-1)
    return jnp.dot(x, kernel, precision=precision), (x, kernel, tuple(p.shape[-1] for p in parts))


def _dense_of_parts_bwd(precision, residuals, g):
    x, kernel, widths = residuals
    d_kernel = weight_gradient(x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1]), precision)
    widest = max(range(len(widths)), key=widths.__getitem__)
    d_parts, start = [], 0
    for i, width in enumerate(widths):
        if i == widest:
            d = jnp.dot(g, kernel.T, precision=precision)[..., start:start + width]
        else:
            d = jnp.dot(g, kernel[start:start + width].T, precision=precision)
        d_parts.append(d)
        start += width
    return tuple(d_parts), d_kernel


dense_of_parts.defvjp(_dense_of_parts_fwd, _dense_of_parts_bwd)


class PartsLinear(nnx.Linear):
    """``nnx.Linear`` that also takes its input as a tuple of parts, the input being their
    concatenation along the last axis; the gradient of each part is then its own product
    (`dense_of_parts`, with ``jnp.dot``: a custom ``dot_general`` serves whole inputs only).
    Parameters, init and a plain array input are ``nnx.Linear``'s.

    Why: a conditional D (`jaxgan.nets.conditional.ConditionalDiscriminator`) sees the
    image with the label's embedding concatenated, and needs the embedding's gradient in
    every D update, but not the image's. Concatenated, that gradient came from a [64, 1024]
    x [1024, 794] product per batch, real and fake, of which 10 columns were kept: 9% of
    the cGAN MLP step's FLOPs (``tests/test_nets_layers.py`` checks FLOPs and values).
    """

    def __init__(self, *args, dot_general=dense_dot_general, **kwargs):
        super().__init__(*args, dot_general=dot_general, **kwargs)

    def __call__(self, inputs, out_sharding=None) -> jax.Array:
        if not isinstance(inputs, tuple):
            return super().__call__(inputs, out_sharding=out_sharding)
        widths = [p.shape[-1] for p in inputs]
        if sum(widths) != self.in_features:
            raise ValueError(f"parts of widths {widths} do not make this layer's "
                             f"{self.in_features} input features")
        bias = self.bias[...] if self.bias is not None else None
        *parts, kernel, bias = self.promote_dtype((*inputs, self.kernel[...], bias),
                                                  dtype=self.dtype)
        y = dense_of_parts(tuple(parts), kernel, self.precision)
        if bias is not None:
            y += jnp.reshape(bias, (1,) * (y.ndim - 1) + (-1,))
        return y


def flat_rows(x):
    """``(N, ...)`` -> ``(N, F)``; a tuple of parts for `PartsLinear` part by part."""
    if isinstance(x, tuple):
        return tuple(p.reshape(p.shape[0], -1) for p in x)
    return x.reshape(x.shape[0], -1)


def torch_linear(d_in: int, d_out: int, rngs: nnx.Rngs) -> PartsLinear:
    """A linear layer initialised as PyTorch's ``nn.Linear`` (weights and bias); it takes
    its input whole or in parts (`PartsLinear`)."""
    return PartsLinear(
        d_in, d_out, kernel_init=torch_kernel_init, bias_init=torch_bias_init(d_in), rngs=rngs
    )


class GroupedDropout(nnx.Dropout):
    """``nnx.Dropout`` that also takes ``rngs`` as a tuple of ``k`` streams, one per row group
    (rows ``j, j + k, ...``, `jaxgan.functional.row_grouped`): group ``j`` gets the mask a
    call on that group alone with ``rngs[j]`` would draw.

    Why: the D update scores real and fake data in one call on both batches interleaved when
    D mixes no examples (`jaxgan.step.make_train_step`, ``merge_real_fake``). With plain
    dropout that one call would draw one mask from one stream, other numbers than the two
    calls of the reference; with a stream per batch it draws the same masks, so the merged
    call is the same computation (``tests/test_step.py`` compares the steps). A single
    ``rngs`` (or none) is ``nnx.Dropout``'s call.
    """
    ROW_GROUPS = True  # `jaxgan.functional.merges_row_groups`

    def __call__(self, inputs, *, deterministic: bool | None = None, rngs=None) -> jax.Array:
        if not isinstance(rngs, tuple):
            return super().__call__(inputs, deterministic=deterministic, rngs=rngs)
        groups = row_grouped(inputs, len(rngs))
        on = self.deterministic if deterministic is None else deterministic
        if on is not False or self.rate in (0.0, 1.0):
            # No mask to draw: nnx.Dropout's answer for all rows alike (the inputs, or zeros),
            # drawing from no stream; or its error for an unset `deterministic`.
            return super().__call__(inputs, deterministic=deterministic, rngs=rngs[0])
        # Each group's mask as nnx.Dropout draws it (where its call on ones keeps a value),
        # interleaved as the rows are, then nnx.Dropout's select on all rows at once.
        # Dropping each group's rows apart and stacking the results made XLA:CPU keep the
        # stacked rows as one more array, hashing the masks again for it (the cGAN MLPs'
        # step: 688 xors against 458 this way, which computes each mask once).
        ones = jnp.ones_like(groups[:, 0])
        mask = interleave_rows(*[super(GroupedDropout, self).__call__(
            ones, deterministic=False, rngs=r) != 0 for r in rngs])
        return jax.lax.select(mask, inputs / (1.0 - self.rate), jnp.zeros_like(inputs))


class GroupedBatchNorm(nnx.BatchNorm):
    """``nnx.BatchNorm`` that, told ``row_groups = k`` (``nnx.view(module, row_groups=k)``),
    normalises each of ``k`` row groups (rows ``j, j + k, ...``,
    `jaxgan.functional.row_grouped`) by that group's own batch statistics and advances the
    running statistics group after group: what ``k`` calls on the groups in turn compute.
    ``row_groups = 1`` (the default) is ``nnx.BatchNorm``'s call.

    Why: the D update scores real and fake data in one call on both batches interleaved
    when D's layers allow it (`jaxgan.step.make_train_step`, ``merge_real_fake``), one matrix
    product of 2B rows per layer instead of two of B. A D with plain BatchNorm keeps two
    calls, so that each batch is normalised alone (as DCGAN and the PyTorch references do);
    with this layer the one call normalises them alone too (``tests/test_step.py`` compares
    the steps).
    """
    ROW_GROUPS = True  # `jaxgan.functional.merges_row_groups`

    def __init__(self, num_features: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.row_groups = 1

    def set_view(self, use_running_average: bool | None = None, row_groups: int | None = None):
        """Used by ``nnx.view``: ``row_groups`` as well as ``nnx.BatchNorm``'s attribute."""
        super().set_view(use_running_average)
        if row_groups is not None:
            self.row_groups = row_groups

    def __call__(self, x, use_running_average: bool | None = None, *, mask=None):
        k = self.row_groups
        running = self.use_running_average if use_running_average is None else use_running_average
        if k == 1 or running:  # running statistics treat every row alike
            return super().__call__(x, use_running_average, mask=mask)
        if mask is not None:
            raise ValueError("row groups take no mask")
        # The groups on axis 1, reduced apart: one reduction for all groups' statistics,
        # (k, features). Flax's own helpers, so the statistics and the normalisation are
        # nnx.BatchNorm's.
        scale = self.scale[...] if self.scale is not None else None
        bias = self.bias[...] if self.bias is not None else None
        x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
        groups = row_grouped(x, k)
        features = tuple(i + 1 for i in _norm._canonicalize_axes(x.ndim, self.axis))
        reduce = tuple(i for i in range(groups.ndim) if i != 1 and i not in features)
        mean, var = _norm._compute_stats(
            groups, reduce, dtype=self.dtype, axis_name=self.axis_name,
            axis_index_groups=self.axis_index_groups, use_fast_variance=self.use_fast_variance)
        # Group after group, as k calls advance them.
        for i in range(k):
            self.mean[...] = jax.lax.stop_gradient(
                self.momentum * self.mean[...] + (1 - self.momentum) * mean[i])
            self.var[...] = jax.lax.stop_gradient(
                self.momentum * self.var[...] + (1 - self.momentum) * var[i])
        y = _norm._normalize(groups, mean, var, scale, bias, reduce, features, self.dtype,
                             self.epsilon)
        return y.reshape(x.shape)


# PyTorch's nn.Embedding default, N(0, 1): a label embedding on the scale of a N(0, I) z.
torch_embed_init: Initializer = nnx.initializers.normal(stddev=1.0)


# _UP_TAPS[j, r, k] = 1 iff output index 2 m + r receives x[m + j - 1] through tap k.
# From out = 2 i - 1 + k: r = 0 <- (x[m], k=1), (x[m-1], k=3); r = 1 <- (x[m+1], k=0), (x[m], k=2).
_UP_TAPS = np.zeros((3, 2, 4), np.float32)
_UP_TAPS[1, 0, 1] = _UP_TAPS[0, 0, 3] = 1.0
_UP_TAPS[2, 1, 0] = _UP_TAPS[1, 1, 2] = 1.0


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
    """(N, H, W, b*b*C) -> (N, b*H, b*W, C); channel index (ry * b + rx) * C + c."""
    n, h, w, c = x.shape
    c_out = c // (block * block)
    x = x.reshape(n, h, w, block, block, c_out).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * block, w * block, c_out)


def upsample_kernel_to_conv3x3(kernel: jax.Array) -> jax.Array:
    """(4, 4, I, O) transposed-conv kernel -> (3, 3, I, 4 O) stride-1 kernel, phase-major."""
    _, _, i, o = kernel.shape
    taps = jnp.asarray(_UP_TAPS, kernel.dtype)
    k3 = jnp.einsum("ayk,bxl,klio->abiyxo", taps, taps, kernel)
    return k3.reshape(3, 3, i, 4 * o)


def _upsample_kernel_to_matrix(kernel: jax.Array) -> jax.Array:
    """(4, 4, I, O) -> (I, 16 O) with columns ordered (ay, ax, ry, rx, o), tap k = 2 a + r."""
    _, _, i, o = kernel.shape
    return kernel.reshape(2, 2, 2, 2, i, o).transpose(4, 0, 2, 1, 3, 5).reshape(i, 16 * o)


def conv_transpose_gemm(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None):
    """PyTorch ``ConvTranspose2d(4, 2, padding=1)`` by GEMM + col2im, (N,H,W,I) -> (N,2H,2W,O).

    Tap k = 2 a + r of input pixel m lands at output index 2 m - 1 + k, i.e. at 2 (m + a) + r
    of the output padded by 1: block m + a, phase r. So one (N H W, I) x (I, 16 O) product
    gives every pixel's footprint, and the padded output is the sum of the 4 footprint
    parts (ay, ax) shifted by (ay, ax) blocks; then crop 1 on each side.
    """
    n, h, w, i = x.shape
    o = kernel.shape[-1]
    # A 2-D product, so that autodiff's dx and dkernel are plain 2-D GEMMs too (XLA:CPU ran
    # the kernel gradient 2x slower as a dot with three contracting dimensions).
    p = matmul(x.reshape(n * h * w, i), _upsample_kernel_to_matrix(kernel)).reshape(n, h, w, 4, 2, 2, o)
    y = 0
    # split, not indexing: its transpose is one concatenate, not a sum of 4 zero-padded p's.
    for block, part in enumerate(jnp.split(p, 4, axis=3)):
        ay, ax = divmod(block, 2)
        pad = ((0, 0), (ay, 1 - ay), (ax, 1 - ax), (0, 0), (0, 0), (0, 0))
        y = y + jnp.pad(part[:, :, :, 0], pad)  # (N, H+1, W+1, ry, rx, O)
    y = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h + 2, 2 * w + 2, o)[:, 1:-1, 1:-1]
    return y if bias is None else y + bias


def conv_transpose_conv3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None):
    """PyTorch ``ConvTranspose2d(4, 2, padding=1)`` as 3x3 conv + depth-to-space."""
    y = jax.lax.conv_general_dilated(
        x, upsample_kernel_to_conv3x3(kernel), (1, 1), "SAME", dimension_numbers=_DIMS
    )
    y = depth_to_space(y, 2)
    return y if bias is None else y + bias


def conv_transpose_reference(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None):
    """PyTorch ``ConvTranspose2d(4, 2, padding=1)`` in the textbook form (slow gradient on CPU).

    A transposed convolution with stride s and padding p is a convolution of the input
    dilated by s (``lhs_dilation``), padded by k - 1 - p = 2, with the spatially flipped kernel.
    """
    y = jax.lax.conv_general_dilated(
        x,
        kernel[::-1, ::-1],
        window_strides=(1, 1),
        padding=((2, 2), (2, 2)),
        lhs_dilation=(2, 2),
        dimension_numbers=_DIMS,
    )
    return y if bias is None else y + bias


_IMPLS = {"gemm": conv_transpose_gemm, "conv3x3": conv_transpose_conv3x3}


def conv_down_gemm(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None):
    """PyTorch ``Conv2d(4, 2, padding=1)`` by space-to-depth + im2col + one GEMM,
    (N, H, W, I) -> (N, H/2, W/2, O) for even H and W.

    Tap k = 2 a + r of output pixel m reads input pixel 2 m - 1 + k, i.e. 2 (m + a) + r of the
    input padded by 1: block m + a, phase r. So the padded input's 2x2 blocks (space-to-depth)
    shifted by the 4 block offsets (ay, ax) hold, side by side, every output pixel's 16 taps,
    and one (N H/2 W/2, 16 I) x (16 I, O) product is the convolution (a 2-D product, so that
    autodiff's gradients are 2-D GEMMs too).
    """
    n, h, w, i = x.shape
    blocks = padded_blocks(x)
    cols = jnp.stack([blocks[:, ay:ay + h // 2, ax:ax + w // 2] for ay in (0, 1) for ax in (0, 1)],
                     axis=3)  # (N, H/2, W/2, (ay, ax), ry, rx, I)
    # Rows ordered (ay, ax, ry, rx, i), as the columns.
    matrix = down_kernel_blocks(kernel).reshape(16 * i, -1)
    y = matmul(cols.reshape(n * (h // 2) * (w // 2), 16 * i), matrix).reshape(n, h // 2, w // 2, -1)
    return y if bias is None else y + bias


def padded_blocks(x: jax.Array) -> jax.Array:
    """(N, H, W, I) -> (N, H/2 + 1, W/2 + 1, ry, rx, I): the 2x2 blocks (space-to-depth) of
    the input padded by 1, for even H and W."""
    n, h, w, i = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return xp.reshape(n, h // 2 + 1, 2, w // 2 + 1, 2, i).transpose(0, 1, 3, 2, 4, 5)


def down_kernel_blocks(kernel: jax.Array) -> jax.Array:
    """(4, 4, I, O) -> (ay, ax, ry, rx, I, O): tap k = 2 a + r reads block m + a, phase r."""
    i, o = kernel.shape[2:]
    return kernel.reshape(2, 2, 2, 2, i, o).transpose(0, 2, 1, 3, 4, 5)


class Downsample2x(nnx.Conv):
    """4x4, stride-2, padding-1 convolution (PyTorch ``Conv2d(4, 2, 1)``): an ``nnx.Conv``
    (its parameters, init and dtype, and what spectral norm and the row-wise check see) that
    on CPU computes through :func:`conv_down_gemm` (module docstring). Other backends, odd
    input sizes and calls with an ``out_sharding`` take ``nnx.Conv``'s own convolution.

    Shapes: (N, H, W, in) -> (N, H/2, W/2, out).
    """

    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs,
                 kernel_init: Initializer = dcgan_init, use_bias: bool = True):
        super().__init__(in_features, out_features, (4, 4), strides=2, padding=((1, 1), (1, 1)),
                         use_bias=use_bias, kernel_init=kernel_init, rngs=rngs)

    def __call__(self, inputs: jax.Array, out_sharding=None) -> jax.Array:
        if (out_sharding is not None or jax.default_backend() != "cpu" or inputs.ndim != 4
                or inputs.shape[1] % 2 or inputs.shape[2] % 2):
            return super().__call__(inputs, out_sharding=out_sharding)
        bias = self.bias[...] if self.bias is not None else None
        x, kernel, bias = self.promote_dtype((inputs, self.kernel[...], bias), dtype=self.dtype)
        return conv_down_gemm(x, kernel, bias)


class Upsample2x(nnx.Module):
    """4x4, stride-2, padding-1 transposed convolution (PyTorch ``ConvTranspose2d(4, 2, 1)``).

    Holds the transposed-conv parameters, ``kernel`` (4, 4, in, out) and ``bias`` (out,),
    and computes that op exactly, through :func:`conv_transpose_gemm` (``impl="gemm"``,
    fastest) or :func:`conv_transpose_conv3x3` (``impl="conv3x3"``, smaller transient memory);
    see the module docstring.

    Shapes: (N, H, W, in) -> (N, 2H, 2W, out).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rngs: nnx.Rngs,
        kernel_init: Initializer = dcgan_init,
        bias_init: Initializer = nnx.initializers.zeros_init(),
        use_bias: bool = True,
        impl: Literal["gemm", "conv3x3"] = "gemm",
    ):
        if impl not in _IMPLS:
            raise ValueError(f"impl must be one of {sorted(_IMPLS)}, got {impl!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.impl = impl
        self.kernel = nnx.Param(kernel_init(rngs.params(), (4, 4, in_features, out_features)))
        self.bias = nnx.Param(bias_init(rngs.params(), (out_features,))) if use_bias else None
        self.dtype = None  # compute dtype, as Flax layers' (`jaxgan.nets.build.set_compute_dtype`)

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = None if self.bias is None else self.bias[...]
        x, kernel, bias = nnx.nn.dtypes.promote_dtype((x, self.kernel[...], bias), dtype=self.dtype)
        return _IMPLS[self.impl](x, kernel, bias)
