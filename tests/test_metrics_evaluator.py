"""Tests of jaxgan.metrics.evaluator: training on a tiny synthetic dataset, the cache, the
batched forward and the metric set."""

import numpy as np
import pytest

from jaxgan.metrics import evaluator as ev_mod
from jaxgan.metrics.evaluator import (
    EvaluatorRecipe,
    default_cache_dir,
    evaluate_images,
    get_evaluator,
    reference_anchors,
)

# 8x8 images, 3 classes: class c is a bright horizontal bar on rows 2c, 2c + 1.
CFG = EvaluatorRecipe(batch_size=32, learning_rate=3e-3, shift=1.0, rotate_deg=0.0, scale=0.0)


def _toy(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = np.full((n, 8, 8, 1), -1.0, np.float32)
    for c in range(3):
        x[y == c, 2 * c + 1:2 * c + 3, 1:7] = 1.0
    x += rng.normal(size=x.shape).astype(np.float32) * 0.2
    return np.clip(x, -1, 1), y


@pytest.fixture(scope="module")
def toy():
    return (*_toy(256, 0), *_toy(96, 1))


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    ev = get_evaluator("toy", *toy, cache_dir=cache, epochs=2, config=CFG, progress=False)
    return ev, cache


def test_trains_and_reports_accuracy(trained):
    ev, cache = trained
    assert not ev.from_cache
    assert ev.test_accuracy > 0.9
    assert ev.num_classes == 3 and ev.image_shape == (8, 8, 1)
    assert ev.path.parent == cache
    assert ev.path.name.startswith(f"toy-evaluator-v{ev_mod.ARCH_VERSION}-")
    assert ev.path.exists()


def test_features_and_probs_batched(trained, toy):
    ev, _ = trained
    x = toy[2]
    ev.batch_size = 40  # 96 = 40 + 40 + 16: the last batch is padded
    feats, probs = ev.features_and_probs(x)
    assert feats.shape == (96, 128) and probs.shape == (96, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert (feats >= 0).all()  # post-ReLU
    ev.batch_size = 500
    f2, p2 = ev.features_and_probs(x[..., 0])  # (N, H, W) is accepted too
    np.testing.assert_allclose(f2, feats, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p2, probs, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        ev.features_and_probs(np.zeros((2, 12, 12, 1), np.float32))
    f0, p0 = ev.features_and_probs(np.zeros((0, 8, 8, 1), np.float32))
    assert f0.shape == (0, 128) and p0.shape == (0, 3)


def test_cache_round_trip(trained, toy):
    ev, cache = trained
    again = get_evaluator("toy", *toy, cache_dir=cache, epochs=2, config=CFG, progress=False)
    assert again.from_cache and again.path == ev.path
    assert again.test_accuracy == ev.test_accuracy
    np.testing.assert_array_equal(again.features_and_probs(toy[2])[0],
                                  ev.features_and_probs(toy[2])[0])


def test_stale_data_retrains(trained, toy):
    ev, cache = trained
    x, y, xt, yt = toy
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 3  # one label changed: another checksum
    other = get_evaluator("toy", x, y2, xt, yt, cache_dir=cache, epochs=2, config=CFG,
                          progress=False)
    assert not other.from_cache and other.path != ev.path


def test_tampered_file_retrains(toy, tmp_path):
    ev = get_evaluator("toy", *toy, cache_dir=tmp_path, epochs=1, config=CFG, progress=False)
    # Rewrite the file with a wrong stored checksum: it must be treated as stale.
    loaded, meta = ev_mod.load_evaluator(ev.path)
    ev_mod.save_evaluator(loaded, ev.path, dict(meta, data_sha256="0" * 64))
    again = get_evaluator("toy", *toy, cache_dir=tmp_path, epochs=1, config=CFG,
                          progress=False)
    assert not again.from_cache
    # A truncated file is a miss too (with a warning), not a crash.
    ev.path.write_bytes(b"not an npz")
    with pytest.warns(UserWarning, match="unreadable"):
        third = get_evaluator("toy", *toy, cache_dir=tmp_path, epochs=1, config=CFG,
                              progress=False)
    assert not third.from_cache


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXGAN_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("JAXGAN_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == (".cache", "jaxgan")


def test_evaluate_images_and_anchors(trained, toy):
    ev, _ = trained
    x, y, xt, yt = toy
    m = evaluate_images(ev, xt, x, fake_labels=yt)
    assert set(m) == {"fid", "kid_mean", "kid_std", "score", "precision", "recall",
                      "class_entropy", "conditional_accuracy"}
    assert m["conditional_accuracy"] == pytest.approx(ev.test_accuracy)
    assert 1.0 <= m["score"] <= 3.0 + 1e-9
    a = reference_anchors(ev, x, xt, n=96)
    assert set(a) == {"real", "noise"}
    assert a["real"]["fid"] < a["noise"]["fid"]
    assert a["real"]["recall"] > a["noise"]["recall"]
