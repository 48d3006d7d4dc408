"""Run configurations: one frozen dataclass per paper's setup, defaults reproducing it.

Every method's config lives here: the GAN variants (`TrainConfig` and one subclass per paper
setup, with the Improved Techniques nested as `Techniques`), GLO (`GLOConfig`) and the
semi-supervised K+1 GAN (`SSLConfig`). The command line is generated from these fields
(`jaxgan.flags`), so a new field is a new flag with no second list to keep in sync. Every
config is saved beside its run as JSON (`to_json`, read back by `load_config`); its class's
``method`` names the method that trains it (`jaxgan.methods`).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, ClassVar

FM_REDUCTIONS = ("mean", "sum")
# jaxgan.data.folder.BAD_IMAGES (this layer sits below jaxgan.data, so it cannot import it).
BAD_IMAGES = ("fail", "skip")


def _check_bad_images(value: str) -> None:
    if value not in BAD_IMAGES:
        raise ValueError(f"bad_images must be one of {BAD_IMAGES}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Techniques:
    """The techniques of Salimans et al. 2016 (arXiv:1606.03498, Sec. 3), all off by default.

    Two act on the networks (built in by `jaxgan.nets.build`: minibatch discrimination wraps
    D, virtual batch norm rewires G), three on the losses (applied by `jaxgan.step`: feature
    matching replaces G's loss, historical averaging adds a penalty to both players, label
    smoothing moves D's real target, resolved into the objective by
    `jaxgan.objectives.resolve`), so every objective, conditioning and ``n_critic`` composes
    with every technique in the one step.

    Attributes:
      feature_matching: G matches the batch means of D's features of real data instead of
        minimising the objective's G loss (Sec. 3.1).
      fm_layer: D's layer for feature matching: "features" (the last hidden layer after its
        activation) or a submodule path such as hidden/0 (its output, before activation).
      fm_reduce: "mean" over features of the squared difference of means (the official
        code) or "sum" (the paper's squared norm).
      minibatch_disc: minibatch discrimination between D's features and its head (Sec. 3.2).
      mbd_kernels, mbd_kernel_dim: its B kernels of C dimensions (official code: 100, 5).
      mbd_self_term: include each example itself in its closeness sum (the paper; the
        official code excludes it).
      historical_avg: weight of ||theta - mean of past theta||^2 in each player's loss
        (Sec. 3.3); 0: off. The paper gives no value.
      label_smoothing: D's target for real data (Sec. 3.4, e.g. 0.9); fake targets stay 0;
        1: off. For gan / nsgan, and lsgan (b moves towards a).
      vbn: virtual batch norm in G (Sec. 3.5): each example normalised with a reference batch
        fixed at the start; needs a G with batch norm (lsgan_mnist, dcgan).
      vbn_ref_size: size of that reference batch (default: batch_size).
    """

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

    def __post_init__(self):
        if self.fm_reduce not in FM_REDUCTIONS:
            raise ValueError(f"fm_reduce must be one of {FM_REDUCTIONS}, got {self.fm_reduce!r}")
        if self.historical_avg < 0:
            raise ValueError(f"historical_avg is a weight >= 0, got {self.historical_avg}")
        if not 0.0 < self.label_smoothing <= 1.0:
            raise ValueError(
                f"label_smoothing is the real target alpha in (0, 1] (1: off), got "
                f"{self.label_smoothing}"
            )
        if self.mbd_kernels < 1 or self.mbd_kernel_dim < 1:
            raise ValueError("mbd_kernels and mbd_kernel_dim must be positive")
        if self.vbn_ref_size is not None and self.vbn_ref_size < 1:
            raise ValueError(f"vbn_ref_size must be positive, got {self.vbn_ref_size}")

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the techniques switched on, e.g. ``("fm", "mbd")``."""
        on = [
            ("fm", self.feature_matching),
            ("mbd", self.minibatch_disc),
            ("ha", self.historical_avg > 0),
            ("ls", self.label_smoothing < 1),
            ("vbn", self.vbn),
        ]
        return tuple(name for name, flag in on if flag)


# DiffAugment's three policies, in the order its best setting ("Color + Translation +
# Cutout") and the official code apply them (`jaxgan.augment`).
DIFFAUG_POLICIES = ("color", "translation", "cutout")


def parse_diffaug(policy: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    """A DiffAugment policy as a checked tuple of names from `DIFFAUG_POLICIES`.

    Configs carry strings: ``"color,translation"`` (the official spelling), also with
    slashes (``"color/translation"``, for ``jaxgan compare`` entries, whose own separator is
    the comma) and spaces. ``""`` and ``()`` are the empty policy.

    Raises:
      ValueError: an unknown name (listing the valid ones) or a repeated one (it would
        reuse its key, i.e. apply the same draw twice).
    """
    if isinstance(policy, str):
        policy = policy.replace("/", ",").split(",")
    names = tuple(p.strip() for p in policy if p.strip())
    unknown = [p for p in names if p not in DIFFAUG_POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(map(repr, unknown))}; valid "
                         f"names: {', '.join(DIFFAUG_POLICIES)} (e.g. 'color,translation,cutout'"
                         ", separated by commas or slashes)")
    repeated = sorted({p for p in names if names.count(p) > 1})
    if repeated:
        raise ValueError(f"DiffAugment policy {', '.join(map(repr, repeated))} given more "
                         f"than once in {names}")
    return names


COND_DS = ("concat", "projection", "acgan")


@dataclasses.dataclass(frozen=True)
class Stabilisers:
    """What later GAN work made standard, all off by default; each composes with every
    objective, network and conditioning (`jaxgan.step`, `jaxgan.nets.build`).

    Attributes:
      spectral_norm: every Linear and Conv layer of D divided by its largest singular value,
        one power iteration a train step (Miyato et al. 2018, arXiv:1802.05957;
        `jaxgan.nets.spectral`).
      g_ema: decay of an exponential moving average of G's parameters (e.g. 0.999, Karras
        et al. 2018, arXiv:1710.10196; Yazici et al. 2019, arXiv:1806.04498), kept in the
        state and used for samples, figures and evaluation; 0: off. A batch-norm G's
        averaged weights run with G's current running statistics, as StudioGAN's EMA, which
        copies G's buffers (BigGAN's "standing statistics", recomputed for the average, are
        not built).
      r1: weight gamma of R1, ``gamma / 2 * ||grad_x D(x)||^2`` on real data (Mescheder et
        al. 2018, arXiv:1801.04406, e.g. 10); 0: off.
      r2: the same penalty on generated data; 0: off.
      reg_every: lazy regularisation (Karras et al. 2020, arXiv:1912.04958, Sec. B): R1 / R2
        only every this many D updates, weighted by it, so their average is unchanged.
      diffaug: DiffAugment policy, a subset of color, translation, cutout separated by commas
        or slashes (``jaxgan compare`` entries are comma-separated: ``+diffaug=color/cutout``),
        applied to real and fake images before D in both players' updates (Zhao et al.
        2020, arXiv:2006.10738; `jaxgan.augment`), for small image datasets; "": off.
    """

    spectral_norm: bool = False
    g_ema: float = 0.0
    r1: float = 0.0
    r2: float = 0.0
    reg_every: int = 1
    diffaug: str = ""

    def __post_init__(self):
        if not 0.0 <= self.g_ema < 1.0:
            raise ValueError(f"g_ema is a decay in [0, 1) (0: off, e.g. 0.999), got {self.g_ema}")
        if self.r1 < 0 or self.r2 < 0:
            raise ValueError(f"r1 and r2 are weights >= 0, got {self.r1}, {self.r2}")
        if self.reg_every < 1:
            raise ValueError(f"reg_every must be >= 1, got {self.reg_every}")
        parse_diffaug(self.diffaug)  # refuses unknown or repeated names now, not in the step

    @property
    def diffaug_policy(self) -> tuple[str, ...]:
        """``diffaug`` as the tuple of names `jaxgan.augment.diff_augment` takes."""
        return parse_diffaug(self.diffaug)

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the stabilisers switched on, e.g. ``("sn", "ema")``."""
        on = [("sn", self.spectral_norm), ("ema", self.g_ema > 0), ("r1", self.r1 > 0),
              ("r2", self.r2 > 0), ("diffaug", bool(self.diffaug_policy))]
        return tuple(name for name, flag in on if flag)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Fields shared by every GAN run. Subclasses change defaults, never meaning: each
    paper's setup is a subclass whose defaults reproduce it (`CONFIGS`).

    Example::

        cfg = jaxgan.LSGANMnistConfig(objective="nsgan", epochs=5, data_dir="mnist/")
        cfg = dataclasses.replace(cfg, techniques=jaxgan.Techniques(feature_matching=True))

    Attributes:
      objective: registry name (``jaxgan.objectives.OBJECTIVES``).
      dataset: ``mnist``, ``fashion_mnist``, ``ring8``, ``grid25`` or an image folder path.
      data_dir: a folder of IDX files for mnist / fashion_mnist (else TFDS).
      bad_images: image folders: what to do with a file that cannot be read: 'fail' (stop,
        naming it) or 'skip' (leave it out, counted).
      arch: ``mlp`` (2-D points), ``pacgan_mlp`` (PacGAN's fixed 2-D networks; ``hidden``,
        ``depth``, ``activation`` are the ``mlp``'s), ``lsgan_mnist``, ``dcgan`` or
        ``cgan_mlp`` (the user's cGAN MLPs on flattened images), or your own pair as
        ``module:Generator,Discriminator`` (`jaxgan.nets.build.plugin_pair`).
      conditional: G(z, y) and D(x, y) with learned label embeddings (Mirza & Osindero 2014).
      embed_dim: size of the label embedding.
      cond_d: how a conditional D takes the label: "concat" (an embedding beside its input,
        Mirza & Osindero 2014), "projection" (an embedding dotted with its features,
        Miyato & Koyama 2018) or "acgan" (D sees no label; a class head on its features,
        trained on real and fake data, and G trained to be classified as its label: the
        auxiliary classifier GAN, Odena et al. 2017).
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
      precision: compute dtype of G and D, ``fp32`` or ``bf16`` (mixed precision: parameters,
        Adam's moments and batch-norm statistics stay float32, losses are taken in float32).
        ``bf16`` is for TPUs and GPUs with bfloat16 units; a CPU emulates it, slower than
        fp32.
      log_every: steps between metrics lines.
      num_samples: samples drawn for each figure (a grid of images or a 2-D scatter).
      eval_every: epochs between evaluations written to metrics.jsonl (0: never). Mixtures:
        PacGAN's mode metrics; MNIST / Fashion-MNIST: FID, KID, score, precision / recall.
      techniques: the Improved Techniques of Salimans et al. 2016 (`Techniques`); each of
        its fields is a flag of its own (``--feature-matching``, ``--label-smoothing 0.9``).
      stabilisers: spectral norm, G's EMA, R1 / R2, DiffAugment (`Stabilisers`), flags of
        their own too (``--spectral-norm``, ``--g-ema 0.999``, ``--r1 10``).
    """

    objective: str = "nsgan"
    dataset: str = "ring8"
    data_dir: str | None = None
    bad_images: str = "fail"
    arch: str = "mlp"
    conditional: bool = False
    embed_dim: int = 10
    cond_d: str = "concat"
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
    precision: str = "fp32"
    log_every: int = 50
    num_samples: int = 64
    eval_every: int = 0
    techniques: Techniques = Techniques()
    stabilisers: Stabilisers = Stabilisers()

    method: ClassVar[str] = "gan"

    def __post_init__(self):
        _check_bad_images(self.bad_images)
        if self.cond_d not in COND_DS:
            raise ValueError(f"cond_d must be one of {', '.join(COND_DS)}, got {self.cond_d!r}")
        if self.cond_d != "concat" and not self.conditional:
            raise ValueError(f"cond_d={self.cond_d} is how a conditional D takes the label: add "
                             "--conditional (jaxgan compare: +cond)")

    def to_json(self) -> str:
        return to_json(self)


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




@dataclasses.dataclass(frozen=True)
class GLOConfig:
    """GLO on images with the DCGAN generator (Bojanowski et al. 2017, arXiv:1707.05776).

    Attributes:
      dataset, data_dir, resolution: as in `TrainConfig`.
      bad_images: image folders: what to do with a file that cannot be read: 'fail' (stop,
        naming it) or 'skip' (leave it out, counted).
      width: DCGAN generator base channel count.
      z_dim: latent size d (the paper: 100 or 512 at 64 px; 32 suffices for 28 px digits).
      projection: ``sphere`` (unit l2 sphere, the ICML version) or ``ball`` (arXiv v1).
      init: ``pca`` (top-d principal-component coefficients of the flattened training images,
        then projected; the paper's) or ``normal`` (Gaussian, then projected).
      lap1_weight, l2_weight: the loss ``a Lap1 + b L2`` (Lap1 alone is the paper's main one).
      levels: Laplacian pyramid depth, residual included (4: 28, 14, 7, 4 px for MNIST).
      weight_exponent: level ``j`` (0 = finest) weighs ``2^(e j)``; 2 is the paper's
        ``2^(2j)``, equal weight per pixel at every level (`jaxgan.pyramid.lap1`).
      pixel_mean: divide each image's loss by its pixel count (else the paper's sums).
      theta_lr: SGD learning rate of the generator. The paper's 1 saturates the DCGAN
        generator's tanh output at the first step on MNIST (outputs all -1, gradients ~0);
        0.3 trains (see `jaxgan.methods.glo`).
      theta_momentum: SGD momentum of the generator (0: the paper's plain SGD).
      z_lr: SGD learning rate of the latents on the batch-mean loss (the paper's 10).
      batch_size: images per step.
      epochs: passes over the data; ``steps`` overrides it when set.
      steps: total train steps.
      seed: the one seed of the run (init, data order, figure noise).
      log_every: steps between metrics lines.
      num_samples: images in each sample grid.
      fit_steps: SGD steps of latent fitting for held-out images (theta frozen).
      fit_lr: their SGD rate on each image's own loss; ``None``: ``z_lr / batch_size``, the
        step a training row takes (it gets ``1/B`` of the batch-mean loss's gradient).
      fit_init: held-out starting latents, ``pca`` (their projected PCA coefficients, as the
        training latents started; on MNIST they start at half the loss of ``nearest``, and
        both end equal) or ``nearest`` (`jaxgan.glo_latents.held_out_init`).
      sampler_components: Gaussians in the sampler fitted to the latents for samples and
        evaluation: 1 is the paper's full-covariance Gaussian; k > 1 a k-means mixture of
        them (an extension, far better FID on MNIST).
    """

    method: ClassVar[str] = "glo"

    dataset: str = "mnist"
    data_dir: str | None = None
    bad_images: str = "fail"
    resolution: int | None = None
    width: int = 64
    z_dim: int = 32
    projection: str = "sphere"
    init: str = "pca"
    lap1_weight: float = 1.0
    l2_weight: float = 0.0
    levels: int = 4
    weight_exponent: float = 2.0
    pixel_mean: bool = True
    theta_lr: float = 0.3
    theta_momentum: float = 0.0
    z_lr: float = 10.0
    batch_size: int = 128
    epochs: int = 25
    steps: int | None = None
    seed: int = 0
    log_every: int = 50
    num_samples: int = 64
    fit_steps: int = 300
    fit_lr: float | None = None
    fit_init: str = "pca"
    sampler_components: int = 1

    def __post_init__(self):
        if self.projection not in GLO_PROJECTIONS:
            raise ValueError(
                f"projection must be one of {GLO_PROJECTIONS}, got {self.projection!r}")
        if self.init not in GLO_INITS:
            raise ValueError(f"init must be one of {GLO_INITS}, got {self.init!r}")
        if self.sampler_components < 1:
            raise ValueError(f"sampler_components must be >= 1, got {self.sampler_components}")
        _check_bad_images(self.bad_images)

    def to_json(self) -> str:
        return to_json(self)


GLO_PROJECTIONS = ("sphere", "ball")
GLO_INITS = ("pca", "normal")


@dataclasses.dataclass(frozen=True)
class GLOMnistConfig(GLOConfig):
    """GLO on MNIST as `experiments/glo_mnist.py` runs it: d = 32 on the unit sphere from PCA,
    Lap1, SGD (theta 0.3, z 10), 30 epochs; width 32 (64 channels at 7x7) rather than
    DCGAN's 64: 4x cheaper, and enough for digits."""

    width: int = 32
    epochs: int = 30


SSL_UNLABELLED = ("rest", "all")


@dataclasses.dataclass(frozen=True)
class SSLConfig:
    """The semi-supervised GAN on permutation-invariant MNIST, the official code's defaults.

    Attributes:
      dataset, data_dir: a labelled image dataset (mnist, fashion_mnist) and its IDX folder.
      labels: labelled examples in total, balanced over the classes (the paper: 20, 50, 100,
        200).
      label_seed: which labelled subset (default: ``seed``); the paper averages 10 subsets.
      unlabelled: ``rest`` (the training images not labelled) or ``all`` (every training
        image, as the official code).
      seed: initialisation, noise and data order.
      batch_size: examples in each of the labelled, unlabelled and generated batches.
      lr, beta1, beta2: Adam for both networks (official: 0.003, 0.5, 0.999).
      g_steps: G updates per D update (official: 1). Feature matching's G lags D early in
        training, and the semi-supervised gain only starts once G's samples fool D
        sometimes; 2 gets there in about half the steps (see `jaxgan.methods.ssl`).
      unsup_weight: weight of ``L_unsup`` in D's loss (official: 0.5).
      input_noise, hidden_noise: D's Gaussian noise std on the input and after each hidden
        layer (official: 0.3, 0.5).
      z_dim: G's noise, ``U(0, 1)^z_dim``.
      d_hidden, g_hidden: hidden layer sizes, comma-separated (official: 1000,500,250,250,250
        and 500,500).
      init_examples: training images for the weight-norm data-dependent initialisation.
      ema_rate: per-step rate of the moving average of D's parameters used for test error
        (official: 1e-4); 0: test with D's current parameters only.
      epochs: passes over the unlabelled data (official: 300); ``steps`` overrides.
      steps: total train steps.
      log_every: steps between metrics lines.
      num_samples: images in each sample grid.
    """

    method: ClassVar[str] = "ssl"

    dataset: str = "mnist"
    data_dir: str | None = None
    labels: int = 100
    label_seed: int | None = None
    unlabelled: str = "rest"
    seed: int = 0
    batch_size: int = 100
    lr: float = 0.003
    beta1: float = 0.5
    beta2: float = 0.999
    g_steps: int = 1
    unsup_weight: float = 0.5
    input_noise: float = 0.3
    hidden_noise: float = 0.5
    z_dim: int = 100
    d_hidden: str = "1000,500,250,250,250"
    g_hidden: str = "500,500"
    init_examples: int = 500
    ema_rate: float = 1e-4
    epochs: int = 300
    steps: int | None = None
    log_every: int = 100
    num_samples: int = 100

    def __post_init__(self):
        if self.unlabelled not in SSL_UNLABELLED:
            raise ValueError(
                f"unlabelled must be one of {SSL_UNLABELLED}, got {self.unlabelled!r}")
        if self.labels < 1:
            raise ValueError(f"labels must be positive, got {self.labels}")
        if self.g_steps < 1:
            raise ValueError(f"g_steps must be >= 1, got {self.g_steps}")
        if not 0.0 <= self.ema_rate < 1.0:
            raise ValueError(f"ema_rate must be in [0, 1), got {self.ema_rate}")
        for name in ("d_hidden", "g_hidden"):
            sizes(getattr(self, name), name)

    @property
    def subset_seed(self) -> int:
        return self.seed if self.label_seed is None else self.label_seed

    def to_json(self) -> str:
        return to_json(self)


def sizes(text: str, name: str = "sizes") -> tuple[int, ...]:
    """``"1000,500"`` -> ``(1000, 500)``."""
    try:
        out = tuple(int(t) for t in text.split(","))
    except ValueError:
        out = ()
    if not out or min(out) < 1:
        raise ValueError(f"{name} must be comma-separated positive sizes, got {text!r}")
    return out


CONFIGS: dict[str, type] = {
    "mixture": MixtureConfig,
    "pacgan_mixture": PacGANMixtureConfig,
    "lsgan_mnist": LSGANMnistConfig,
    "dcgan": DCGANConfig,
    "cgan_mnist": CGANMnistConfig,
    "glo_mnist": GLOMnistConfig,
    "ssl_mnist": SSLConfig,
}

MIXTURES = ("ring8", "grid25")


def default_config_name(dataset: str, conditional: bool = False) -> str:
    """The paper setup a dataset name implies when no ``--config`` is given."""
    if dataset in MIXTURES:
        return "mixture"
    if dataset in ("mnist", "fashion_mnist"):
        return "cgan_mnist" if conditional else "lsgan_mnist"
    return "dcgan"  # an image folder: the user's DCGAN-on-photos run


def config_class(name: str) -> type:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; valid configs: {', '.join(CONFIGS)}") from None


# --------------------------------------------------------------------------------------
# Configs as flat field dicts and as JSON
# --------------------------------------------------------------------------------------

_NESTED = {"techniques": Techniques, "stabilisers": Stabilisers}


def flat_dict(cfg) -> dict[str, Any]:
    """The config's fields with nested ones (``techniques``) spliced in: one name, one value,
    as the flags and ``compare``'s ``+field=value`` switches name them."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out.update(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else
                   {f.name: value})
    return out


def field_types(cls: type) -> dict[str, type]:
    """Each field's scalar type (nested fields spliced in, as `flat_dict`), with ``X | None``
    reduced to ``X``."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.update(field_types(t))
            continue
        args = [a for a in typing.get_args(t) if a is not type(None)]
        out[f.name] = args[0] if args else t
    return out


def replace(cfg, **changes):
    """``dataclasses.replace`` that also sets fields of nested configs by their own name:
    ``replace(cfg, feature_matching=True)`` sets ``cfg.techniques.feature_matching``."""
    top = {f.name for f in dataclasses.fields(cfg)}
    direct = {k: v for k, v in changes.items() if k in top}
    for f in dataclasses.fields(cfg):
        inner = getattr(cfg, f.name)
        if not dataclasses.is_dataclass(inner):
            continue
        names = {g.name for g in dataclasses.fields(inner)}
        mine = {k: v for k, v in changes.items() if k in names}
        if mine:
            direct[f.name] = dataclasses.replace(direct.get(f.name, inner), **mine)
            changes = {k: v for k, v in changes.items() if k not in mine}
    unknown = set(changes) - top
    if unknown:
        raise ValueError(f"{type(cfg).__name__} has no field {', '.join(sorted(unknown))}; "
                         f"valid: {', '.join(sorted(flat_dict(cfg)))}")
    return dataclasses.replace(cfg, **direct)


def to_json(cfg) -> str:
    return json.dumps({"config": type(cfg).__name__, **dataclasses.asdict(cfg)}, indent=2)


def from_dict(d: dict):
    """The config a `to_json` dict describes (a run's ``config.json``; a checkpoint's
    metadata). Runs written before the techniques were nested have their fields flat: they
    are folded into ``techniques``."""
    d = dict(d)
    kind = d.pop("config", None)
    classes = {c.__name__: c for c in (TrainConfig, GLOConfig, *CONFIGS.values())}
    if kind not in classes:
        raise ValueError(f"unknown config class {kind!r}; known: {', '.join(classes)}")
    cls = classes[kind]
    for name, nested in _NESTED.items():
        if name in {f.name for f in dataclasses.fields(cls)}:
            inner = dict(d.pop(name, None) or {})
            for g in dataclasses.fields(nested):
                if g.name in d:
                    inner[g.name] = d.pop(g.name)
            d[name] = nested(**inner)
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{kind} has no field {', '.join(sorted(unknown))}; valid: "
                         f"{', '.join(f.name for f in dataclasses.fields(cls))}")
    return cls(**d)


def load_config(path: str | Path):
    """Reads the ``config.json`` a run wrote (any method).

    Example::

        cfg = jaxgan.load_config("runs/ring8/config.json")
        jaxgan.train(dataclasses.replace(cfg, objective="lsgan"), "runs/ring8-lsgan")
    """
    try:
        return from_dict(json.loads(Path(path).read_text()))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def differences(saved: dict, now: dict) -> dict[str, tuple]:
    """The settings in which two configs (as dicts) differ, each as ``(saved, now)``: what a
    refused ``--resume`` names, so the user sees which flag to change back."""
    return {k: (saved.get(k), now.get(k)) for k in sorted(saved.keys() | now.keys())
            if saved.get(k) != now.get(k)}
