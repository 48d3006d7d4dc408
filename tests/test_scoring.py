"""`jaxgan eval`: runs and sample files scored, with anchors, through the CLI."""

import json
import re

import numpy as np
import pytest

from jaxgan import cli, scoring
from jaxgan.data import mixtures


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    argv = ["train", "--dataset", "ring8", "--steps", "5", "--hidden", "16", "--z-dim", "4",
            "--batch-size", "32", "--num-samples", "100", "--out", str(out), "--no-progress"]
    assert cli.main(argv) == 0
    return out


def test_eval_of_a_mixture_run_writes_mode_metrics(ring_run, capsys):
    assert cli.main(["eval", "--checkpoint", str(ring_run)]) == 0
    assert "modes_covered" in capsys.readouterr().out
    result = json.loads((ring_run / "eval.json").read_text())
    assert result["n"] == 2_500 and result["step"] == 5
    assert 0 <= result["samples"]["modes_covered"] <= 8


def test_eval_of_samples_on_the_centres_covers_every_mode(tmp_path, capsys):
    c = mixtures.centres("ring8")
    np.savez(tmp_path / "s.npz", x=np.repeat(c, 10, axis=0))
    assert cli.main(["eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "ring8",
                     "--out", str(tmp_path / "r.json")]) == 0
    got = json.loads((tmp_path / "r.json").read_text())["samples"]
    assert got["modes_covered"] == 8 and got["high_quality"] == 1.0
    assert got["reverse_kl"] == pytest.approx(0.0, abs=1e-9)


def test_samples_need_a_dataset_and_an_x_array(tmp_path, capsys):
    np.savez(tmp_path / "s.npz", images=np.zeros((3, 2)))
    with pytest.raises(SystemExit):
        cli.main(["eval", "--samples", str(tmp_path / "s.npz")])
    assert cli.main(["eval", "--samples", str(tmp_path / "s.npz"), "--dataset", "ring8"]) == 2
    assert "no array 'x'" in capsys.readouterr().err


@pytest.mark.parametrize("name, x, dataset, message", [
    ("empty.npz", np.zeros((0, 2)), "ring8", "x holds no samples"),
    ("nan.npz", np.array([[0.0, np.nan], [1.0, 0.0]]), "ring8", "1 NaN or infinite"),
    ("images.npz", np.zeros((4, 28, 28, 1)), "ring8", r"ring8 samples are \(N, 2\) points"),
    ("points.npz", np.zeros((4, 2)), "mnist", r"mnist samples are \(N, height, width"),
    ("words.npz", np.array(["a", "b"]), "ring8", "x must hold numbers"),
    ("bytes.npz", np.full((4, 28, 28, 1), 255, np.uint8), "mnist", "scaled to \\[-1, 1\\]"),
    ("x.npy", np.zeros((4, 2)), "ring8", "expected an .npz file"),
])
def test_bad_sample_files_are_refused_with_what_to_fix(tmp_path, capsys, name, x, dataset,
                                                       message):
    path = tmp_path / name
    np.save(path, x) if name.endswith(".npy") else np.savez(path, x=x)
    assert cli.main(["eval", "--samples", str(path), "--dataset", dataset]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_image_samples_are_scored_beside_the_anchors(mnist_dir, tmp_path, fast_evaluator):
    # A 1-epoch evaluator keeps this fast; the metrics' own tests and
    # benchmarks/eval_speed.py cover the real one.
    test_x, test_y = scoring.load_dataset("mnist", data_dir=str(mnist_dir), split="test").arrays()
    x, y = np.asarray(test_x[:600]), np.asarray(test_y[:600])
    # Saved with their true labels, as a perfect conditional generator's samples would be.
    np.savez(tmp_path / "s.npz", x=x, y=y)
    result = scoring.evaluate_samples(tmp_path / "s.npz", "mnist", data_dir=str(mnist_dir), progress=False)
    # Real test digits score like the real anchor and far better than noise.
    assert result["samples"]["fid"] < result["noise"]["fid"] / 10
    assert result["samples"]["score"] > 5 > result["noise"]["score"]
    assert result["samples"]["conditional_accuracy"] > 0.8
    pc = result["per_class"]
    assert sum(pc["n"]) == 600 and len(pc["fid"]) == 10
    assert min(pc["accuracy"]) > 0.5 and all(np.isfinite(pc["fid"]))
    # The labels shifted by one: every class is asked for and shown another digit.
    ev, train, test = scoring.evaluator_for("mnist", str(mnist_dir), progress=False)
    feats, probs = ev.features_and_probs(x)
    wrong = scoring.per_class_scores(ev, feats, probs, (y + 1) % 10, train, test)
    scoring.evaluator_for.cache_clear()
    assert max(wrong["accuracy"]) < 0.2
    assert np.mean(wrong["fid"]) > 2 * np.mean(pc["fid"])
    table = scoring.format_table(result)
    assert "anchor: real test" in table and "anchor: noise" in table
    assert "| class | n | accuracy |" in table
