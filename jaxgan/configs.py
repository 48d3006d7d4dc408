"""Run configurations: one frozen dataclass per paper's setup, defaults reproducing it.

The command line is generated from these fields (`jaxgan.cli`), so a new field is a new flag
with no second list to keep in sync. Every config is saved beside its run as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fields shared by every GAN run. Subclasses change defaults, never meaning.

    Attributes:
      objective: registry name (``jaxgan.objectives.OBJECTIVES``).
      dataset: ``mnist``, ``fashion_mnist``, ``ring8``, ``grid25`` or an image folder path.
      data_dir: a folder of IDX files for mnist / fashion_mnist (else TFDS).
      arch: ``mlp`` (2-D points), ``pacgan_mlp`` (PacGAN's fixed 2-D networks; ``hidden``,
        ``depth``, ``activation`` are the ``mlp``'s), ``lsgan_mnist``, ``dcgan`` or
        ``cgan_mlp`` (the user's cGAN MLPs on flattened images).
      conditional: G(z, y) and D(x, y) with learned label embeddings (Mirza & Osindero 2014).
      embed_dim: size of the label embedding.
      dropout: D's dropout rate (``cgan_mlp`` only).
      resolution: image side; image folders default to 64, MNIST is 28 (another value
        resizes it).
      width: DCGAN base channel count (64 in the paper).
      d_norm: DCGAN D's normalisation, "batch", "layer" or "none"; default: the objective's
        own (layer norm for wgan-gp, whose per-example gradient penalty batch norm would
        couple across the batch; batch norm otherwise).
      hidden, depth, activation: the MLP networks of the 2-D toy.
      z_dim, z_dist: latent size and distribution (``normal`` or ``uniform`` on [-1, 1]).
      batch_size: examples per D update.
      g_lr, d_lr, beta1, beta2: Adam for G and D.
      n_critic: D updates per G update (Algorithm 1's k); default: the objective's own (5 for
        wgan-gp, else 1).
      epochs: passes over the data; ``steps`` overrides it when set.
      steps: total train steps (one G update each).
      seed: the one seed of the run (init, noise, data order).
      log_every: steps between metrics lines.
      num_samples: samples drawn for each figure (a grid of images or a 2-D scatter).
      eval_every: epochs between evaluations written to metrics.jsonl (0: never). Mixtures:
        PacGAN's mode metrics; MNIST / Fashion-MNIST: FID, KID, score, precision / recall.
      feature_matching: G matches the batch means of D's features of real data instead of
        minimising the objective's G loss (Salimans et al. 2016, Sec. 3.1).
      fm_layer: D's layer for feature matching: "features" (the last hidden layer after its
        activation) or a submodule path such as hidden/0 (its output, before activation).
      fm_reduce: "mean" over features of the squared difference of means (the official
        code) or "sum" (the paper's squared norm).
      minibatch_disc: minibatch discrimination between D's features and its head (Sec. 3.2).
      mbd_kernels, mbd_kernel_dim: its B kernels of C dimensions (official code: 100, 5).
      mbd_self_term: include each example itself in its closeness sum (the paper; the
        official code excludes it).
      historical_avg: weight of ||theta - mean of past theta||^2 in each player's loss
        (Sec. 3.3); 0: off.
      label_smoothing: D's target for real data (Sec. 3.4, e.g. 0.9); fake targets stay 0;
        1: off. For gan / nsgan, and lsgan (b moves towards a).
      vbn: virtual batch norm in G (Sec. 3.5): each example normalised with a reference batch
        fixed at the start; needs a G with batch norm (lsgan_mnist, dcgan).
      vbn_ref_size: size of that reference batch (default: batch_size).
    """

    objective: str = "nsgan"
    dataset: str = "ring8"
    data_dir: str | None = None
    arch: str = "mlp"
    conditional: bool = False
    embed_dim: int = 10
    dropout: float = 0.3
    resolution: int | None = None
    width: int = 64
    d_norm: str | None = None
    hidden: int = 128
    depth: int = 2
    activation: str = "tanh"
    z_dim: int = 100
    z_dist: str = "normal"
    batch_size: int = 64
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int | None = None
    epochs: int = 10
    steps: int | None = None
    seed: int = 0
    log_every: int = 50
    num_samples: int = 64
    eval_every: int = 0
    feature_matching: bool = False
    fm_layer: str = "features"
    fm_reduce: str = "mean"
    minibatch_disc: bool = False
    mbd_kernels: int = 100
    mbd_kernel_dim: int = 5
    mbd_self_term: bool = True
    historical_avg: float = 0.0
    label_smoothing: float = 1.0
    vbn: bool = False
    vbn_ref_size: int | None = None

    def to_json(self) -> str:
        return json.dumps({"config": type(self).__name__, **dataclasses.asdict(self)}, indent=2)


@dataclasses.dataclass(frozen=True)
class MixtureConfig(TrainConfig):
    """The 2-D mixture-of-Gaussians toy as in LSGAN's released code (Mao et al. 2017).

    G and D with 2 tanh hidden layers of 128, z 256-d Gaussian, Adam (D 1e-4, G 1e-3,
    beta1 0.5), batch 512, 35k iterations, the 0-1 coding. One "epoch" of a mixture is a fixed
    number of steps (see `jaxgan.data`), used only to space figures and checkpoints.
    """

    objective: str = "lsgan"
    dataset: str = "ring8"
    arch: str = "mlp"
    z_dim: int = 256
    batch_size: int = 512
    g_lr: float = 1e-3
    d_lr: float = 1e-4
    steps: int | None = 35_000
    log_every: int = 100
    num_samples: int = 2_500  # PacGAN's evaluation sample count
    eval_every: int = 1  # mode metrics are cheap


@dataclasses.dataclass(frozen=True)
class PacGANMixtureConfig(MixtureConfig):
    """The 2-D mixtures as in PacGAN's released code (Lin et al. 2018, arXiv:1712.04086), whose
    Table 1 the README compares against: G with 4 batch-norm ReLU layers of 400 from a 2-d
    Gaussian z, D with 3 maxout layers of 200 (5 pieces), weights N(0, 0.02); Adam 1e-4 for
    both, beta1 0.8; batch 100; 400 epochs of 100,000 samples, i.e. 400,000 steps. Their G
    loss is the non-saturating one.

    Differences from their code: they draw the 100,000 training samples once and iterate over
    them, where jaxgan draws fresh ones every step; they update D and G at once from the same
    batch (ALI's algorithm), where jaxgan's step updates D, then G (Goodfellow et al.'s
    Algorithm 1).
    """

    objective: str = "nsgan"
    arch: str = "pacgan_mlp"
    z_dim: int = 2
    batch_size: int = 100
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.8
    steps: int | None = 400_000
    log_every: int = 1_000


@dataclasses.dataclass(frozen=True)
class LSGANMnistConfig(TrainConfig):
    """The user's LSGAN MNIST run (Mao et al. 2017 networks for 28x28 digits).

    z 62, BN on the middle layers, linear D output, Adam 2e-4 / beta1 0.5, batch 64. The user
    saw near-real digits after about 30 epochs.
    """

    objective: str = "lsgan"
    dataset: str = "mnist"
    arch: str = "lsgan_mnist"
    z_dim: int = 62
    batch_size: int = 64
    epochs: int = 30


@dataclasses.dataclass(frozen=True)
class DCGANConfig(TrainConfig):
    """DCGAN (Radford et al. 2015): Adam 2e-4 / beta1 0.5, batch 128, z 100 uniform on [-1, 1].

    The non-saturating loss is the paper's practice; 64 px is its resolution. The user's own
    run is a folder of photos at a chosen resolution (32 to 256).
    """

    objective: str = "nsgan"
    dataset: str = "mnist"
    arch: str = "dcgan"
    resolution: int | None = None  # the data's own: 28 for MNIST, 64 for an image folder
    z_dim: int = 100
    z_dist: str = "uniform"
    batch_size: int = 128
    epochs: int = 25


@dataclasses.dataclass(frozen=True)
class CGANMnistConfig(TrainConfig):
    """The user's conditional GAN on MNIST (Mirza & Osindero 2014, arXiv:1411.1784).

    MLPs with a 10 -> 10 label embedding concatenated to the input: D 784+10 -> 1024 -> 512 ->
    256 -> 1 with LeakyReLU(0.2) and Dropout(0.3); G 100+10 -> 256 -> 512 -> 1024 -> 784 with
    tanh. BCE (the non-saturating GAN loss), Adam lr 1e-4 with PyTorch's default betas (the
    listing sets no betas), batch 64, 30 epochs, z 100. The listing's slips are not
    reproduced: G is really trained, and its unused ``n_critic = 5`` stays 1.
    """

    objective: str = "nsgan"
    dataset: str = "mnist"
    arch: str = "cgan_mlp"
    conditional: bool = True
    z_dim: int = 100
    batch_size: int = 64
    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.9
    epochs: int = 30
    num_samples: int = 80  # 10 class rows of 8


CONFIGS: dict[str, type[TrainConfig]] = {
    "mixture": MixtureConfig,
    "pacgan_mixture": PacGANMixtureConfig,
    "lsgan_mnist": LSGANMnistConfig,
    "dcgan": DCGANConfig,
    "cgan_mnist": CGANMnistConfig,
}

MIXTURES = ("ring8", "grid25")


def default_config_name(dataset: str, conditional: bool = False) -> str:
    """The paper setup a dataset name implies when no ``--config`` is given."""
    if dataset in MIXTURES:
        return "mixture"
    if dataset in ("mnist", "fashion_mnist"):
        return "cgan_mnist" if conditional else "lsgan_mnist"
    return "dcgan"  # an image folder: the user's DCGAN-on-photos run


def config_class(name: str) -> type[TrainConfig]:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; valid configs: {', '.join(CONFIGS)}") from None


def field_types(cls: type[TrainConfig]) -> dict[str, type]:
    """Each field's scalar type, with ``X | None`` reduced to ``X`` (the CLI parses it)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        args = [a for a in typing.get_args(t) if a is not type(None)]
        out[f.name] = args[0] if args else t
    return out


def differences(saved: dict, now: dict) -> dict[str, tuple]:
    """The settings in which two configs (as dicts) differ, each as ``(saved, now)``: what a
    refused ``--resume`` names, so the user sees which flag to change back."""
    return {k: (saved.get(k), now.get(k)) for k in sorted(saved.keys() | now.keys())
            if saved.get(k) != now.get(k)}


def load_config(path: str | Path) -> TrainConfig:
    """Reads the ``config.json`` a run wrote."""
    d = json.loads(Path(path).read_text())
    kind = d.pop("config")
    classes = {c.__name__: c for c in (TrainConfig, *CONFIGS.values())}
    if kind not in classes:
        raise ValueError(f"{path}: unknown config class {kind!r}; known: {', '.join(classes)}")
    return classes[kind](**d)
