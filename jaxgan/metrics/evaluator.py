"""The evaluator classifier: a small conv net jaxgan trains itself, cached on disk.

TF-GAN's ``mnist_score`` / ``mnist_frechet_distance`` replace Inception with an MNIST
classifier, but ship frozen weights that must be downloaded. Here the classifier is trained
by jaxgan on the dataset's own training split (a couple of minutes on a CPU), stored in a
user cache directory together with the sha256 of the arrays it was trained on, and retrained
only when that file is missing or stale. Its 128-d penultimate activations are the features
of FID, KID and precision/recall; its softmax is ``p(y|x)`` of the classifier score.

Measured with the defaults below (``benchmarks/eval_speed.py``) on the partial MNIST
training split (the first 22,699 images): 99.30% on the official 10,000 test images after
10 epochs (1,770 Adam steps, random rotation/scale/shift), 75 s of training on a shared
2-core CPU; loading from the cache takes under a second, and the full metric set on 10,000
generated vs 10,000 real images about 9 s. Any other 10-class 28x28 dataset (Fashion-MNIST)
goes through the same ``get_evaluator(name, ...)``.

References:
  TF-GAN ``tfgan.eval.mnist_score``, ``mnist_frechet_distance``
  (github.com/tensorflow/gan, ``tensorflow_gan/examples/mnist/util.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
import time
import warnings
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import jax.scipy.ndimage
import numpy as np
import optax
from flax import nnx

from jaxgan.metrics.frechet import frechet_distance
from jaxgan.metrics.kid import kid
from jaxgan.metrics.precision_recall import precision_recall
from jaxgan.metrics.score import class_entropy, classifier_score, conditional_accuracy
from jaxgan.progress import bar as progress_bar

# Bump whenever the network, the preprocessing or the file layout changes: old cache files
# then no longer match and are retrained.
ARCH_VERSION = 1


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------


def _max_pool_2x2(h: jax.Array) -> jax.Array:
    # A reshape + max instead of nnx.max_pool: reduce_window's gradient
    # (select_and_scatter) is several times slower on XLA:CPU.
    b, hh, ww, c = h.shape
    return h.reshape(b, hh // 2, 2, ww // 2, 2, c).max(axis=(2, 4))


class EvaluatorNet(nnx.Module):
    """conv5x5(32, stride 2) -> conv3x3(64) -> 2x2 max pool -> dense(128) -> dense(K).

    ReLU throughout; the 128-d post-ReLU dense activations are the features (like
    Inception's pool3, the last layer before the logits). No BatchNorm, so evaluation is a
    pure function of the parameters. The strided first conv keeps the expensive 64-channel
    conv at 14x14 (a 28x28 conv + pool first makes a training step 3x slower on a CPU).
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, *,
                 features: int = 128, rngs: nnx.Rngs):
        h, w, c = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"image height and width must be multiples of 4, got {h}x{w}")
        self.conv1 = nnx.Conv(c, 32, (5, 5), strides=2, rngs=rngs)
        self.conv2 = nnx.Conv(32, 64, (3, 3), rngs=rngs)
        self.hidden = nnx.Linear((h // 4) * (w // 4) * 64, features, rngs=rngs)
        self.head = nnx.Linear(features, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x: (B, H, W, C) in [-1, 1]. Returns (features (B, 128), logits (B, K))."""
        h = nnx.relu(self.conv1(x))
        h = _max_pool_2x2(nnx.relu(self.conv2(h)))
        feats = nnx.relu(self.hidden(h.reshape(h.shape[0], -1)))
        return feats, self.head(feats)


# --------------------------------------------------------------------------------------
# The evaluator: parameters + a batched, jitted forward
# --------------------------------------------------------------------------------------


def _as_images(x: Any) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) in [-1, 1] -> float32 (N, H, W, C)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"expected images (N, H, W[, C]), got shape {x.shape}")
    return x


@jax.jit
def _forward(graphdef, params, x):
    feats, logits = nnx.merge(graphdef, params)(x)
    return feats, jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


class Evaluator:
    """A trained evaluator classifier.

    Attributes:
      name: dataset name (``"mnist"``, ``"fashion_mnist"``, ...).
      image_shape: (H, W, C) of the images it takes.
      num_classes: K.
      test_accuracy: accuracy on the test split given to ``get_evaluator`` (None if none).
      from_cache: whether the parameters were loaded rather than trained.
      path: the cache file, if any.
      train_seconds: wall time of training (0.0 when loaded).
    """

    def __init__(self, name: str, graphdef, params, *, image_shape, num_classes,
                 batch_size: int = 500):
        self.name = name
        self.graphdef = graphdef
        self.params = params
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_classes = int(num_classes)
        self.batch_size = int(batch_size)
        self.test_accuracy: float | None = None
        self.from_cache = False
        self.path: pathlib.Path | None = None
        self.train_seconds = 0.0

    def features_and_probs(self, x) -> tuple[np.ndarray, np.ndarray]:
        """x: float32 (N, H, W, C) in [-1, 1] -> (features (N, 128), probs (N, K)).

        Runs in fixed-size batches (the last one padded) so the forward is traced once.
        """
        x = _as_images(x)
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"evaluator {self.name!r} takes {self.image_shape} images, "
                             f"got {x.shape[1:]}")
        n = x.shape[0]
        bs = self.batch_size
        feats, probs = [], []
        for i in range(0, n, bs):
            chunk = x[i:i + bs]
            m = chunk.shape[0]
            if m < bs:
                chunk = np.concatenate([chunk, np.zeros((bs - m,) + chunk.shape[1:],
                                                        np.float32)])
            f, p = _forward(self.graphdef, self.params, jnp.asarray(chunk))
            feats.append(f[:m])
            probs.append(p[:m])
        if not feats:
            f = self.params["hidden"]["kernel"].shape[-1]
            return (np.zeros((0, f), np.float32),
                    np.zeros((0, self.num_classes), np.float32))
        return (np.asarray(jnp.concatenate(feats)), np.asarray(jnp.concatenate(probs)))

    def accuracy(self, x, y) -> float:
        """Top-1 accuracy on labelled images."""
        _, probs = self.features_and_probs(x)
        return conditional_accuracy(probs, np.asarray(y))

    def __repr__(self):
        acc = "?" if self.test_accuracy is None else f"{self.test_accuracy:.4f}"
        return (f"Evaluator(name={self.name!r}, image_shape={self.image_shape}, "
                f"num_classes={self.num_classes}, test_accuracy={acc}, "
                f"from_cache={self.from_cache})")


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvaluatorRecipe:
    """The evaluator's training recipe. Part of the cache key: change it, retrain."""
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    # Light augmentation: random translations by up to ``shift`` pixels, rotations by up
    # to ``rotate_deg`` degrees, scalings by up to ``scale``. The partial 22,699-image
    # MNIST split is too small to reach 99% test accuracy without it.
    shift: float = 2.0
    rotate_deg: float = 10.0
    scale: float = 0.1
    seed: int = 0


@flax.struct.dataclass
class _TrainState:
    params: Any
    opt: Any
    key: jax.Array
    step: jax.Array


def _random_affine(x: jax.Array, key: jax.Array, *, shift: float, rotate_deg: float,
                   scale: float) -> jax.Array:
    """Random rotation, isotropic scaling and translation of each image (bilinear, the
    outside filled with -1, the background of images scaled to [-1, 1])."""
    if shift == 0 and rotate_deg == 0 and scale == 0:
        return x
    b, h, w, c = x.shape
    k_rot, k_scale, k_shift = jax.random.split(key, 3)
    theta = jnp.deg2rad(rotate_deg) * jax.random.uniform(k_rot, (b,), minval=-1, maxval=1)
    s = 1.0 + scale * jax.random.uniform(k_scale, (b,), minval=-1, maxval=1)
    t = shift * jax.random.uniform(k_shift, (b, 2), minval=-1, maxval=1)
    ii, jj = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2,
                          jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2, indexing="ij")

    def warp(img, theta, s, t):
        # Inverse map: output pixel (i, j) reads the input at R(-theta) (i, j) / s - t.
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        src_i = (cos * ii + sin * jj) / s - t[0] + (h - 1) / 2
        src_j = (-sin * ii + cos * jj) / s - t[1] + (w - 1) / 2
        return jnp.stack([
            jax.scipy.ndimage.map_coordinates(img[..., ch], [src_i, src_j], order=1,
                                              mode="constant", cval=-1.0)
            for ch in range(c)], axis=-1)

    return jax.vmap(warp)(x, theta, s, t)


def _make_train_step(graphdef, tx, cfg: EvaluatorRecipe):
    def loss_fn(params, x, y):
        _, logits = nnx.merge(graphdef, params)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(state: _TrainState, x_all, y_all, idx):
        key = jax.random.fold_in(state.key, state.step)
        x = _random_affine(x_all[idx], key, shift=cfg.shift, rotate_deg=cfg.rotate_deg,
                           scale=cfg.scale)
        loss, grads = jax.value_and_grad(loss_fn)(state.params, x, y_all[idx])
        updates, opt = tx.update(grads, state.opt, state.params)
        params = optax.apply_updates(state.params, updates)
        return state.replace(params=params, opt=opt, step=state.step + 1), loss

    return jax.jit(step, donate_argnums=0)


def _check_finite(loss) -> None:
    if not np.isfinite(float(loss)):
        raise FloatingPointError(f"evaluator training diverged: loss {float(loss)}")


def train_evaluator(name: str, x_train, y_train, *, num_classes: int | None = None,
                    config: EvaluatorRecipe = EvaluatorRecipe(), progress: bool = True) -> Evaluator:
    """Trains an evaluator from scratch (no cache). Adam with cosine decay, shift aug."""
    x = _as_images(x_train)
    y = np.asarray(y_train, dtype=np.int32)
    if num_classes is None:
        num_classes = int(y.max()) + 1
    n = x.shape[0]
    bs = min(config.batch_size, n)
    steps_per_epoch = n // bs
    total = steps_per_epoch * config.epochs

    model = EvaluatorNet(x.shape[1:], num_classes, rngs=nnx.Rngs(config.seed))
    graphdef, params = nnx.split(model, nnx.Param)
    schedule = optax.cosine_decay_schedule(config.learning_rate, max(total, 1))
    tx = optax.adamw(schedule, weight_decay=config.weight_decay)
    state = _TrainState(params=params, opt=tx.init(params),
                        key=jax.random.key(config.seed), step=jnp.zeros((), jnp.int32))
    step = _make_train_step(graphdef, tx, config)

    x_dev, y_dev = jnp.asarray(x), jnp.asarray(y)
    rng = np.random.default_rng(config.seed)
    t0 = time.perf_counter()
    bar = progress_bar(total=total, desc=f"training {name} evaluator", enabled=progress,
                       leave=False)
    prev_loss = None
    for _ in range(config.epochs):
        perm = rng.permutation(n)[:steps_per_epoch * bs].reshape(steps_per_epoch, bs)
        perm = jnp.asarray(perm, jnp.int32)
        for i in range(steps_per_epoch):
            state, loss = step(state, x_dev, y_dev, perm[i])
            if prev_loss is not None and (i % 50 == 0 or i == steps_per_epoch - 1):
                # The previous step's loss: reading it does not stall the current step.
                _check_finite(prev_loss)
                bar.set_postfix(loss=f"{float(prev_loss):.4f}")
            prev_loss = loss
            bar.update(1)
    if prev_loss is not None:
        _check_finite(prev_loss)
    bar.close()

    ev = Evaluator(name, graphdef, state.params, image_shape=x.shape[1:],
                   num_classes=num_classes)
    ev.train_seconds = time.perf_counter() - t0
    return ev


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------


def default_cache_dir() -> pathlib.Path:
    """``$JAXGAN_CACHE_DIR`` if set, else ``~/.cache/jaxgan``."""
    env = os.environ.get("JAXGAN_CACHE_DIR")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "jaxgan"


def data_checksum(x_train, y_train) -> str:
    """sha256 of the training arrays as the evaluator sees them (float32 images, int32
    labels), shapes included."""
    x = np.ascontiguousarray(_as_images(x_train))
    y = np.ascontiguousarray(np.asarray(y_train, dtype=np.int32))
    h = hashlib.sha256()
    for a in (x, y):
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _cache_key(data_sha: str, num_classes: int, config: EvaluatorRecipe) -> str:
    recipe = json.dumps({"arch": ARCH_VERSION, "num_classes": num_classes,
                         "config": dataclasses.asdict(config)}, sort_keys=True)
    return hashlib.sha256((data_sha + recipe).encode()).hexdigest()


def cache_path(cache_dir, name: str, key: str) -> pathlib.Path:
    return pathlib.Path(cache_dir) / f"{name}-evaluator-v{ARCH_VERSION}-{key[:16]}.npz"


def _path_name(keypath) -> str:
    return "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in keypath)


def save_evaluator(ev: Evaluator, path, meta: dict) -> None:
    """Writes parameters + metadata to ``path`` (.npz), atomically."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(ev.params))[0]
    flat = {"param/" + _path_name(kp): np.asarray(v) for kp, v in leaves}
    meta = dict(meta, name=ev.name, image_shape=list(ev.image_shape),
                num_classes=ev.num_classes, arch_version=ARCH_VERSION)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(meta)), **flat)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_evaluator(path) -> tuple[Evaluator, dict]:
    """Reads an evaluator written by ``save_evaluator``. Returns (evaluator, metadata)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        arrays = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
    # Restored against an abstract model: shapes and dtypes only, no initialisation.
    model = nnx.eval_shape(lambda: EvaluatorNet(tuple(meta["image_shape"]),
                                                meta["num_classes"], rngs=nnx.Rngs(0)))
    graphdef, params = nnx.split(model, nnx.Param)
    pure = nnx.to_pure_dict(params)

    def fill(kp, leaf):
        name = _path_name(kp)
        value = arrays.pop(name)
        if value.shape != leaf.shape:
            raise ValueError(f"{name}: shape {value.shape} != {leaf.shape}")
        return jnp.asarray(value, leaf.dtype)

    pure = jax.tree_util.tree_map_with_path(fill, pure)
    if arrays:
        raise ValueError(f"unexpected arrays in {path}: {sorted(arrays)}")
    nnx.replace_by_pure_dict(params, pure)
    ev = Evaluator(meta["name"], graphdef, params, image_shape=meta["image_shape"],
                   num_classes=meta["num_classes"])
    return ev, meta


def get_evaluator(name: str, x_train, y_train, x_test=None, y_test=None, *,
                  cache_dir=None, epochs: int = EvaluatorRecipe.epochs, seed: int = 0,
                  num_classes: int | None = None, config: EvaluatorRecipe | None = None,
                  progress: bool = True) -> Evaluator:
    """The evaluator for a dataset: loaded from the cache, or trained and cached.

    The cache file is ``<cache_dir>/<name>-evaluator-v<ARCH_VERSION>-<key>.npz`` where the
    key hashes the sha256 of ``(x_train, y_train)``, the architecture version and the
    training recipe (``EvaluatorRecipe``: epochs, seed, ...). A missing file, an unreadable one,
    or one whose stored checksum does not match is retrained and rewritten.

    Args:
      name: dataset name, e.g. ``"mnist"``, ``"fashion_mnist"``.
      x_train, y_train: training images float (N, H, W[, C]) in [-1, 1], int labels (N,).
      x_test, y_test: optional test split; ``test_accuracy`` is measured on it.
      cache_dir: defaults to ``$JAXGAN_CACHE_DIR`` or ``~/.cache/jaxgan``.
      epochs, seed: shortcuts for the corresponding ``EvaluatorRecipe`` fields.
      num_classes: defaults to ``max(y_train) + 1``.
      config: a full ``EvaluatorRecipe`` (its epochs/seed are overridden by the keywords).
      progress: show a tqdm bar while training.
    """
    config = dataclasses.replace(config or EvaluatorRecipe(), epochs=epochs, seed=seed)
    y = np.asarray(y_train, dtype=np.int32)
    if num_classes is None:
        num_classes = int(y.max()) + 1
    data_sha = data_checksum(x_train, y)
    key = _cache_key(data_sha, num_classes, config)
    path = cache_path(cache_dir if cache_dir is not None else default_cache_dir(), name,
                      key)

    ev = None
    if path.exists():
        try:
            ev, meta = load_evaluator(path)
            if (meta.get("data_sha256") != data_sha or meta.get("cache_key") != key
                    or meta.get("arch_version") != ARCH_VERSION):
                ev = None  # stale: trained on other data or with another recipe
        except Exception as e:  # noqa: BLE001 - a corrupt cache file is just a miss
            warnings.warn(f"ignoring unreadable evaluator cache {path}: {e}")
            ev = None
        if ev is not None:
            ev.from_cache = True

    if ev is None:
        ev = train_evaluator(name, x_train, y, num_classes=num_classes, config=config,
                             progress=progress)
        save_evaluator(ev, path, {"data_sha256": data_sha, "cache_key": key,
                                  "config": dataclasses.asdict(config),
                                  "train_seconds": ev.train_seconds})
    ev.path = path
    if x_test is not None and y_test is not None:
        ev.test_accuracy = ev.accuracy(x_test, y_test)
    return ev


# --------------------------------------------------------------------------------------
# The metric set
# --------------------------------------------------------------------------------------


def evaluate_features(fake_feats, fake_probs, real_feats, *, fake_labels=None, k: int = 3,
                      kid_subsets: int = 100, kid_subset_size: int = 1000,
                      seed: int = 0) -> dict[str, float]:
    """All image metrics from precomputed evaluator outputs (see ``evaluate_images``)."""
    kid_mean, kid_std = kid(fake_feats, real_feats, num_subsets=kid_subsets,
                            subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(real_feats, fake_feats, k=k)
    out = {
        "fid": frechet_distance(fake_feats, real_feats),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "score": classifier_score(fake_probs),
        "precision": precision,
        "recall": recall,
        "class_entropy": class_entropy(fake_probs, fake_probs.shape[-1]),
    }
    if fake_labels is not None:
        out["conditional_accuracy"] = conditional_accuracy(fake_probs, fake_labels)
    return out


def evaluate_images(evaluator: Evaluator, fake_x, real_x, *, fake_labels=None,
                    k: int = 3) -> dict[str, float]:
    """The metric set of generated images against real ones.

    Args:
      evaluator: from ``get_evaluator``.
      fake_x, real_x: float (N, H, W[, C]) in [-1, 1]; 10,000 each is the usual size.
      fake_labels: the labels a conditional generator was asked for; adds
        ``conditional_accuracy``.
      k: neighbourhood size of precision/recall.

    Returns:
      dict with ``fid, kid_mean, kid_std, score, precision, recall, class_entropy`` (nats;
      ``log K`` when every class is generated equally often) and, given labels,
      ``conditional_accuracy``.
    """
    fake_feats, fake_probs = evaluator.features_and_probs(fake_x)
    real_feats, _ = evaluator.features_and_probs(real_x)
    return evaluate_features(fake_feats, fake_probs, real_feats, fake_labels=fake_labels,
                             k=k)


def reference_anchors(evaluator: Evaluator, x_train, x_test, n: int = 10000,
                      seed: int = 0) -> dict[str, dict[str, float]]:
    """The metric set at the two ends of the scale, to read a GAN's numbers against.

    ``"real"``: ``n`` test images scored as if generated, against ``n`` training images
    (FID near 0, precision/recall near 1, score near K). ``"noise"``: ``n`` images of
    uniform noise in [-1, 1] against the same training images (FID far, score near 1).
    """
    rng = np.random.default_rng(seed)
    x_train, x_test = _as_images(x_train), _as_images(x_test)
    real = x_train[rng.choice(len(x_train), min(n, len(x_train)), replace=False)]
    test = x_test[rng.choice(len(x_test), min(n, len(x_test)), replace=False)]
    noise = rng.uniform(-1.0, 1.0, size=(min(n, len(x_train)),) + x_train.shape[1:])
    real_feats, _ = evaluator.features_and_probs(real)
    out = {}
    for label, x in (("real", test), ("noise", noise.astype(np.float32))):
        feats, probs = evaluator.features_and_probs(x)
        out[label] = evaluate_features(feats, probs, real_feats, seed=seed)
    return out
