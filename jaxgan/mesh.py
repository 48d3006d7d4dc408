"""Where a step runs: a device mesh, the state placed on it, each batch split across it.

One code path for one device and many (the JAX Training Cookbook's and big_vision's data
parallelism): a 1-D device mesh, and one `jax.jit` step with explicit input
and output shardings and the state donated. XLA's SPMD partitioner does the rest: under jit
a mean over the batch is a mean over the global batch, so batch-norm statistics, minibatch
discrimination and the losses see every device's rows (the compiler inserts the
all-reduces), and the step computes what the one-device step computes.

Two ways to lay work out:
  ``data``: the state replicated on every device, each batch split by rows (a training run).
  ``seed``: a stack of independent runs (`jaxgan.comparison`'s seeds) split by its leading
    axis; each device trains its own seeds and no collective is needed.

Nothing here depends on the device count: noise is drawn inside the step from
``fold_in(key, step)`` with JAX's partitionable threefry (the values do not depend on how
an array is sharded), and batch ``s`` is the same global batch whatever the number of
devices or processes (`jaxgan.data`). A run on 8 devices draws what a run on 1 draws.

Several processes (hosts) join one mesh after `initialize`; each reads only its own rows of
every global batch, which `Placement.put_batch` assembles into one global array
(`jax.make_array_from_process_local_data`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxgan import xla_cpu

DATA = "data"
SEED = "seed"

# The environment variables that ask for a multi-process run without the flag: JAX reads the
# coordinator's from the environment itself; the other two are jaxgan's names for
# `jax.distributed.initialize`'s arguments (launchers JAX detects itself, Slurm, Open MPI,
# Kubernetes and TPU pods, need neither).
COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


def initialize(distributed: bool = False) -> bool:
    """Joins a multi-process run with `jax.distributed.initialize` when asked: ``distributed``
    (``--distributed``) or ``$JAX_COORDINATOR_ADDRESS`` set; never on a plain run.

    With the address, ``$JAX_NUM_PROCESSES`` and ``$JAX_PROCESS_ID`` give the other two
    arguments; without them JAX detects its cluster (Slurm, Open MPI, TPU pods). Must run
    before anything touches a device. Returns whether it initialised.
    """
    if not (distributed or os.environ.get(COORDINATOR_ENV)):
        return False
    if jax.distributed.is_initialized():
        return True
    kwargs = {}
    for env, arg in ((NUM_PROCESSES_ENV, "num_processes"), (PROCESS_ID_ENV, "process_id")):
        if os.environ.get(env):
            kwargs[arg] = int(os.environ[env])
    try:
        jax.distributed.initialize(**kwargs)
    except (ValueError, RuntimeError) as e:
        raise ValueError(
            f"could not start the multi-process run ({e}). Launch every process with "
            f"${COORDINATOR_ENV}=HOST:PORT (process 0's address), ${NUM_PROCESSES_ENV} and "
            f"${PROCESS_ID_ENV}, or under Slurm / Open MPI / a TPU pod, which JAX detects"
        ) from e
    return True


def process_shard() -> tuple[int, int]:
    """``(index, count)`` of this process: which rows of every global batch it reads
    (`jaxgan.data.Dataset.batches`'s ``shard``; ``(0, 1)`` on one host). The mesh's devices
    are in process order, so process ``i``'s devices hold exactly those rows."""
    return jax.process_index(), jax.process_count()


def barrier(name: str) -> None:
    """Waits until every process reaches this point (nothing to wait for on one host)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0; always on one host)."""
    return jax.process_index() == 0


@dataclasses.dataclass(frozen=True)
class Placement:
    """A mesh and which axis of it the work is split along (``DATA`` or ``SEED``)."""

    mesh: jax.sharding.Mesh
    axis: str = DATA

    @property
    def size(self) -> int:
        """Devices the work is split over."""
        return self.mesh.devices.size

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def split(self) -> NamedSharding:
        """Rows of a batch (``DATA``) or the leading seed axis (``SEED``) across devices."""
        return NamedSharding(self.mesh, PartitionSpec(self.axis))

    @property
    def state(self) -> NamedSharding:
        """The state's sharding: replicated for data parallelism, split by seed otherwise."""
        return self.replicated if self.axis == DATA else self.split

    def check_batch(self, global_batch: int, what: str = "the batch") -> None:
        """A clear error when ``global_batch`` rows cannot be split evenly."""
        if global_batch % self.size:
            unit = "seeds" if self.axis == SEED else "examples"
            raise ValueError(
                f"{what} of {global_batch} {unit} cannot be split evenly over {self.size} "
                f"devices: choose a multiple of {self.size}, or --devices a divisor of "
                f"{global_batch}")

    def put_state(self, tree: Any) -> Any:
        """``tree`` (the same on every process) placed with the state's sharding."""
        if jax.process_count() == 1:
            return jax.device_put(tree, self.state)
        sharding = self.state

        def put(x):
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])

        return jax.tree.map(put, tree)

    def put_batch(self, local: Any) -> Any:
        """This process's rows of a batch (all of it on one host) as one global array per
        leaf, split along the mesh axis; on CPU in one process, the host arrays themselves.

        CPU devices are this host's memory, so there is no transfer to overlap with a step:
        the step compiled by `jit` takes the host arrays and its input sharding places them,
        for less host work than ``jax.device_put`` (ring8's MLP step, one process,
        alternating windows: 5.34 ms with the batch put, 4.73 ms given the host arrays,
        4.80 ms reusing a batch already placed). Right after a step, XLA's worker threads
        still spin on both cores of this project's CPU, and the Python work of a put costs
        2.5x what it costs alone. The arrays go on 64-byte boundaries, copied if they are
        not, so that the step reads them in place (`jaxgan.xla_cpu.host_aligned` says why).
        """
        if jax.process_count() == 1:
            if all(d.platform == "cpu" for d in self.mesh.devices.flat):
                return xla_cpu.host_aligned(local)
            return jax.device_put(local, self.split)
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(self.split, np.asarray(x)), local)

    def local(self, tree: Any) -> Any:
        """A replicated ``tree`` as arrays on this process's first device (its copy there, no
        transfer): what figures and evaluations draw from, on one device, instead of every
        device of the mesh computing the same samples."""
        if self.axis != DATA:
            raise ValueError("local() is for a replicated state; a seed stack is split")
        return jax.tree.map(lambda x: x.addressable_data(0), tree)

    def jit(self, step: Callable[[Any, Any], tuple[Any, Any]], like: Any,
            steps: int = 1) -> Callable:
        """``step(state, batch) -> (state, metrics)`` compiled for this mesh: the state in and
        out with its sharding (donated, so its buffers are reused), the batch split, the
        metrics replicated (data) or split by seed; with the compiler options of ``like``,
        one seed's state (`jaxgan.xla_cpu.jit_step`). With ``steps`` > 1, the function runs
        that many steps on batches stacked on a new leading axis
        (`jaxgan.xla_cpu.scan_steps`), its metrics stacked the same way."""
        lead = () if steps == 1 else (None,)
        batch = NamedSharding(self.mesh, PartitionSpec(*lead, self.axis))
        metrics = NamedSharding(self.mesh, PartitionSpec(*lead, *(() if self.axis == DATA
                                                                  else (self.axis,))))
        fn = step if steps == 1 else xla_cpu.scan_steps(step)
        return xla_cpu.jit_step(fn, like, in_shardings=(self.state, batch),
                                out_shardings=(self.state, metrics))


def available(devices: int | None) -> int:
    """``devices`` checked against what there is (all of them when ``None``)."""
    have = jax.device_count()
    if devices is None:
        return have
    if devices < 1 or devices > have:
        raise ValueError(f"--devices {devices}: this run has {have} device(s) "
                         f"({jax.default_backend()}); choose 1 to {have}")
    if jax.process_count() > 1 and devices != have:
        raise ValueError(f"--devices {devices}: a multi-process run uses all {have} devices "
                         f"of its {jax.process_count()} processes")
    return devices


def placement(devices: int | None = None, axis: str = DATA) -> Placement:
    """A 1-D mesh over the first ``devices`` devices (default: all) along ``axis``.

    The mesh axis is `AxisType.Auto`: the compiler propagates shardings through the step
    (the networks know nothing of devices). The devices are in process order (not the
    physical order `jax.make_mesh` may choose on a TPU pod), so each process's devices hold
    one contiguous block of rows: the rows `process_shard` says it reads.
    """
    n = available(devices)
    ordered = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))[:n]
    return Placement(Mesh(np.array(ordered), (axis,), axis_types=(AxisType.Auto,)), axis)


def data_placement(batch: int, devices: int | None = None) -> Placement:
    """A ``DATA`` mesh for a global batch of ``batch`` rows: over ``devices`` (an error if
    they cannot share it evenly), or by default over all devices, or, when the batch does
    not split over all of them on one host, the most that it does split over (with a
    warning saying how to use them all)."""
    if devices is None and jax.process_count() == 1:
        have = jax.device_count()
        devices = _most_that_divide(batch, have)
        if devices < have:
            warnings.warn(f"a batch of {batch} does not split evenly over {have} devices: "
                          f"training on {devices}; choose a batch size that is a multiple "
                          f"of {have} to use them all", stacklevel=2)
    place = placement(devices, DATA)
    place.check_batch(batch, "--batch-size")
    return place


def seed_placement(seeds: int, devices: int | None = None) -> Placement:
    """A ``SEED`` mesh for a stack of ``seeds`` runs: over the most devices (at most
    ``devices``, default all) that divide ``seeds`` evenly, so each device trains the same
    number of seeds (10 seeds on 8 devices: 5 devices, 2 seeds each)."""
    n = available(devices)
    return placement(_most_that_divide(seeds, n), SEED)


def _most_that_divide(count: int, devices: int) -> int:
    """The largest number of devices, at most ``devices``, that ``count`` splits over evenly."""
    return max(d for d in range(1, devices + 1) if count % d == 0)
