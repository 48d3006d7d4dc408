"""``Dataset``: a loaded dataset and its Grain input pipeline.

Batch ``s`` (the global step) is a pure function of ``(seed, batch_size, s)``: the pipeline is a
``grain.MapDataset`` indexed by step, so training resumes exactly with ``start_step=s``
(no replay), and the iterator is only a thread prefetcher over ``map_dataset()[s:]``.

Finite datasets::

        MapDataset.range(N).seed(s).shuffle().batch(B, drop_remainder=True).repeat().map(load)

Shuffling indices rather than examples hands each example's index to the batch (GLO keeps a
latent per example) and lets ``load`` read and scale a whole batch at once. ``repeat`` after
``batch`` drops the remainder of each epoch, so an epoch is ``N // B`` steps and every index
appears at most once per epoch; Grain's shuffle draws a new permutation per epoch
(seed + epoch).

Mixtures have no examples to shuffle: batch ``s`` is ``sample_mixture(fold_in(key(seed), s),
B, ...)``, drawn with JAX (``batches`` draws ``MIXTURE_BLOCK`` steps' batches in one call, the
same batches), and an "epoch" is ``MIXTURE_STEPS_PER_EPOCH`` steps.

Batches are dicts of numpy arrays on the host (the training loop places them on devices):
``x`` float32 ``(B, *example_shape)``, images scaled to [-1, 1] (mixtures: raw coordinates),
``y`` int32 ``(B,)`` labels (mode index for mixtures, zeros for folders), ``index`` int32
``(B,)`` the example's index in the dataset (-1 for mixtures).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Iterator

import grain
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import xla_cpu
from jaxgan.data.errors import DatasetError
from jaxgan.data.mixtures import sample_mixture
from jaxgan.data.sources import Source, read_batch

# An "epoch" of an infinite mixture, for epoch-based schedules and logging.
MIXTURE_STEPS_PER_EPOCH = 1000

Batch = dict[str, np.ndarray]


def scale_images(images: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [-1, 1], written on a 64-byte boundary, where the train step
    reads a host batch in place (`jaxgan.xla_cpu.host_aligned`: any other batch the loop's
    thread would copy first)."""
    x = xla_cpu.aligned_empty(images.shape, np.float32)
    # x / 127.5 - 1 in float32; 255 / 127.5 is exactly 2, so the range is exactly [-1, 1].
    np.divide(images, np.float32(127.5), out=x, dtype=np.float32)
    np.subtract(x, np.float32(1.0), out=x)
    return x


def _load(source: Source, indices: np.ndarray) -> Batch:
    indices = np.asarray(indices, np.int64)
    images, labels = read_batch(source, indices)
    return xla_cpu.host_aligned({"x": scale_images(images), "y": np.asarray(labels, np.int32),
                                 "index": indices.astype(np.int32)})


def _shuffle_seed(seed: int) -> int:
    # Grain shuffles epoch e with seed + e, so raw seeds s and s + 1 would share permutations
    # one epoch apart; hashing the user's seed first makes runs with nearby seeds unrelated.
    return int(np.random.SeedSequence(seed).generate_state(1)[0])


@functools.partial(jax.jit, static_argnums=3)
def _draw(key: jax.Array, step, centres: jax.Array, batch_size: int, std) -> tuple:
    # One compiled call a batch (the key's fold-in inside it): Grain's threads run it beside
    # the train step, on the same cores.
    return sample_mixture(jax.random.fold_in(key, step), batch_size, centres, std)


def _sample_batch(key: jax.Array, centres: jax.Array, std: float, batch_size: int,
                  rows: slice, step: int) -> Batch:
    # The whole batch is drawn and this reader's rows kept: a 2-D batch is cheap, and the
    # rows are those of the one-reader batch.
    x, y = _draw(key, step, centres, batch_size, std)
    return {"x": np.asarray(x)[rows], "y": np.asarray(y)[rows],
            "index": np.full((batch_size,), -1, np.int32)[rows]}


# `Dataset.batches` draws a mixture's batches this many steps at a time. Drawn one by one,
# each batch cost a compiled call and a Grain element, about 0.4 ms a step in `jaxgan train`
# on ring8 (cProfile, 2026-12-07), against a ~3 ms step: on a CPU the draws run on the cores
# the step is using, so the loop waited for them.
MIXTURE_BLOCK = 10


@functools.partial(jax.jit, static_argnums=(3, 4))
def _draw_block(key: jax.Array, first, centres: jax.Array, batch_size: int, block: int,
                std) -> tuple:
    # The batches of steps first .. first + block - 1: `_draw` vmapped over the steps, so
    # each is `_draw`'s bit for bit.
    steps = first + jnp.arange(block, dtype=jnp.int32)
    return jax.vmap(lambda s: _draw(key, s, centres, batch_size, std))(steps)


def _sample_block(key: jax.Array, centres: jax.Array, std: float, batch_size: int,
                  rows: slice, block: int) -> Batch:
    x, y = _draw_block(key, block * MIXTURE_BLOCK, centres, batch_size, MIXTURE_BLOCK, std)
    return {"x": np.asarray(x)[:, rows], "y": np.asarray(y)[:, rows],
            "index": np.full((MIXTURE_BLOCK, batch_size), -1, np.int32)[:, rows]}


def _unblocked(blocks: Iterator[Batch], skip: int) -> Iterator[Batch]:
    """The batches of consecutive blocks one by one, the first ``skip`` left out."""
    for block in blocks:
        for i in range(skip, MIXTURE_BLOCK):
            yield {k: v[i] for k, v in block.items()}
        skip = 0


def shard_rows(batch_size: int, shard: tuple[int, int]) -> slice:
    """The rows of a global batch that reader ``index`` of ``count`` reads (``shard =
    (index, count)``; one process of a multi-host run), checked."""
    index, count = shard
    if not 0 <= index < count:
        raise DatasetError(f"shard {index} of {count} does not exist")
    if batch_size % count:
        raise DatasetError(f"a batch of {batch_size} cannot be split evenly over {count} "
                           "processes: choose a multiple of the process count")
    per = batch_size // count
    return slice(index * per, (index + 1) * per)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. Build with ``jaxgan.data.load_dataset``.

    Attributes:
        name: the name it was loaded by ("mnist", "ring8", "folder:/path", ...).
        example_shape: shape of one example, e.g. ``(28, 28, 1)``, ``(64, 64, 3)``, ``(2,)``.
        num_examples: size of the split; None for the (infinite) mixtures.
        num_classes: 10 for (Fashion-)MNIST, the number of modes for mixtures, None for folders.
        description: one line for logs and figure captions; says "(partial)" for a partial split.
        source: random-access source of a finite dataset (None for mixtures).
        centres: float32 ``(K, 2)`` mode centres of a mixture (None otherwise).
        std: standard deviation of each mode of a mixture (None otherwise).
    """
    name: str
    example_shape: tuple[int, ...]
    num_examples: int | None
    num_classes: int | None
    description: str
    source: Source | None = dataclasses.field(default=None, repr=False)
    centres: np.ndarray | None = dataclasses.field(default=None, repr=False)
    std: float | None = None

    @property
    def is_mixture(self) -> bool:
        return self.centres is not None

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch (remainder dropped); ``MIXTURE_STEPS_PER_EPOCH`` for mixtures."""
        if batch_size < 1:
            raise DatasetError(f"batch_size must be positive, got {batch_size}")
        if self.is_mixture:
            return MIXTURE_STEPS_PER_EPOCH
        return self.num_examples // batch_size

    def map_dataset(self, batch_size: int, *, seed: int,
                    shard: tuple[int, int] = (0, 1)) -> grain.MapDataset:
        """The infinite, random-access pipeline: element ``s`` is the batch of global step
        ``s`` (the rows ``shard`` reads of it, `shard_rows`)."""
        rows = shard_rows(batch_size, shard)
        steps = self.steps_per_epoch(batch_size)
        if steps == 0:
            raise DatasetError(
                f"{self.name} has {self.num_examples} examples, fewer than one batch of "
                f"{batch_size}")
        if self.is_mixture:
            key, centres = jax.random.key(seed), jnp.asarray(self.centres)
            return grain.MapDataset.range(sys.maxsize).map(functools.partial(
                _sample_batch, key, centres, self.std, batch_size, rows))
        # The global batch's indices are shuffled and batched as on one reader; each reader
        # then loads only its rows of them.
        return (grain.MapDataset.range(self.num_examples)
                .seed(_shuffle_seed(seed))
                .shuffle()
                .batch(batch_size, drop_remainder=True)
                .repeat()
                .map(lambda indices: indices[rows])
                .map(functools.partial(_load, self.source)))

    def batches(self, batch_size: int, *, seed: int, start_step: int = 0,
                num_threads: int = 2, prefetch: int = 8,
                shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
        """Batches from global step ``start_step`` on, forever (epoch after epoch).

        Args:
            batch_size: examples per batch; the last incomplete batch of each epoch is dropped.
            seed: the shuffle (or mixture sampling) seed; same seed, same batches.
            start_step: the global step of the first batch; resuming at ``s`` yields exactly the
                batches a run from 0 yields from its ``s``-th on.
            num_threads: Grain threads reading ahead (decoding images, sampling mixtures).
            prefetch: batches read ahead.
            shard: ``(index, count)``: read only rows ``index * B / count`` to
                ``(index + 1) * B / count`` of each global batch (process ``index`` of a
                ``count``-process run reads its own part; together they read the batch one
                process would).

        Returns:
            An iterator of ``{"x", "y", "index"}`` dicts of numpy arrays (see the module doc).
        """
        if start_step < 0:
            raise DatasetError(f"start_step must be >= 0, got {start_step}")
        options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
        if self.is_mixture:
            # `map_dataset`'s batches, drawn `MIXTURE_BLOCK` steps a call.
            rows = shard_rows(batch_size, shard)
            blocks = grain.MapDataset.range(sys.maxsize // MIXTURE_BLOCK).map(functools.partial(
                _sample_block, jax.random.key(seed), jnp.asarray(self.centres), self.std,
                batch_size, rows))[start_step // MIXTURE_BLOCK:]
            return _unblocked(iter(blocks.to_iter_dataset(options)), start_step % MIXTURE_BLOCK)
        ds = self.map_dataset(batch_size, seed=seed, shard=shard)[start_step:]
        return iter(ds.to_iter_dataset(options))

    def arrays(self, *, batch_size: int = 512, num_threads: int = 2
               ) -> tuple[np.ndarray, np.ndarray]:
        """The whole split in index order: ``x`` float32 in [-1, 1], ``y`` int32.

        For a folder this decodes every image. Mixtures are infinite: use ``sample_mixture``.
        """
        if self.is_mixture:
            raise DatasetError(
                f"{self.name} is an infinite mixture and has no arrays(); draw samples with "
                "jaxgan.data.mixtures.sample_mixture(key, n, dataset.centres, dataset.std)")
        ds = (grain.MapDataset.range(self.num_examples)
              .batch(batch_size)
              .map(functools.partial(_load, self.source)))
        options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
        batches = list(ds.to_iter_dataset(options))
        return (np.concatenate([b["x"] for b in batches]),
                np.concatenate([b["y"] for b in batches]))

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, example_shape={self.example_shape}, "
                f"num_examples={self.num_examples}, num_classes={self.num_classes})")

