"""Upsample2x computes PyTorch's ConvTranspose2d(4, 2, padding=1) exactly, values and gradients;
PartsLinear computes nnx.Linear on the concatenated parts, with fewer FLOPs backwards; matmul is
jnp.dot, its gradients in the products XLA:CPU runs fastest."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from jaxgan.functional import interleave_rows, row_grouped
from jaxgan.nets import layers

FAST_FORMS = {"gemm": layers.conv_transpose_gemm, "conv3x3": layers.conv_transpose_conv3x3}
ALL_FORMS = {"reference": layers.conv_transpose_reference, **FAST_FORMS}


def torch_conv_transpose_definition(x, w_torch, b):
    """PyTorch's documented ConvTranspose2d(4, stride=2, padding=1), scalar loops, NHWC in/out.

    Each input pixel i scatters ``x[i] * weight[c_in, c_out, k]`` to output index
    ``i * stride - padding + k``; outputs outside 0 .. (H - 1) * 2 - 2 + 4 - 1 are cropped.
    """
    n, h, w, c_in = x.shape
    c_out = w_torch.shape[1]
    out = np.zeros((n, 2 * h, 2 * w, c_out), np.float64)
    for iy in range(h):
        for ix in range(w):
            for ky in range(4):
                for kx in range(4):
                    oy, ox = 2 * iy - 1 + ky, 2 * ix - 1 + kx
                    if 0 <= oy < 2 * h and 0 <= ox < 2 * w:
                        out[:, oy, ox, :] += x[:, iy, ix, :] @ w_torch[:, :, ky, kx]
    return out + b


def _one_hot_kernel(ky, kx):
    return jnp.zeros((4, 4, 1, 1)).at[ky, kx, 0, 0].set(1.0)


X_2x2 = jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)

# Worked by hand from o = 2 i - 1 + k per axis (i in {0, 1}, o kept in 0..3).
HAND_CASES = (
    # tap (0, 0): o = 2i - 1 -> only i = 1 lands, at 1.
    ("tap00", (0, 0), [[0, 0, 0, 0], [0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
    # tap (1, 1): o = 2i -> 0, 2: the input spread on the even grid.
    ("tap11", (1, 1), [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]),
    # tap (3, 3): o = 2i + 2 -> only i = 0 lands, at 2.
    ("tap33", (3, 3), [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]),
    # tap (2, 1): rows o = 2i + 1 -> 1, 3; columns o = 2i -> 0, 2.
    ("tap21", (2, 1), [[0, 0, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0]]),
    # tap (0, 3): rows only i = 1 -> 1; columns only i = 0 -> 2: x[1, 0] = 3.
    ("tap03", (0, 3), [[0, 0, 0, 0], [0, 0, 3, 0], [0, 0, 0, 0], [0, 0, 0, 0]]),
)
# All-ones kernel: output row o collects input rows {i : 2i - 1 <= o <= 2i + 2}, i.e.
# o=0: {0}, o=1: {0, 1}, o=2: {0, 1}, o=3: {1}; same for columns.
ONES_EXPECTED = [[1, 3, 3, 2], [4, 10, 10, 6], [4, 10, 10, 6], [3, 7, 7, 4]]


class HandWorkedTest(chex.TestCase, parameterized.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*[(form, *case) for form in ALL_FORMS for case in HAND_CASES])
    def test_one_hot_kernel(self, form, name, tap, expected):
        del name
        y = self.variant(ALL_FORMS[form])(X_2x2, _one_hot_kernel(*tap))
        chex.assert_trees_all_close(y[0, :, :, 0], jnp.array(expected, jnp.float32))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*ALL_FORMS)
    def test_ones_kernel_with_bias(self, form):
        y = self.variant(ALL_FORMS[form])(X_2x2, jnp.ones((4, 4, 1, 1)), jnp.array([0.5]))
        chex.assert_shape(y, (1, 4, 4, 1))
        chex.assert_trees_all_close(y[0, :, :, 0], jnp.array(ONES_EXPECTED, jnp.float32) + 0.5)


@pytest.mark.parametrize("form", list(ALL_FORMS))
def test_matches_torch_definition_multichannel(form):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 5, 3)).astype(np.float32)
    w_torch = rng.normal(size=(3, 4, 4, 4)).astype(np.float32)  # (in, out, kh, kw)
    b = rng.normal(size=(4,)).astype(np.float32)
    kernel = jnp.asarray(w_torch.transpose(2, 3, 0, 1))  # -> (kh, kw, in, out)
    y = ALL_FORMS[form](jnp.asarray(x), kernel, jnp.asarray(b))
    np.testing.assert_allclose(y, torch_conv_transpose_definition(x, w_torch, b), atol=1e-5)


@functools.lru_cache(maxsize=None)
def _compare_fn(n, h, w, c_in, c_out):
    """Jitted (per shape): every form's output and VJP w.r.t. x, kernel and bias."""

    @jax.jit
    def compare(x, kernel, bias, cot):
        out = {}
        for name, f in ALL_FORMS.items():
            y, vjp = jax.vjp(f, x, kernel, bias)
            out[name] = (y, vjp(cot))
        return out

    return compare


@settings(max_examples=5, deadline=None)
@given(
    n=st.integers(1, 2), h=st.integers(1, 5), w=st.integers(1, 5),
    c_in=st.integers(1, 4), c_out=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
)
def test_fast_forms_equal_reference_values_and_grads(n, h, w, c_in, c_out, seed):
    kx, kk, kb, kc = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(kx, (n, h, w, c_in))
    kernel = jax.random.normal(kk, (4, 4, c_in, c_out))
    bias = jax.random.normal(kb, (c_out,))
    cot = jax.random.normal(kc, (n, 2 * h, 2 * w, c_out))
    out = _compare_fn(n, h, w, c_in, c_out)(x, kernel, bias, cot)
    y_ref, grads_ref = out["reference"]
    chex.assert_shape(y_ref, (n, 2 * h, 2 * w, c_out))
    for name in FAST_FORMS:
        y, grads = out[name]
        chex.assert_trees_all_close(y, y_ref, atol=1e-5, rtol=1e-5, custom_message=name)
        chex.assert_trees_all_close(grads, grads_ref, atol=1e-4, rtol=1e-5, custom_message=name)


def test_gemm_check_grads_both_modes_second_order():
    # No custom_vjp: forward mode and second order work as for any jnp code.
    x = jax.random.normal(jax.random.key(1), (1, 2, 3, 2))
    kernel = jax.random.normal(jax.random.key(2), (4, 4, 2, 3))
    bias = jax.random.normal(jax.random.key(3), (3,))
    f = jax.jit(lambda x, k, b: jnp.tanh(layers.conv_transpose_gemm(x, k, b)))
    check_grads(f, (x, kernel, bias), order=2, modes=("fwd", "rev"), atol=1e-2, rtol=1e-2)


def test_depth_to_space_layout():
    x = jnp.arange(8.0).reshape(1, 1, 1, 8)  # channels (ry, rx, c) with C = 2
    y = layers.depth_to_space(x, 2)
    chex.assert_shape(y, (1, 2, 2, 2))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 2], [4, 6]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[1, 3], [5, 7]])


def rbg_key(seed):
    # rbg samplers compile ~6x faster than threefry ones on this CPU; same distributions.
    return jax.random.key(seed, impl="rbg")


@pytest.fixture(scope="module")
def module():
    return layers.Upsample2x(3, 5, rngs=nnx.Rngs(rbg_key(0)))


def test_module_parameters_are_the_transposed_conv_ones(module):
    chex.assert_shape(module.kernel[...], (4, 4, 3, 5))
    chex.assert_shape(module.bias[...], (5,))
    params = nnx.state(module, nnx.Param)
    assert sum(v.size for v in jax.tree.leaves(params)) == 4 * 4 * 3 * 5 + 5
    no_bias = layers.Upsample2x(3, 5, use_bias=False, rngs=nnx.Rngs(rbg_key(0)))
    assert no_bias.bias is None


def test_module_computes_reference(module):
    module.bias[...] = jnp.linspace(-1.0, 1.0, 5)
    x = jax.random.normal(jax.random.key(4), (2, 3, 4, 3))
    y = module(x)
    chex.assert_shape(y, (2, 6, 8, 5))
    ref = layers.conv_transpose_reference(x, module.kernel[...], module.bias[...])
    chex.assert_trees_all_close(y, ref, atol=1e-6)
    module.impl = "conv3x3"
    try:
        chex.assert_trees_all_close(module(x), ref, atol=1e-6)
    finally:
        module.impl = "gemm"


def _strided_conv(x, kernel, bias):
    """PyTorch ``Conv2d(4, 2, 1)`` as XLA's strided convolution: the reference."""
    y = jax.lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


@settings(max_examples=3, deadline=None)
@given(
    n=st.integers(1, 2), h=st.integers(1, 4), w=st.integers(1, 4),
    c_in=st.integers(1, 4), c_out=st.integers(1, 4), seed=st.integers(0, 2**31 - 1),
)
def test_conv_down_gemm_equals_the_strided_convolution(n, h, w, c_in, c_out, seed):
    """Values, gradients (input, kernel, bias) and the input gradient's own gradient (what R1
    and the gradient penalty differentiate), maps of 2h x 2w."""
    kx, kk, kb, kc = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(kx, (n, 2 * h, 2 * w, c_in))
    kernel = jax.random.normal(kk, (4, 4, c_in, c_out))
    bias = jax.random.normal(kb, (c_out,))
    cot = jax.random.normal(kc, (n, h, w, c_out))

    def loss(f, x, kernel, bias, cot):
        return jnp.sum(jnp.sin(f(x, kernel, bias)) * cot)

    def input_grad_norm(f, x, kernel, bias, cot):
        return jnp.sum(jax.grad(loss, 1)(f, x, kernel, bias, cot) ** 2)

    y, y_ref = layers.conv_down_gemm(x, kernel, bias), _strided_conv(x, kernel, bias)
    chex.assert_shape(y, (n, h, w, c_out))
    chex.assert_trees_all_close(y, y_ref, atol=1e-5, rtol=1e-5)
    # The gradients in float64: the second-order ones are sums that cancel, which float32
    # rounded apart in the two forms by 7e-4 of the result (seed 5881, compiled with XLA's
    # full optimisation); in float64 only a different formula differs.
    with jax.enable_x64(True):
        args = [jnp.asarray(a, jnp.float64) for a in (x, kernel, bias, cot)]
        for fn in (loss, input_grad_norm):
            grad = jax.jit(jax.grad(fn, (1, 2, 3)), static_argnums=0)
            got, want = (grad(f, *args) for f in (layers.conv_down_gemm, _strided_conv))
            for g, v in zip(got, want):
                assert g.dtype == jnp.float64
                np.testing.assert_allclose(g, v, rtol=1e-10, atol=1e-10 * float(jnp.abs(v).max()))


def test_downsample_is_the_conv_layer_and_runs_as_a_gemm_on_cpu():
    layer = layers.Downsample2x(3, 5, use_bias=True, rngs=nnx.Rngs(0))
    conv = nnx.Conv(3, 5, (4, 4), strides=2, padding=((1, 1), (1, 1)),
                    kernel_init=layers.dcgan_init, rngs=nnx.Rngs(0))
    # An nnx.Conv with nnx.Conv's parameters: spectral norm, the row-wise check and
    # checkpoints see the same layer.
    assert isinstance(layer, nnx.Conv)
    chex.assert_trees_all_equal(nnx.state(layer, nnx.Param), nnx.state(conv, nnx.Param))
    layer.bias[...] = jax.random.normal(jax.random.key(1), (5,))
    for h, w in ((8, 6), (7, 6)):  # an odd map takes nnx.Conv's own convolution
        x = jax.random.normal(jax.random.key(h), (2, h, w, 3))
        want = _strided_conv(x, layer.kernel[...], layer.bias[...])
        chex.assert_trees_all_close(layer(x), want, atol=1e-5, rtol=1e-5)
        graph, params = nnx.split(layer)
        text = jax.jit(lambda p, x: nnx.merge(graph, p)(x)).lower(params, x).as_text()
        on_cpu_gemm = jax.default_backend() == "cpu" and h % 2 == 0
        assert ("convolution" not in text) == on_cpu_gemm, (h, w)


def test_module_rejects_unknown_impl():
    with pytest.raises(ValueError, match="gemm"):
        layers.Upsample2x(2, 2, impl="lax", rngs=nnx.Rngs(0))


def test_dcgan_init_std():
    k = layers.dcgan_init(rbg_key(0), (4, 4, 64, 64))
    assert abs(float(k.std()) - 0.02) < 0.001 and abs(float(k.mean())) < 0.001


@pytest.mark.parametrize(
    "init, shape, fan_in",
    [
        (layers.torch_kernel_init, (4, 4, 64, 128), 64 * 16),  # Conv2d: in * kh * kw
        (layers.torch_transpose_kernel_init, (4, 4, 128, 64), 64 * 16),  # ConvT: out * kh * kw
        (layers.torch_kernel_init, (1024, 256), 1024),  # Linear: in
        (layers.torch_bias_init(300), (4096,), 300),
    ],
)
def test_torch_default_inits_are_uniform_in_inverse_sqrt_fan_in(init, shape, fan_in):
    w = np.asarray(init(rbg_key(0), shape))
    bound = 1.0 / np.sqrt(fan_in)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3.0), rtol=0.05)


def _parts_and_layer(widths, out, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(widths))
    parts = tuple(jax.random.normal(k, (5, w)) for k, w in zip(keys, widths))
    layer = layers.torch_linear(sum(widths), out, nnx.Rngs(seed))
    layer.bias[...] = jax.random.normal(jax.random.PRNGKey(seed + 1), (out,))
    return parts, layer


@settings(max_examples=5, deadline=None)
@given(widths=st.lists(st.integers(1, 9), min_size=1, max_size=3), out=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_parts_linear_is_the_linear_layer_on_the_concatenation(widths, out, seed):
    parts, layer = _parts_and_layer(widths, out, seed)
    kernel, bias = layer.kernel[...], layer.bias[...]

    def loss(kernel, parts, whole):
        y = jnp.concatenate(parts, -1) @ kernel if whole else layers.dense_of_parts(parts, kernel)
        return jnp.sum(jnp.sin(y + bias))

    def input_grad_norm(kernel, parts, whole):
        # What R1 and the gradient penalty differentiate: D's input gradient.
        return sum(jnp.sum(g**2) for g in jax.grad(loss, 1)(kernel, parts, whole))

    for fn in (loss, input_grad_norm):
        chex.assert_trees_all_close(jax.grad(fn, (0, 1))(kernel, parts, False),
                                    jax.grad(fn, (0, 1))(kernel, parts, True),
                                    atol=1e-5, rtol=1e-5)
    chex.assert_trees_all_close(layer(parts), layer(jnp.concatenate(parts, -1)), atol=1e-5)


def test_parts_linear_backward_skips_the_product_of_a_part_without_gradient():
    # The cGAN D's first layer: 784 pixels and a 10-d label embedding, 1024 units. The D
    # update wants the kernel's and the embedding's gradients, not the pixels'.
    (x, e), layer = _parts_and_layer((784, 10), 1024, 0)
    x, e = jnp.tile(x, (13, 1))[:64], jnp.tile(e, (13, 1))[:64]
    graph, params = nnx.split(layer)

    def flops(whole):
        def loss(params, e):
            module = nnx.merge(graph, params)
            return jnp.sum(module(jnp.concatenate([x, e], -1)) if whole else module((x, e)))
        grad = jax.jit(jax.grad(loss, (0, 1))).lower(params, e).compile()
        return grad.cost_analysis()["flops"]

    pixels_grad = 2 * 64 * 1024 * 784
    assert flops(False) < flops(True) - 0.9 * pixels_grad


def test_parts_linear_rejects_parts_of_the_wrong_width():
    parts, layer = _parts_and_layer((3, 4), 2, 0)
    with pytest.raises(ValueError,
                       match=r"widths \[3, 3\] do not make this layer's 7 input features"):
        layer((parts[0], parts[1][:, :3]))


# (rows, I, O) of `layers.weight_gradient`'s three forms on CPU: a dense layer's batch, a
# convolution GEMM's many rows with a taller than wide kernel, the same with a wide one; and a
# kernel small enough for Eigen.
KERNEL_GRADIENT_CASES = {"input_transposed": (64, 512, 256), "wide_output": (640, 512, 160),
                         "plain": (640, 128, 1024), "small": (640, 64, 32)}
# A dense layer's batch with a kernel of `layers.BIG_MATRIX` entries: its input gradient too
# takes the product with the wide output.
BIG_DENSE = (64, 1024, 1024)


@pytest.mark.parametrize("form", [*KERNEL_GRADIENT_CASES, "big_dense"])
def test_matmul_is_jnp_dot_in_value_and_every_derivative(form):
    rows, i, o = BIG_DENSE if form == "big_dense" else KERNEL_GRADIENT_CASES[form]
    assert layers._gradient_form(rows, i, o) == {"small": "plain", "big_dense": "input_transposed"
                                                 }.get(form, form)
    assert layers._input_gradient_form(rows, i, o) == ("wide_output" if form == "big_dense"
                                                       else "plain")
    kx, kk, kt = jax.random.split(jax.random.key(rows + i + o), 3)
    # (2, rows / 2, I): the layer flattens leading axes into rows, as nnx.Linear's product does.
    x = jax.random.normal(kx, (2, rows // 2, i))
    kernel = jax.random.normal(kk, (i, o)) / np.sqrt(i)
    t = jax.random.normal(kt, (o,))

    def loss(product, x, kernel):
        return jnp.sum(jnp.sin(product(x, kernel)) * t)

    fast, plain = jax.jit(functools.partial(loss, layers.matmul)), functools.partial(loss, jnp.dot)
    chex.assert_trees_all_close(fast(x, kernel), plain(x, kernel), rtol=1e-5)
    chex.assert_trees_all_close(jax.jit(jax.grad(fast, (0, 1)))(x, kernel),
                                jax.grad(plain, (0, 1))(x, kernel), atol=1e-4, rtol=1e-4)
    # Forward mode and second order (the gradient penalty's), as for jnp.dot.
    tangents = (jax.random.normal(kt, x.shape), jax.random.normal(kk, kernel.shape))
    chex.assert_trees_all_close(jax.jvp(fast, (x, kernel), tangents),
                                jax.jvp(plain, (x, kernel), tangents), atol=1e-3, rtol=1e-4)

    def penalty(f):
        return lambda x, kernel: jnp.sum(jax.grad(f)(x, kernel) ** 2)

    chex.assert_trees_all_close(jax.grad(penalty(fast), 1)(x, kernel),
                                jax.grad(penalty(plain), 1)(x, kernel), atol=1e-3, rtol=1e-4)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the forms are XLA:CPU's")
@pytest.mark.parametrize("form", ["input_transposed", "wide_output", "plain"])
def test_the_compiled_kernel_gradient_is_the_product_of_its_form(form):
    """What XLA runs, not only what JAX traced: its algebraic simplifier folds a transpose
    into a product unless the barrier stops it."""
    rows, i, o = KERNEL_GRADIENT_CASES[form]
    x, kernel = jnp.ones((rows, i)), jnp.ones((i, o))
    hlo = jax.jit(jax.grad(lambda k: jnp.sum(layers.matmul(x, k) ** 2))).lower(kernel)
    text = hlo.compile().as_text()
    shapes = {"input_transposed": f"f32[{i},{o}]", "wide_output": f"f32[{o},{i}]",
              "plain": f"f32[{i},{o}]"}
    # The kernel gradient's product: (I, O), or (O, I) for the wide output.
    line = next((line for line in text.splitlines()
                 if f"= {shapes[form]}" in line and ("dot(" in line or "kind=kCustom" in line)),
                None)
    assert line is not None, f"no {shapes[form]} product in the compiled gradient:\n{text}"
    if form == "input_transposed":
        # A plain product of x.T, materialised: no operand contracted on its first axis.
        assert "lhs_contracting_dims={0}" not in line, line
    else:
        assert "dot(" in line and "lhs_contracting_dims={0}" in line, line


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the forms are XLA:CPU's")
def test_the_compiled_input_gradient_of_a_big_dense_layer_has_the_wide_output():
    rows, i, o = BIG_DENSE
    kernel = jnp.ones((i, o))
    text = jax.jit(jax.grad(lambda x: jnp.sum(layers.matmul(x, kernel) ** 2))).lower(
        jnp.ones((rows, i))).compile().as_text()
    # (kernel @ g.T), (I, rows), not (rows, I).
    assert any(f"= f32[{i},{rows}]" in line and "dot(" in line for line in text.splitlines()), text


def _linear_grads(module, x):
    """The gradients of ``sum(tanh(module(x)))`` in the module's parameters and in ``x``."""
    graph, params = nnx.split(module)
    return jax.grad(lambda p, x: jnp.sum(jnp.tanh(nnx.merge(graph, p)(x))), (0, 1))(params, x)


def test_linear_layers_take_their_product_through_matmul():
    layer = nnx.Linear(512, 256, dot_general=layers.dense_dot_general, rngs=nnx.Rngs(0))
    plain = nnx.Linear(512, 256, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (64, 512))
    chex.assert_trees_all_close(_linear_grads(layer, x), _linear_grads(plain, x), atol=1e-5,
                                rtol=1e-5)
    jaxpr = str(jax.make_jaxpr(lambda x: layer(x))(x))
    assert "custom_jvp_call" in jaxpr
    # Anything but a dense layer's product is jax.lax.dot_general's, as given.
    batched = layers.dense_dot_general(jnp.ones((3, 4, 5)), jnp.ones((3, 5, 2)),
                                       (((2,), (1,)), ((0,), (0,))))
    chex.assert_trees_all_close(batched, jnp.full((3, 4, 2), 5.0))
    assert layers.torch_linear(4, 2, nnx.Rngs(0)).dot_general is layers.dense_dot_general


@settings(max_examples=6, deadline=None)
@given(rows=st.integers(1, 6), narrow=st.integers(1, layers.NARROW), wide=st.integers(1, 5),
       narrow_side=st.sampled_from(["in", "out"]), seed=st.integers(0, 2**31 - 1))
def test_narrow_matmul_is_jnp_dot_in_value_and_every_derivative(rows, narrow, wide, narrow_side,
                                                                 seed):
    """Values, gradients, forward mode and the gradient penalty's second order, in float64 so
    that only a different formula differs (its sums run in another order than the product's)."""
    i, o = (narrow, wide) if narrow_side == "in" else (wide, narrow)
    with jax.enable_x64(True):
        kx, kk, kt, kd = jax.random.split(jax.random.key(seed), 4)
        # (2, rows, I): leading axes are rows, as nnx.Linear's product has them.
        x = jax.random.normal(kx, (2, rows, i), jnp.float64)
        kernel = jax.random.normal(kk, (i, o), jnp.float64)
        t = jax.random.normal(kt, (o,), jnp.float64)

        def loss(product, x, kernel):
            return jnp.sum(jnp.sin(product(x, kernel)) * t)

        def penalty(product, x, kernel):
            return jnp.sum(jax.grad(loss, 1)(product, x, kernel) ** 2)

        fast = functools.partial(loss, layers.narrow_matmul)
        plain = functools.partial(loss, jnp.dot)
        tangents = (jax.random.normal(kd, x.shape, jnp.float64),
                    jax.random.normal(kd, kernel.shape, jnp.float64))
        pairs = [(fast(x, kernel), plain(x, kernel)),
                 (jax.grad(fast, (0, 1))(x, kernel), jax.grad(plain, (0, 1))(x, kernel)),
                 (jax.jvp(fast, (x, kernel), tangents), jax.jvp(plain, (x, kernel), tangents)),
                 *[(jax.grad(penalty, argnums)(layers.narrow_matmul, x, kernel),
                    jax.grad(penalty, argnums)(jnp.dot, x, kernel)) for argnums in (1, 2)]]
        for got, want in pairs:
            chex.assert_trees_all_close(got, want, rtol=1e-10, atol=1e-10)
        assert layers.narrow_matmul(x, kernel).dtype == jnp.float64


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the narrow form is XLA:CPU's")
@pytest.mark.parametrize("rows,i,o,narrow", [
    (layers.NARROW_ROWS, 2, 128, True), (1024, 128, 1, True), (512, 128, 2, True),
    (layers.NARROW_ROWS - 1, 2, 128, False), (1024, 3, 128, False), (512, 128, 3, False)])
def test_linear_layers_of_many_rows_and_a_narrow_side_take_no_matrix_product(rows, i, o, narrow):
    """ring8's layers (2 -> 128, 128 -> 2, 128 -> 1 at 512-1024 rows) in value and gradient
    without a product; fewer rows or wider sides keep `matmul`."""
    layer = nnx.Linear(i, o, dot_general=layers.dense_dot_general, rngs=nnx.Rngs(0))
    plain = nnx.Linear(i, o, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (rows, i))
    chex.assert_trees_all_close(_linear_grads(layer, x), _linear_grads(plain, x), atol=1e-5,
                                rtol=1e-5)
    graph, params = nnx.split(layer)
    text = jax.jit(jax.grad(lambda p: jnp.sum(jnp.tanh(nnx.merge(graph, p)(x))))).lower(
        params).compile().as_text()
    assert (" dot(" in text) is not narrow, text


@pytest.mark.parametrize("groups", [2, 3])
def test_grouped_dropout_draws_each_row_group_the_mask_of_its_own_call(groups):
    # Batches of 6 interleaved, as the merged D call takes them: rows j, j + k, ... are batch j.
    batches = [jax.random.normal(jax.random.PRNGKey(i), (6, 5)) + 3.0 for i in range(groups)]
    x = interleave_rows(*batches)
    layer = layers.GroupedDropout(0.5)
    keys = [jax.random.PRNGKey(10 + i) for i in range(groups)]
    # Two layers in a row: each stream advances per call, as in a D with dropout per layer.
    streams = tuple(nnx.Rngs(dropout=k) for k in keys)
    grouped = row_grouped(layer(layer(x, rngs=streams), rngs=streams), groups)
    streams = [nnx.Rngs(dropout=k) for k in keys]
    for j, (b, r) in enumerate(zip(batches, streams)):
        chex.assert_trees_all_equal(grouped[:, j], layer(layer(b, rngs=r), rngs=r))
    # Deterministic, nothing dropped; a single stream is nnx.Dropout's call.
    chex.assert_trees_all_equal(layer(x, rngs=tuple(streams), deterministic=True), x)
    plain = nnx.Dropout(0.5)(x, rngs=nnx.Rngs(dropout=keys[0]))
    chex.assert_trees_all_equal(layer(x, rngs=nnx.Rngs(dropout=keys[0])), plain)
    # Masks differ between groups (not one mask repeated) and drop about half.
    dropped = grouped == 0
    assert 0.2 < float(jnp.mean(dropped)) < 0.95
    assert not jnp.array_equal(dropped[:, 0], dropped[:, 1])


def test_grouped_dropout_rejects_rows_it_cannot_split_evenly():
    with pytest.raises(ValueError, match="7 rows cannot be split into 2 equal row groups"):
        layers.GroupedDropout(0.5)(jnp.ones((7, 3)), rngs=(nnx.Rngs(0), nnx.Rngs(1)))


def _bn_pair():
    kw = dict(momentum=0.9, epsilon=1e-5, rngs=nnx.Rngs(0))
    grouped, plain = layers.GroupedBatchNorm(4, **kw), nnx.BatchNorm(4, **kw)
    # Scale and bias away from 1 and 0, so a mix-up of blocks or features shows.
    for bn in (grouped, plain):
        bn.scale[...] = jnp.arange(1.0, 5.0)
        bn.bias[...] = jnp.arange(4.0) - 1.5
    return grouped, plain


@pytest.mark.parametrize("groups", [2, 3])
def test_grouped_batch_norm_normalises_each_row_group_as_its_own_call(groups):
    # NHWC batches with their own means and spreads, interleaved: one call on all of them
    # with row_groups must give what separate nnx.BatchNorm calls on each in turn give,
    # output, running statistics (advanced batch after batch) and gradients.
    batches = [jax.random.normal(jax.random.PRNGKey(j), (5, 3, 3, 4)) * (1 + j) + 2 * j
               for j in range(groups)]
    x = interleave_rows(*batches)
    grouped, plain = _bn_pair()

    def loss_grouped(x, bn):
        y = nnx.view(bn, row_groups=groups)(x)
        return jnp.sum(jnp.sin(y)), y

    def loss_plain(x, bn):
        g = row_grouped(x, groups)
        y = interleave_rows(*[bn(g[:, j]) for j in range(groups)])
        return jnp.sum(jnp.sin(y)), y

    (_, y1), g1 = nnx.value_and_grad(loss_grouped, argnums=(0, 1), has_aux=True)(x, grouped)
    (_, y2), g2 = nnx.value_and_grad(loss_plain, argnums=(0, 1), has_aux=True)(x, plain)
    chex.assert_trees_all_close(y1, y2, atol=1e-5)
    chex.assert_trees_all_close(g1[0], g2[0], atol=1e-5)
    chex.assert_trees_all_close(nnx.state(g1[1], nnx.Param), nnx.state(g2[1], nnx.Param),
                                atol=1e-4)
    chex.assert_trees_all_close(grouped.mean[...], plain.mean[...], atol=1e-6)
    chex.assert_trees_all_close(grouped.var[...], plain.var[...], atol=1e-5)
    # Not one normalisation of all rows: the batches' means differ by 2, so that would differ.
    pooled = nnx.BatchNorm(4, momentum=0.9, rngs=nnx.Rngs(0))(x)
    assert float(jnp.max(jnp.abs(pooled - y1))) > 0.1
    assert grouped.row_groups == 1  # the view changed, the layer did not


def test_grouped_batch_norm_alone_and_in_inference_is_nnx_batch_norm():
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 4)) * 3 + 1
    grouped, plain = _bn_pair()
    chex.assert_trees_all_equal(grouped(x), plain(x))
    chex.assert_trees_all_equal(grouped.mean[...], plain.mean[...])
    # Running statistics treat every row alike: row groups change nothing in inference.
    viewed = nnx.view(grouped, row_groups=2, use_running_average=True)
    chex.assert_trees_all_equal(viewed(x), nnx.view(plain, use_running_average=True)(x))
    with pytest.raises(ValueError, match="7 rows cannot be split into 2 equal row groups"):
        nnx.view(grouped, row_groups=2)(jnp.ones((7, 4)))
