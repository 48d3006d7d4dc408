"""jaxgan: the classic GAN family as pure JAX functions, trained, evaluated and compared.

The public API, what the command line calls::

    import jaxgan

    run = jaxgan.train(jaxgan.MixtureConfig(objective="nsgan", steps=2000), "runs/ring8")
    jaxgan.sample(run, n=2500, out="runs/ring8/points.png")
    print(jaxgan.evaluate(run)["samples"])          # PacGAN's mode metrics
    jaxgan.compare(jaxgan.CompareConfig(objectives="nsgan,lsgan", seeds=3), "runs/cmp")

`train`, `sample`, `evaluate` and `compare` are what ``jaxgan train / sample / eval /
compare`` call, with the same arguments.

Your own objective is an `Objective` (a D loss and a G loss on D's logits), named by import
path (``"my_losses:rel"``) wherever a built-in name goes, or added under a name with
`register_objective`; `jaxgan.testing` checks it the way jaxgan checks its own. Configs are
frozen dataclasses whose defaults reproduce each paper; every field is also a flag of
``jaxgan train``. Submodules (`jaxgan.losses`, `jaxgan.step`, `jaxgan.loop`, ...) are there
for the pieces; names not listed in ``__all__`` are not part of the public API.
"""

from __future__ import annotations

from jaxgan import xla_cpu as _xla_cpu

# Before anything starts JAX's CPU backend: each step gets back, already mapped, the memory the
# one before it freed (`jaxgan.xla_cpu.reuse_step_memory`; JAXGAN_KEEP_HOST_DEFAULTS=1 opts out).
_xla_cpu.reuse_step_memory()

from jaxgan import losses
from jaxgan.checkpoint import jaxgan_version as _version
from jaxgan.comparison import CompareConfig, compare
from jaxgan.configs import (
    CGANMnistConfig,
    DCGANConfig,
    GLOConfig,
    GLOMnistConfig,
    LSGANMnistConfig,
    MixtureConfig,
    PacGANMixtureConfig,
    SSLConfig,
    Stabilisers,
    Techniques,
    TrainConfig,
    load_config,
)
from jaxgan.nets.build import ARCHS
from jaxgan.objectives import OBJECTIVES, Objective, get_objective
from jaxgan.objectives import register as register_objective
from jaxgan.runs import evaluate, load_run, sample, train

# jax.random's Threefry written out on CPU: the same bits, faster (`jaxgan.xla_cpu`). Nothing
# above compiles a draw at import, so every jaxgan step is lowered with it.
_xla_cpu.use_unrolled_threefry_on_cpu()

__version__ = _version()

__all__ = [
    "ARCHS", "CGANMnistConfig", "CompareConfig", "DCGANConfig", "GLOConfig", "GLOMnistConfig",
    "LSGANMnistConfig", "MixtureConfig", "OBJECTIVES", "Objective", "PacGANMixtureConfig",
    "SSLConfig", "Stabilisers", "Techniques", "TrainConfig", "compare", "evaluate", "get_objective",
    "load_config", "load_run", "losses", "register_objective", "sample", "train",
    "__version__",
]

