"""The command line as a user meets it: flags from the configs, errors that say what to do."""

import argparse
import json
import time

import numpy as np
import pytest
from PIL import Image

from jaxgan import cli, configs, loop
from jaxgan.configs import TrainConfig

TINY = ["--hidden", "16", "--z-dim", "4", "--batch-size", "32", "--log-every", "5",
        "--num-samples", "50", "--no-progress"]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", "--dataset", "ring8", "--steps", "10", "--out", str(out), *TINY]) == 0
    return out


def test_every_config_field_is_a_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    # Every field, the nested Improved Techniques' too, unprefixed.
    for name in configs.field_types(TrainConfig):
        assert "--" + name.replace("_", "-") + " " in text or (
            "--" + name.replace("_", "-") + "," in text), name
    assert "--techniques." not in text
    # Booleans are conventional flags; the objective names are listed.
    assert "--feature-matching, --no-feature-matching" in text
    flat = " ".join(text.replace("│", " ").split())  # the help wraps lines
    assert ("Objectives: gan, hinge, lsgan, lsgan-01, lsgan-pearson, nsgan, ragan, rahinge, "
            "ralsgan, wgan-gp") in flat


def test_flag_defaults_follow_the_dataset(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--dataset", "mnist", "--help"])
    assert "LSGANMnistConfig" in capsys.readouterr().out


def test_unknown_objective_lists_the_valid_ones(capsys):
    assert cli.main(["train", "--objective", "wgan-typo", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in ("gan,", "nsgan", "lsgan-01", "lsgan-pearson", "wgan-gp"))


def test_unknown_dataset_lists_the_valid_ones(capsys, tmp_path):
    assert cli.main(["train", "--dataset", "cifar99", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "mnist" in err and "ring8" in err and "folder:" in err


def test_an_image_folder_with_no_images_says_so(capsys, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    code = cli.main(["train", "--dataset", str(tmp_path / "photos"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no images" in capsys.readouterr().err.lower()


def test_mnist_offline_without_data_dir_fails_fast_and_says_how(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("JAXGAN_DATA_DIR", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    from jaxgan.data import tfds_source

    monkeypatch.setattr(tfds_source, "internet_available", lambda *a, **k: False)
    start = time.perf_counter()
    assert cli.main(["train", "--dataset", "mnist", "--out", str(tmp_path / "r")]) == 2
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert "--data-dir" in err and "JAXGAN_DATA_DIR" in err


def test_sample_writes_a_png_and_raw_npz(ring_run, tmp_path, capsys):
    png, npz = tmp_path / "s.png", tmp_path / "s.npz"
    assert cli.main(["sample", "--checkpoint", str(ring_run), "-n", "30", "--out", str(png)]) == 0
    assert "(the run at step 10)" in capsys.readouterr().out  # which checkpoint drew them
    assert Image.open(png).size[0] > 100
    assert cli.main(["sample", "--checkpoint", str(ring_run), "-n", "30", "--out", str(npz)]) == 0
    x = np.load(npz)["x"]
    assert x.shape == (30, 2) and np.isfinite(x).all()


def test_interpolation_needs_images(ring_run, tmp_path, capsys):
    out = tmp_path / "i.png"
    assert cli.main(["sample", "--checkpoint", str(ring_run), "--interpolate", "3", "--out", str(out)]) == 2
    assert "2-D points" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--interpolate", "0"], ["--interpolate", "2", "--points", "1"]])
def test_an_empty_interpolation_is_refused_not_ignored(ring_run, tmp_path, capsys, flags):
    out = tmp_path / "i.png"
    assert cli.main(["sample", "--checkpoint", str(ring_run), *flags, "--out", str(out)]) == 2
    assert "--interpolate needs at least 1 strip of at least 2 --points" in (
        capsys.readouterr().err)
    assert not out.exists()


def test_train_and_compare_refuse_each_others_folders(ring_run, tmp_path, capsys):
    assert cli.main(["compare", "--steps", "2", "--seeds", "1", "--out", str(ring_run),
                     "--resume", "--no-progress"]) == 2
    assert "holds a training run (jaxgan train), not a comparison" in capsys.readouterr().err
    (tmp_path / "table.md").write_text("| objective |")
    assert cli.main(["train", "--dataset", "ring8", "--steps", "2", "--out", str(tmp_path),
                     *TINY]) == 2
    assert "holds a comparison (jaxgan compare), not a run" in capsys.readouterr().err


def test_an_explicit_epochs_wins_over_a_mixtures_default_steps(monkeypatch):
    trained = []
    monkeypatch.setattr(cli.runs, "train", lambda cfg, out, **kw: trained.append(cfg))
    cli.main(["train", "--dataset", "ring8", "--epochs", "2", "--no-progress"])
    cli.main(["train", "--dataset", "ring8", "--epochs", "2", "--steps", "7", "--no-progress"])
    cli.main(["train", "--dataset", "ring8", "--no-progress"])
    assert [(c.epochs, c.steps) for c in trained] == [(2, None), (2, 7), (10, 35_000)]


def test_resume_continues_with_the_saved_settings(ring_run):
    assert cli.main(["train", "--resume", "--out", str(ring_run), "--steps", "15", "--no-progress"]) == 0
    lines = (ring_run / "metrics.jsonl").read_text().splitlines()
    assert '"step": 15' in lines[-1]


def test_conditional_true_is_still_accepted_as_the_bare_flag(tmp_path):
    cfg, _ = cli.train_defaults(["--dataset", "mnist", "--conditional", "true"])
    assert type(cfg).__name__ == "CGANMnistConfig"
    cfg, _ = cli.train_defaults(["--dataset", "mnist", "--conditional"])
    assert type(cfg).__name__ == "CGANMnistConfig"


@pytest.mark.parametrize("config, flags", [
    ("glo_mnist", ["--width", "4", "--z-dim", "8", "--batch-size", "16"]),
    ("ssl_mnist", ["--labels", "20", "--d-hidden", "32,16", "--g-hidden", "16", "--z-dim", "8",
                   "--batch-size", "20", "--init-examples", "40"]),
])
def test_train_sample_and_eval_glo_and_ssl_from_the_cli(config, flags, mnist_dir, tmp_path,
                                                         fast_evaluator, capsys):
    out = tmp_path / config
    assert cli.main(["train", "--config", config, "--data-dir", str(mnist_dir), "--steps", "2",
                     "--log-every", "1", "--num-samples", "16", "--out", str(out),
                     "--no-progress", *flags]) == 0
    assert (out / "samples.png").stat().st_size > 0
    assert configs.load_config(out / "config.json").method == config.split("_")[0]
    png, npz, walk = tmp_path / "s.png", tmp_path / "s.npz", tmp_path / "w.png"
    assert cli.main(["sample", "--checkpoint", str(out), "-n", "30", "--out", str(png)]) == 0
    assert np.asarray(Image.open(png)).std() > 0
    assert cli.main(["sample", "--checkpoint", str(out), "-n", "30", "--out", str(npz)]) == 0
    x = np.load(npz)["x"]
    assert x.shape == (30, 28, 28, 1) and np.abs(x).max() <= 1 and x.std() > 0
    assert cli.main(["sample", "--checkpoint", str(out), "--interpolate", "2", "--points", "4",
                     "--out", str(walk)]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--checkpoint", str(out), "-n", "300"]) == 0
    printed = capsys.readouterr().out
    assert "anchor: real test" in printed and "fid" in printed
    result = json.loads((out / "eval.json").read_text())
    assert result["step"] == 2 and np.isfinite(result["samples"]["fid"])
    if config == "ssl_mnist":  # the K+1 GAN's own measure: D's test error
        assert 0 <= result["test_error"] <= 1 and "test error of D" in printed


@pytest.mark.parametrize("error, code, message", [
    (ValueError("bad batch"), 2, "jaxgan train: error: bad batch"),
    (FileExistsError("holds a run"), 2, "jaxgan train: error: holds a run"),
    (OSError(28, "No space left on device", "runs/x/metrics.jsonl"), 1,
     "jaxgan train: error: No space left on device (runs/x/metrics.jsonl)"),
    (PermissionError(13, "Permission denied", "runs/x"), 1,
     "jaxgan train: error: Permission denied (runs/x)"),
    (KeyboardInterrupt(), 130, "jaxgan train: interrupted (nothing saved since the last "
     "checkpoint)"),
])
def test_each_failure_is_a_message_and_an_exit_code(monkeypatch, capsys, error, code, message):
    def fail(argv):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "train", fail)
    assert cli.main(["train"]) == code
    assert capsys.readouterr().err.strip() == message


def test_a_diverged_run_exits_3_and_a_bug_shows_its_traceback(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "train", lambda argv: loop.summarise(
        [{"d_loss": float("nan")}], 7, 0.0))
    assert cli.main(["train"]) == 3
    assert "non-finite D's loss (d_loss) at step 7" in capsys.readouterr().err

    def bug(argv):
        raise TypeError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "train", bug)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["train"])


def test_version(capsys):
    from importlib.metadata import version

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"jaxgan {version('jaxgan')}"


@pytest.mark.parametrize("command", ["sample", "eval", "bench"])
def test_every_flag_of_the_argparse_commands_shows_its_default(command, monkeypatch):
    """tyro prints every default of train and compare; the argparse commands say theirs in
    their help text, which this checks against the parser's own defaults."""
    class Captured(Exception):
        pass

    def capture(parser, argv=None, namespace=None):
        raise Captured(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Captured) as captured:
        cli.main([command])
    (parser,) = captured.value.args
    for action in parser._actions:
        # Identity, not ==: a default of 0 is a default to show, unlike store_true's False.
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or action.required:
            continue
        shown = str(action.default) if command != "bench" or action.dest != "which" else "all"
        assert f"(default: {shown})" in (action.help or ""), (command, action.dest)
