"""`benchmarks/quality.py` and the PyTorch script's torch-free parts: the PyTorch reference gets
the config's hyperparameters, reads the same images with the same scaling, and writes samples
that jaxgan's evaluator scores exactly as it scores jaxgan's own; the jaxgan side trains for a
wall-clock budget and reports its steps, startup and FID (no timing is asserted)."""

import gzip
import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from jaxgan import configs, scoring
from jaxgan.configs import LSGANMnistConfig, Techniques
from jaxgan.data import load_dataset

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
QUALITY = runpy.run_path(str(BENCHMARKS / "quality.py"))
TORCH_SIDE = runpy.run_path(str(BENCHMARKS / "torch_lsgan_train.py"))  # imports torch lazily


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory) -> Path:
    """Random 28x28 'digits' in MNIST's IDX files: 200 training and 100 test images."""
    root = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 100)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def flags(cfg) -> dict:
    out = QUALITY["torch_flags"](cfg)
    return dict(zip(out[::2], out[1::2]))


def test_the_pytorch_reference_gets_the_configs_hyperparameters():
    f = flags(LSGANMnistConfig())
    assert {k: float(f[k]) for k in ("--batch", "--z-dim", "--g-lr", "--d-lr", "--beta1",
                                     "--beta2", "--a", "--b", "--c")} == {
        "--batch": 64, "--z-dim": 62, "--g-lr": 2e-4, "--d-lr": 2e-4, "--beta1": 0.5,
        "--beta2": 0.999, "--a": 0, "--b": 1, "--c": 1}
    pearson = flags(configs.replace(LSGANMnistConfig(), objective="lsgan-pearson", g_lr=1e-3))
    assert (pearson["--a"], pearson["--b"], pearson["--c"], pearson["--g-lr"]) == (
        "-1.0", "1.0", "0.0", "0.001")
    # One-sided label smoothing moves the real target b, which the script takes as a flag.
    smoothed = LSGANMnistConfig(techniques=Techniques(label_smoothing=0.9))
    assert float(flags(smoothed)["--b"]) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="LSGAN objectives, not nsgan"):
        QUALITY["torch_flags"](LSGANMnistConfig(objective="nsgan"))
    with pytest.raises(ValueError, match="differs in techniques"):
        QUALITY["torch_flags"](LSGANMnistConfig(techniques=Techniques(feature_matching=True)))


def test_the_pytorch_reference_reads_the_images_jaxgan_trains_on(tiny_mnist):
    ours, _ = load_dataset("mnist", data_dir=str(tiny_mnist)).arrays()
    theirs = TORCH_SIDE["scale"](
        TORCH_SIDE["read_idx_images"](tiny_mnist / "train-images-idx3-ubyte.gz"))
    assert theirs.dtype == np.float32
    np.testing.assert_array_equal(theirs, ours[..., 0])  # bit for bit, range [-1, 1]


def test_jaxgan_in_a_budget_and_both_sample_files_scored_alike(tiny_mnist, tmp_path,
                                                               fast_evaluator, capsys, optimized):
    # `optimized`: it trains LSGAN for its budget and draws its 13 M initial weights (17 -> 11 s).
    result = QUALITY["main"](["--seconds", "1", "--samples", "64", "--data-dir",
                              str(tiny_mnist), "--out", str(tmp_path), "--json"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    (row,) = result["results"]
    assert row["framework"] == "jaxgan" and row["steps"] >= 1 and row["train_s"] >= 1
    assert row["startup_s"] >= row["compile_s"] > 0 and row["n"] == 64
    assert np.isfinite(row["fid"]) and np.isfinite(result["real_test_fid"])
    assert result["config"]["arch"] == "lsgan_mnist" and "200 of 60,000" in result["data"]

    with np.load(row["samples"]) as f:
        x = f["x"]
    assert x.shape == (64, 28, 28, 1) and x.dtype == np.float32 and np.abs(x).max() <= 1
    # The same images through the PyTorch script's writer (it holds them NCHW) score the same.
    theirs = TORCH_SIDE["save_samples"](tmp_path / "torch.npz", x.transpose(0, 3, 1, 2))
    scored = scoring.evaluate_samples(theirs, "mnist", data_dir=str(tiny_mnist), seed=0,
                                       progress=False)
    assert scored["samples"]["fid"] == row["fid"]
    assert scored["real"]["fid"] == result["real_test_fid"]

    table = QUALITY["table"]([row, {**row, "framework": "torch", "torch": "2.13.0",
                                     "threads": 2, "import_s": 1.0}], 2.5, 64)
    assert table.count("\n") == 4 and "| 2.50 |" in table and "PyTorch 2.13.0" in table
