"""`jaxgan compare`: entries parse, vmapped seeds equal separate runs, the report is written."""

import csv
import dataclasses
import json

import chex
import jax
import numpy as np
import pytest

from jaxgan import cli, comparison
from jaxgan.checkpoint import Checkpointer
from jaxgan.configs import MixtureConfig
from jaxgan.data import load_dataset
from jaxgan.objectives import get_objective
from jaxgan.state import init_state
from jaxgan.step import make_train_step

TINY = MixtureConfig(hidden=16, z_dim=4, batch_size=32)


def test_entries_parse_into_configs():
    cfg = comparison.parse_entry("lsgan-pearson+cond+dropout=0.5", TINY)
    assert (cfg.objective, cfg.conditional, cfg.dropout) == ("lsgan-pearson", True, 0.5)
    assert comparison.parse_entry("gan", TINY) == dataclasses.replace(TINY, objective="gan")
    with pytest.raises(ValueError, match="unknown switch 'bogus'"):
        comparison.parse_entry("gan+bogus", TINY)
    with pytest.raises(ValueError, match="needs a value"):
        comparison.parse_entry("gan+hidden", TINY)
    with pytest.raises(ValueError, match="valid objectives"):
        comparison.parse_entry("gam", TINY)


def test_mean_and_standard_error():
    assert comparison.mean_se([1.0, 3.0]) == (2.0, 1.0)
    assert comparison.mean_se([5.0]) == (5.0, 0.0)


@pytest.mark.parametrize("vmapped", [True, False])
def test_seeds_trained_together_equal_separate_runs(vmapped, monkeypatch):
    """Vmapped (MLPs) or one after the other (convnets on CPU): the same runs either way."""
    monkeypatch.setattr(comparison, "seeds_vmapped", lambda cfg: vmapped)
    data = load_dataset("ring8")
    steps = 4
    stacked, _, _, _, _ = comparison.train_seeds(
        TINY, data, 2, steps, log_every=2, eval_every=0, evaluate=lambda *a: [{}, {}]
    )
    for s in range(2):
        cfg = dataclasses.replace(TINY, seed=s)
        nets, state = init_state(cfg, (2,), 8)
        step = make_train_step(get_objective(cfg.objective), nets, n_critic=get_objective(cfg.objective).n_critic)
        batches = data.batches(cfg.batch_size, seed=s)
        for _ in range(steps):
            state, _ = step(state, next(batches))
        chex.assert_trees_all_close(jax.tree.map(lambda x: x[s], stacked), state, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("vmapped", [True, False])
def test_a_checkpointed_run_continues_as_the_uninterrupted_one(vmapped, tmp_path, monkeypatch):
    monkeypatch.setattr(comparison, "seeds_vmapped", lambda cfg: vmapped)
    data = load_dataset("ring8")
    calls = []

    def evaluate(nets, state, cfg):  # the per-seed step count, and which states were scored
        calls.append(state)
        return [{"m": float(s)} for s in np.asarray(state.step)]

    kw = dict(log_every=2, eval_every=3, evaluate=evaluate)
    whole, _, losses, evals, _ = comparison.train_seeds(TINY, data, 2, 6, **kw)
    ckpt = Checkpointer(tmp_path / "ckpt")
    comparison.train_seeds(TINY, data, 2, 3, checkpoint=ckpt, **kw)  # stops at step 3
    calls.clear()
    resumed, _, losses2, evals2, seconds = comparison.train_seeds(
        TINY, data, 2, 6, checkpoint=Checkpointer(tmp_path / "ckpt"), **kw)
    chex.assert_trees_all_close(resumed, whole, rtol=1e-6, atol=1e-7)
    assert losses2 == losses and evals2 == evals and [e["step"] for e in evals] == [3, 6]
    assert len(calls) == 1 and seconds > 0  # only step 6 was evaluated again
    # A finished run read back trains and evaluates nothing, and reports the seconds it took.
    again = comparison.train_seeds(TINY, data, 2, 6, checkpoint=Checkpointer(tmp_path / "ckpt"), **kw)
    assert len(calls) == 1 and again[2:] == (losses2, evals2, seconds)
    with pytest.raises(ValueError, match="past --steps 5"):
        comparison.train_seeds(TINY, data, 2, 5, checkpoint=Checkpointer(tmp_path / "ckpt"), **kw)
    with pytest.raises(ValueError, match=r"another config .*saved, now: \{.g_lr.: \(0.001, 0.01\)\}"):
        comparison.train_seeds(dataclasses.replace(TINY, g_lr=1e-2), data, 2, 9,
                            checkpoint=Checkpointer(tmp_path / "ckpt"), **kw)


def test_compare_writes_table_figures_and_raw_metrics(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["--objectives", "gan,lsgan+cond", "--seeds", "2", "--steps", "6", "--log-every", "3",
            "--eval-every", "3",
            "--set", "hidden=16", "--set", "z_dim=4", "--set", "batch_size=32",
            "--out", str(out), "--no-progress"]
    assert cli.main(["compare", *argv]) == 0
    assert "| lsgan+cond |" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "table.csv")))
    assert [r["objective"] for r in rows] == ["gan", "lsgan+cond"]
    assert all(0 <= float(r["modes_covered"]) <= 8 for r in rows)
    for name in ("table.md", "samples.png", "loss_curves.png", "per_seed.json",
                 "metrics_by_step.png"):
        assert (out / name).stat().st_size > 0
    # With intermediate evaluations the table says how much the metrics still moved.
    assert "from step 3 to step 6" in (out / "table.md").read_text()
    assert "--objectives gan,lsgan+cond" in (out / "command.txt").read_text()
    # Run again into the same folder: it asks for --resume, which extends the run.
    assert cli.main(["compare", *argv]) == 2
    assert "pass --resume" in capsys.readouterr().err
    longer = [a if a != "6" else "9" for a in argv]
    assert cli.main(["compare", *longer, "--resume"]) == 0
    assert "from step 6 to step 9" in (out / "table.md").read_text()
    runs = json.loads((out / "per_seed.json").read_text())
    assert [e["step"] for e in runs["gan"]["evals"]] == [3, 6, 9]
    # Another seed count is another run, said as such (and a train run's folder is not one).
    more_seeds = [a if a != "2" else "3" for a in longer]
    assert cli.main(["compare", *more_seeds, "--resume"]) == 2
    assert "another config or seed count" in capsys.readouterr().err


def test_drift_is_the_paired_change_of_the_seed_mean_over_the_last_third():
    run = {"evals": [{"step": 1, "metrics": [{"m": 1.0}, {"m": 3.0}]},
                     {"step": 2, "metrics": [{"m": 4.0}, {"m": 8.0}]}]}
    # Seed changes 3 and 5: mean 4, standard error std([3, 5]) / sqrt(2) = 1.
    assert comparison.drift({"runs": {"gan": run}}) == {"gan": {"m": (4.0, 1.0)}}
    assert comparison.drift({"runs": {"gan": {"evals": run["evals"][:1]}}}) == {}
    # The level differs a lot between seeds but each seed moved by the same amount: the
    # paired error is zero, where the error of the final mean would hide the change.
    shifted = {"evals": [{"step": 1, "metrics": [{"m": 0.0}, {"m": 100.0}]},
                         {"step": 2, "metrics": [{"m": 1.0}, {"m": 101.0}]}]}
    assert comparison.drift({"runs": {"gan": shifted}}) == {"gan": {"m": (1.0, 0.0)}}
    # The earlier evaluation is the latest one at most two thirds of the way through.
    evals = [{"step": s, "metrics": [{"m": float(s)}, {"m": float(s)}]} for s in range(1, 11)]
    assert comparison.drift_pair(evals) == (5, 9)
    assert comparison.drift({"runs": {"gan": {"evals": evals}}}) == {"gan": {"m": (4.0, 0.0)}}
    late = {"evals": [{"step": 354, "metrics": [{"m": 1.0}]},
                      {"step": 708, "metrics": [{"m": 9.0}]},
                      {"step": 709, "metrics": [{"m": 4.0}]}]}
    assert comparison.drift_pair(late["evals"]) == (0, 2)


def test_compare_rejects_bad_entries_before_training(tmp_path, capsys):
    assert cli.main(["compare", "--objectives", "gan,nope", "--out", str(tmp_path)]) == 2
    assert "valid objectives" in capsys.readouterr().err
    # GLO and the K+1 GAN are jaxgan methods but not G/D objectives: the error says where they are.
    assert cli.main(["compare", "--objectives", "nsgan,glo", "--out", str(tmp_path)]) == 2
    assert "experiments/glo_mnist.py" in capsys.readouterr().err
    assert cli.main(["compare", "--objectives", "ssl", "--out", str(tmp_path)]) == 2
    assert "experiments/improved_gan_ssl_mnist.py" in capsys.readouterr().err


def test_paper_selects_pacgans_networks_and_budget_which_flags_still_override(
        monkeypatch, tmp_path):
    calls = []

    def fake_run(cc, out, **kw):
        calls.append((cc, comparison.base_config(cc.dataset, cc.data_dir, paper=kw["paper"])))
        (tmp_path / "table.md").write_text("")
        return {"out": str(out)}  # compare reports the folder it wrote

    monkeypatch.setattr(comparison, "compare", fake_run)
    out = ["--out", str(tmp_path)]
    assert cli.main(["compare", "--paper", "--dataset", "grid25", *out]) == 0
    assert cli.main(["compare", "--paper", "--steps", "2000", *out]) == 0
    assert cli.main(["compare", *out]) == 0
    (paper, pacgan), (short, _), (default, lsgan) = calls
    assert (paper.dataset, paper.steps, paper.seeds, paper.eval_every) == (
        "grid25", 400_000, 10, 40_000)
    assert pacgan.arch == "pacgan_mlp" and pacgan.dataset == "grid25"
    assert (pacgan.z_dim, pacgan.batch_size, pacgan.beta1, pacgan.d_lr) == (2, 100, 0.8, 1e-4)
    assert (short.steps, short.seeds) == (2000, 10)
    assert default == comparison.CompareConfig() and lsgan.arch == "mlp"
    # PacGAN's networks (batch norm in G) train with their seeds vmapped, and stay finite.
    stacked, nets, losses, _, _ = comparison.train_seeds(
        dataclasses.replace(pacgan, batch_size=16), load_dataset("grid25"), 2, 3, log_every=1,
        eval_every=0, evaluate=lambda *a: [{}, {}])
    assert comparison.seeds_vmapped(pacgan) and nets.z_dim == 2 and len(losses) == 3
    chex.assert_tree_all_finite((stacked, losses))


def test_paper_on_images_trains_the_datasets_paper_setup_for_its_own_epochs(
        monkeypatch, tmp_path, mnist_dir):
    calls = []

    def fake_run(cc, out, **kw):
        calls.append((cc, comparison.base_config(cc.dataset, cc.data_dir, paper=kw["paper"])))
        (tmp_path / "table.md").write_text("")
        return {"out": str(out)}  # compare reports the folder it wrote

    monkeypatch.setattr(comparison, "compare", fake_run)
    data_dir = str(mnist_dir)
    out = ["--out", str(tmp_path)]
    assert cli.main(["compare", "--paper", "--dataset", "mnist", "--data-dir", data_dir, *out]) == 0
    assert cli.main(["compare", "--dataset", "mnist", "--data-dir", data_dir, *out]) == 0
    (paper, lsgan), (default, _) = calls
    # LSGAN's MNIST setup: 30 epochs of batch 64 over the 22,699 shared training images.
    assert lsgan.arch == "lsgan_mnist" and (lsgan.epochs, lsgan.batch_size) == (30, 64)
    assert (paper.steps, paper.seeds, paper.eval_every) == (30 * (22_699 // 64), 3, 1062)
    assert (default.steps, default.seeds) == (comparison.CompareConfig.steps,
                                             comparison.CompareConfig.seeds)
