"""NNX modules used functionally, and chunked inference."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxgan.functional import (
    apply,
    call,
    chunked,
    eval_view,
    has_dropout,
    interleave_rows,
    merges_row_groups,
    row_grouped,
)


def test_chunked_pads_the_last_chunk_and_compiles_once():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def double(x, y):
        return 2 * x + y

    for n in (1, 5, 7, 12):  # 12 = 3 full chunks; the others end short
        x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
        y = np.ones((n, 1), np.float32)
        np.testing.assert_array_equal(chunked(double, x, y, chunk=4), 2 * x + y)


def test_chunked_without_padding_keeps_the_short_chunk():
    sizes = []

    def record(x):
        sizes.append(len(x))
        return x

    x = np.arange(20.0).reshape(10, 2)
    np.testing.assert_array_equal(chunked(record, x, chunk=4, pad=False), x)
    np.testing.assert_array_equal(chunked(record, x, chunk=4), x)
    assert sizes == [4, 4, 2, 4, 4, 4]
    with pytest.raises(ValueError, match="no rows"):
        chunked(record, np.zeros((0, 2)), chunk=4)


def test_apply_returns_new_batch_statistics_without_mutating_the_split_state():
    model = nnx.Sequential(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.BatchNorm(3, rngs=nnx.Rngs(0)))
    graph, params, stats = nnx.split(model, nnx.Param, ...)
    before = jax.tree.map(jnp.copy, stats)
    x = jnp.arange(8.0).reshape(4, 2)
    y, new_stats = apply(graph, params, stats, x)
    chex.assert_trees_all_equal(stats, before)  # the caller decides whether a pass counts
    assert not np.allclose(new_stats["layers"][1]["mean"][...], 0.0)
    # Inference mode reads the running averages: with fresh (zero-mean, unit) statistics it
    # is the plain affine map, whatever the batch.
    eval_graph = nnx.split(eval_view(model), nnx.Param, ...)[0]
    out, _ = apply(eval_graph, params, stats, x)
    lin = model.layers[0]
    np.testing.assert_allclose(out, (x @ lin.kernel[...] + lin.bias[...]) / np.sqrt(1 + 1e-5),
                               rtol=1e-5)
    (a, b), _ = call(graph, params, stats, lambda m: (m.layers[0](x), m.layers[0](x + 1)))
    np.testing.assert_allclose(b - a, jnp.ones((4, 2)) @ lin.kernel[...], rtol=1e-5)
    assert y.shape == (4, 3)


def test_has_dropout_finds_a_nested_dropout():
    rngs = nnx.Rngs(0)
    assert has_dropout(nnx.Sequential(nnx.Linear(2, 2, rngs=rngs), nnx.Dropout(0.5, rngs=rngs)))
    assert not has_dropout(nnx.Sequential(nnx.Linear(2, 2, rngs=rngs), nnx.BatchNorm(2, rngs=rngs)))


def test_merges_row_groups_knows_which_networks_keep_two_batches_apart_in_one_call():
    from jaxgan.nets import MLPDiscriminator
    from jaxgan.nets.layers import GroupedBatchNorm, GroupedDropout
    from jaxgan.nets.lsgan import LSGANMnistDiscriminator
    from jaxgan.nets.techniques import MinibatchDiscriminator

    rngs = nnx.Rngs(0)
    mlp = MLPDiscriminator(in_dim=2, hidden=8, rngs=rngs)
    assert merges_row_groups(mlp)
    # Its BatchNorm normalises each batch alone when told the row groups.
    assert merges_row_groups(LSGANMnistDiscriminator(rngs=rngs))
    assert not merges_row_groups(
        MinibatchDiscriminator(mlp, num_kernels=4, kernel_dim=3, rngs=rngs))

    class Unknown(nnx.Module):  # a class that does not declare what its code does
        def __init__(self):
            self.fc = nnx.Linear(2, 1, rngs=rngs)

    assert not merges_row_groups(Unknown())

    class Chain(nnx.Module):
        ROWWISE = True  # its own code mixes no rows

        def __init__(self, *layers):
            self.layers = nnx.List([nnx.Linear(2, 2, rngs=rngs), *layers])

    # Plain BatchNorm pools both batches' statistics; plain dropout draws one mask from one
    # stream; their grouped forms keep the batches apart.
    assert merges_row_groups(Chain())
    assert not merges_row_groups(Chain(nnx.BatchNorm(2, rngs=rngs)))
    assert not merges_row_groups(Chain(nnx.Dropout(0.5)))
    assert merges_row_groups(Chain(GroupedBatchNorm(2, rngs=rngs), GroupedDropout(0.5)))


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 4), n=st.integers(1, 5), width=st.integers(1, 3))
def test_interleave_rows_puts_batch_j_in_row_group_j(k, n, width):
    batches = [np.arange(n * width).reshape(n, width) + 100 * j for j in range(k)]
    x = interleave_rows(*map(jnp.asarray, batches))
    assert x.shape == (n * k, width)
    for j, b in enumerate(batches):
        np.testing.assert_array_equal(x[j::k], b)  # rows j, j + k, ...
        np.testing.assert_array_equal(row_grouped(x, k)[:, j], b)


def test_row_groups_need_equal_batches():
    with pytest.raises(ValueError, match="batches of one shape"):
        interleave_rows(jnp.ones((3, 2)), jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="7 rows cannot be split into 2 equal row groups"):
        row_grouped(jnp.ones((7, 2)), 2)
