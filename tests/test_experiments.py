"""A one-step run of each experiment script, as a user would call it."""

import json
import runpy
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan import cli, runs
from jaxgan.configs import LSGANMnistConfig
from jaxgan.data import load_dataset
from jaxgan.functional import apply
from jaxgan.methods import glo
from jaxgan.state import init_state
from jaxgan.step import make_step

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def run_script(name, args, monkeypatch, code=0):
    monkeypatch.setattr(sys, "argv", [name, *args])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(EXPERIMENTS / name), run_name="__main__")
    assert exit_.value.code == code


@pytest.mark.parametrize(
    "script, extra",
    [
        ("lsgan_mnist.py", []),
        ("cgan_mnist.py", ["--num-samples", "20"]),
        ("dcgan_images.py", ["--dataset", "mnist", "--batch-size", "16", "--width", "8"]),
    ],
)
def test_one_step_of_each_experiment(script, extra, mnist_dir, tmp_path, monkeypatch, request):
    if script == "lsgan_mnist.py":
        # Most of its time went into drawing LSGAN's 13 M initial weights, twice, by programs
        # compiled without optimisation (6.8 and 5.0 s against 2.2 and 0.4 s): 27 -> 16 s.
        # The other scripts' steps take longer to compile optimised than they save.
        request.getfixturevalue("optimized")
    out = tmp_path / "run"
    run_script(
        script,
        ["--data-dir", str(mnist_dir), "--steps", "1", "--num-samples", "16", "--out", str(out),
         "--no-progress", "--log-every", "1", *extra],
        monkeypatch,
    )
    grid = np.asarray(Image.open(out / "samples.png"))
    assert grid.ndim == 2 and grid.std() > 0  # a grayscale grid of digits-to-be
    strips = tmp_path / "strips.png"
    assert cli.main(["sample", "--checkpoint", str(out), "--interpolate", "2", "--points", "5",
                     "--out", str(strips)]) == 0
    assert Image.open(strips).size[1] < Image.open(strips).size[0]


def test_dcgan_on_an_image_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate([(40, 30), (64, 64), (50, 80), (33, 33)]):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    out = tmp_path / "run"
    run_script(
        "dcgan_images.py",
        ["--dataset", str(photos), "--resolution", "32", "--batch-size", "2", "--width", "8",
         "--steps", "2", "--num-samples", "4", "--out", str(out), "--no-progress"],
        monkeypatch,
    )
    assert np.asarray(Image.open(out / "samples.png")).shape[-1] == 3


def test_lsgan_generator_learns_the_digits_mean_image(mnist_dir, optimized):
    # Regression: with BatchNorm on D's FC layer and separate real / fake batches, D was blind
    # to the fake batch's mean image and G stayed grey noise. The mean of G's pixels must move
    # from ~0 (tanh of small inputs) towards MNIST's mostly black mean (about -0.74); with the
    # FC BatchNorm it stayed near -0.08 for 160 steps, without it it passed -0.2 within 40.
    data = load_dataset("mnist", data_dir=str(mnist_dir))
    nets, state = init_state(LSGANMnistConfig(), data.example_shape)
    step, _ = make_step(LSGANMnistConfig(), nets)
    batches = data.batches(64, seed=0)
    z = np.random.default_rng(0).normal(size=(64, nets.z_dim)).astype(np.float32)
    before = float(apply(nets.g_graph, state.g_params, state.g_stats, z)[0].mean())
    for _ in range(50):
        state, _ = step(state, next(batches))
    after = float(apply(nets.g_graph, state.g_params, state.g_stats, z)[0].mean())
    assert abs(before) < 0.15 and after < -0.15, (before, after)  # with FC BatchNorm: ~-0.08


def _evals(per_step):
    return [{"step": step, "metrics": [dict(m) for m in seeds]} for step, seeds in per_step]


def test_compare_objectives_says_whether_the_metrics_stopped_moving():
    script = runpy.run_path(str(EXPERIMENTS / "compare_objectives.py"))
    keys = script["MODE_KEYS"]

    def drift_lines(results):
        return script["drift_lines"](results, keys)

    # gan's seeds change by +0.02 and +0.04 of the high-quality fraction: 3 standard errors;
    # nsgan's by +0.01 and -0.01: within two.
    two_objectives = {"runs": {
        "gan": {"evals": _evals([
            (3, [{"high_quality": 0.50}, {"high_quality": 0.60}]),
            (6, [{"high_quality": 0.52}, {"high_quality": 0.64}])])},
        "nsgan": {"evals": _evals([
            (3, [{"high_quality": 0.50}, {"high_quality": 0.60}]),
            (6, [{"high_quality": 0.51}, {"high_quality": 0.59}])])}}}
    line = drift_lines(two_objectives)[1]
    assert line.startswith("From step 3 to 6, the last 50% of training, the largest change of a "
                           "seed mean, in standard errors of the per-seed changes: gan's high "
                           "quality +3.0 points (3.0), nsgan's high quality +0.0 points (0.0).")
    assert "Within about two, a metric has stopped moving: still moving for gan." in line
    still = {"runs": {"nsgan": two_objectives["runs"]["nsgan"]}}
    assert "stopped moving: every metric had stopped moving." in drift_lines(still)[1]
    # Every seed gained the same mode: no spread to divide by, and said so.
    same = {"runs": {"gan": {"evals": _evals([
        (3, [{"modes_covered": 7.0, "reverse_kl": 0.3}, {"modes_covered": 6.0, "reverse_kl": 0.2}]),
        (6, [{"modes_covered": 8.0, "reverse_kl": 0.3}, {"modes_covered": 7.0, "reverse_kl": 0.2}])])},
        "lsgan": {"evals": _evals([
            (3, [{"reverse_kl": 0.50}, {"reverse_kl": 0.60}]),
            (6, [{"reverse_kl": 0.30}, {"reverse_kl": 0.35}])])}}}
    line = drift_lines(same)[1]
    assert ("gan's modes covered +1 (every seed changed by as much), lsgan's reverse KL -0.225 "
            "(9.0)") in line
    assert "still moving for gan and lsgan." in line
    # A metric the table does not show (here KID's own standard deviation) is not judged.
    kid = {"runs": {"gan": {"evals": _evals([
        (3, [{"fid": 100.0, "kid_std": 0.1}, {"fid": 110.0, "kid_std": 0.2}]),
        (6, [{"fid": 101.0, "kid_std": 0.5}, {"fid": 109.0, "kid_std": 0.7}])])}}}
    line = script["drift_lines"](kid, script["MNIST_KEYS"])[1]
    assert "gan's FID +0 (0.0)." in line and "kid" not in line
    assert "every metric had stopped moving" in line


def test_compare_objectives_regenerates_the_readme_block(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- compare_objectives:ring8:begin -->\nOLD BLOCK\n"
        "<!-- compare_objectives:ring8:end -->\nbetween\n"
        "<!-- compare_objectives:mnist:begin -->\nMNIST BLOCK\n<!-- compare_objectives:mnist:end -->\n"
    )
    out = tmp_path / "cmp"
    tiny = ["--steps", "4", "--seeds", "2", "--set", "hidden=8", "--set", "z_dim=4",
            "--set", "batch_size=16", "--out", str(out), "--readme", str(readme),
            "--docs", str(tmp_path / "docs"), "--no-progress"]
    run_script("compare_objectives.py", ["--only", "ring8", *tiny], monkeypatch)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- compare_objectives:ring8:begin -->\n")
    assert text.endswith("<!-- compare_objectives:ring8:end -->\nbetween\n<!-- compare_objectives:"
                         "mnist:begin -->\nMNIST BLOCK\n<!-- compare_objectives:mnist:end -->\n")
    assert "OLD BLOCK" not in text and "GAN (PacGAN Table 1) | 6.3 +- 0.5 |" in text
    assert "| nsgan |" in text
    assert "From step 2 to 4, the last 50% of training, the largest change of a seed mean, in" in text
    # The block says how to regenerate itself, with the reader's data folder, not argv.
    assert ("`python experiments/compare_objectives.py --only ring8 --steps 4 --seeds 2 --set hidden=8"
            " --set z_dim=4 --set batch_size=16 --readme README.md --docs docs`") in text
    assert (tmp_path / "docs" / "compare_ring8.png").stat().st_size > 0
    # The course of the metrics is shown beside the sentence that judges it.
    assert (tmp_path / "docs" / "compare_ring8_by_step.png").stat().st_size > 0
    assert "](docs/compare_ring8_by_step.png)" in text
    # A second call with --reuse reads the part instead of training it: same README block.
    stamp = (out / "ring8" / "per_seed.json").stat().st_mtime_ns
    (out / "ring8" / "metrics_by_step.png").unlink()  # redrawn from the saved metrics
    run_script("compare_objectives.py", ["--only", "ring8", *tiny, "--reuse"], monkeypatch)
    assert (out / "ring8" / "per_seed.json").stat().st_mtime_ns == stamp  # not trained again
    assert readme.read_text() == text
    assert (out / "ring8" / "metrics_by_step.png").stat().st_size > 0
    # A part without its markers is refused before any training.
    run_script("compare_objectives.py", ["--only", "grid25", *tiny], monkeypatch, code=2)
    assert not (out / "grid25").exists()
    # Parts run one at a time all end up in results.md, in the README's order.
    no_readme = [a for a in tiny if a not in ("--readme", str(readme))]
    run_script("compare_objectives.py", ["--only", "grid25", *no_readme], monkeypatch)
    results = (out / "results.md").read_text()
    assert results.startswith("**ring8**") and "\n**grid25**" in results


def test_one_step_of_the_glo_script_then_load_and_sample(mnist_dir, tmp_path, monkeypatch):
    out = tmp_path / "run"
    run_script("glo_mnist.py", [
        "--data-dir", str(mnist_dir), "--steps", "1", "--width", "4", "--batch-size", "16",
        "--out", str(out), "--no-progress", "--test-images", "8", "--fit-steps", "3",
        "--fid-samples", "0", "--num-samples", "16", "--mixture-components", "2"], monkeypatch)
    for name in ("config.json", "data.json", "metrics.jsonl", "pca.npz", "samples.png",
                 "reconstructions.png", "test_reconstructions.png", "interpolations.png",
                 "loss_curve.png", "results.json"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "config.json").read_text())["config"] == "GLOMnistConfig"
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 1 and np.isfinite(results["test_mse_glo"])
    assert np.asarray(Image.open(out / "samples.png")).std() > 0

    run = runs.load_run(out / "checkpoints")
    assert run.state.latents.shape == (22_699, 32) and int(run.state.step) == 1
    x = glo.sample(run, jax.random.PRNGKey(0), 5)
    assert x.shape == (5, 28, 28, 1) and np.all(np.abs(x) <= 1)


def test_one_step_of_the_ssl_script(mnist_dir, tmp_path, monkeypatch):
    out = tmp_path / "ssl"
    run_script("improved_gan_ssl_mnist.py", [
        "--data-dir", str(mnist_dir), "--labels", "20", "--seeds", "1",
        "--steps", "1", "--d-hidden", "32,16", "--g-hidden", "16", "--z-dim", "8",
        "--batch-size", "20", "--init-examples", "40", "--num-samples", "16", "--log-every", "1",
        "--out", str(out), "--no-progress"], monkeypatch)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [1] and 0.0 <= summary["test_error_mean"] <= 1.0
    assert (out / "test_error.png").exists() and (out / "seed1" / "samples.png").exists()
    labelled = json.loads((out / "seed1" / "data.json").read_text())["labelled_indices"]
    assert len(labelled) == 20


def test_ssl_summary_is_mean_and_std_over_seeds():
    module = runpy.run_path(str(EXPERIMENTS / "improved_gan_ssl_mnist.py"))
    curves = {s: [{"epoch": 1, "test_error": 0.5, "test_error_raw": 0.6},
                  {"epoch": 2, "test_error": e, "test_error_raw": e}] for s, e in
              ((0, 0.01), (1, 0.02), (2, 0.03))}
    summary = module["summarise"](curves, 100)
    assert summary["test_error_mean"] == pytest.approx(0.02)
    assert summary["test_error_std"] == pytest.approx(0.01)  # sample std, as the paper's +-
    assert summary["paper_errors_out_of_10000"] == (93, 6.5)


def test_the_techniques_script_is_a_comparison_of_switches(tmp_path, monkeypatch):
    out = tmp_path / "tech"
    run_script("improved_gan_techniques.py", [
        "--steps", "4", "--seeds", "2", "--hidden", "8", "--z-dim", "4", "--batch-size", "16",
        "--variants", "baseline,fm,ha,ls", "--out", str(out), "--no-progress"], monkeypatch)
    table = (out / "table.md").read_text()
    for entry in ("| nsgan |", "| nsgan+fm |", "| nsgan+historical_avg=0.001 |", "| nsgan+ls |"):
        assert entry in table
    runs_ = json.loads((out / "per_seed.json").read_text())
    assert len(runs_["nsgan+fm"]["evals"][-1]["metrics"]) == 2  # one per seed


def test_a_few_steps_of_the_diffaugment_script(mnist_dir, tmp_path, monkeypatch,
                                               fast_evaluator):
    out = tmp_path / "diffaug"
    run_script("diffaugment_few_images.py", [
        "--data-dir", str(mnist_dir), "--out", str(out), "--images", "24", "--steps", "2",
        "--samples", "100", "--width", "4", "--batch-size", "8", "--docs", str(tmp_path / "docs"),
        "--no-progress"], monkeypatch)
    assert len(list((out / "mnist24_64px").glob("*.png"))) == 24
    with Image.open(out / "mnist24_64px" / "0000.png") as img:
        assert img.size == (64, 64)
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"plain", "diffaug"}
    assert all(np.isfinite(r["fid"]) and r["steps"] == 2 for r in results.values())
    assert json.loads((out / "diffaug" / "config.json").read_text())["stabilisers"][
        "diffaug"] == "color,translation,cutout"
    assert json.loads((out / "plain" / "config.json").read_text())["stabilisers"]["diffaug"] == ""
    assert (tmp_path / "docs" / "diffaug_mnist24.png").stat().st_size > 0
