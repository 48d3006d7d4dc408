"""jaxgan: the classic GAN family as pure JAX functions, trained, evaluated and compared.

The public API, what the command line calls::

    import jaxgan

    run = jaxgan.train(jaxgan.MixtureConfig(objective="nsgan", steps=2000), "runs/ring8")
    jaxgan.sample(run, n=64, out="runs/ring8/grid.png")

`jaxgan.runs.evaluate` scores a run (what ``jaxgan eval`` does) and `jaxgan.compare.run_compare`
compares objectives x seeds (what ``jaxgan compare`` does): their short names here would hide
the submodules `jaxgan.evaluate` and `jaxgan.compare`.

Your own objective is an `Objective` (a D loss and a G loss on D's logits), named by import
path (``"my_losses:rel"``) wherever a built-in name goes, or added under a name with
`register_objective`; `jaxgan.testing` checks it the way jaxgan checks its own. Configs are
frozen dataclasses whose defaults reproduce each paper; every field is also a flag of
``jaxgan train``. Submodules (`jaxgan.losses`, `jaxgan.step`, `jaxgan.loop`, ...) are there
for the pieces; names not listed in ``__all__`` are not part of the public API.
"""

from __future__ import annotations

from jaxgan import losses
from jaxgan.checkpoint import jaxgan_version as _version
from jaxgan.configs import (
    CGANMnistConfig,
    DCGANConfig,
    GLOConfig,
    GLOMnistConfig,
    LSGANMnistConfig,
    MixtureConfig,
    PacGANMixtureConfig,
    SSLConfig,
    Techniques,
    TrainConfig,
    load_config,
)
from jaxgan.nets.build import ARCHS
from jaxgan.objectives import OBJECTIVES, Objective, get_objective
from jaxgan.objectives import register as register_objective
from jaxgan.runs import load_run, sample, train

__version__ = _version()

__all__ = [
    "ARCHS", "CGANMnistConfig", "DCGANConfig", "GLOConfig", "GLOMnistConfig",
    "LSGANMnistConfig", "MixtureConfig", "OBJECTIVES", "Objective", "PacGANMixtureConfig",
    "SSLConfig", "Techniques", "TrainConfig", "get_objective",
    "load_config", "load_run", "losses", "register_objective", "sample", "train",
    "__version__",
]

