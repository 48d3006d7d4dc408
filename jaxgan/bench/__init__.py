"""``jaxgan bench``: how fast each main configuration's train step runs on this machine.

For every configuration it builds the real state and jitted step (`jaxgan.methods`) on random
data of the right shape, and reports:

* steps/s after compilation: the median of several timed windows, each ended by
  ``block_until_ready`` (steps are dispatched asynchronously; only a sync measures them);
* the compile time of the first call, apart;
* the step's FLOPs from XLA's cost analysis, and the achieved FLOP/s as a fraction of this
  machine's measured fp32 matmul peak (a 2048 x 2048 matmul, timed the same way): how far the
  step is from its roofline;
* the step's device memory from XLA's memory analysis (arguments, outputs and temporaries;
  donated buffers counted once) and the process's peak resident memory.

Versions, backend and device count go with every result. Random data isolates the step from
the input pipeline (``benchmarks/data_pipeline.py`` measures that), as the PyTorch references
do; quote ratios from one run, never an absolute time from another day: a shared machine's
speed varies.

``--vs-torch PYTHON`` also times the PyTorch reference of each configuration that has one
(`Case.torch`: scripts in the source checkout's ``benchmarks/``, layer for layer the models of
``../shared/bench``), run by ``PYTHON`` (a virtual environment with torch; torch is never a
dependency of jaxgan). jaxgan windows and PyTorch runs alternate, at least 3 of each, so a
change in the machine's speed hits both; the ratio is the median of the pairs' ratios. Each
run's parameter counts are checked against jaxgan's networks.

``--scaling`` times the DCGAN step over resolutions and batch sizes and ``compare``'s step
over seed counts, and draws the log-log figure (`jaxgan.bench.scaling`).
"""

from jaxgan.bench.reference import REFS_DIR, torch_run, torch_version
from jaxgan.bench.scaling import scaling
from jaxgan.bench.steps import (
    CASES,
    RING,
    Case,
    dcgan_case,
    environment,
    matmul_peak,
    measure,
    run,
)

__all__ = ["CASES", "REFS_DIR", "RING", "Case", "dcgan_case", "environment", "matmul_peak",
           "measure", "run", "scaling", "torch_run", "torch_version"]
