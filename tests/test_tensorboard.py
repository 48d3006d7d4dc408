"""TensorBoard event files of runs and comparisons, read back with TensorBoard's own reader:
the same scalars as metrics.jsonl, the sample grids, one curve per seed in a comparison."""

import json

import numpy as np
import pytest

from jaxgan import cli
from jaxgan.configs import MixtureConfig
from jaxgan.runs import train

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")

TINY = MixtureConfig(objective="nsgan", hidden=16, z_dim=4, batch_size=32, steps=12,
                     log_every=4, num_samples=100, eval_every=1)


def read(folder):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"images": 0})
    acc.Reload()
    return acc


def test_a_run_writes_its_records_and_sample_grids(tmp_path):
    train(TINY, tmp_path, progress=False)
    acc = read(tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()
               if "d_loss" in line]
    d_loss = acc.Scalars("d_loss")
    assert [e.step for e in d_loss] == [r["step"] for r in records] == [4, 8, 12]
    np.testing.assert_allclose([e.value for e in d_loss], [r["d_loss"] for r in records],
                               rtol=1e-6)
    assert {"d_acc_real", "spread", "eval/modes_covered"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Images("samples")] == [12]


def test_two_writers_within_one_second_keep_both_files(tmp_path, monkeypatch):
    """A run resumed within the second its first part started (fast with a warm compilation
    cache) writes a file of its own: tensorboardX names files by the second and opens them
    with "wb", so without a suffix of jaxgan's the second writer truncated the first's."""
    import types

    import tensorboardX.event_file_writer as efw

    from jaxgan.tensorboard import Board

    monkeypatch.setattr(efw, "time", types.SimpleNamespace(time=lambda: 1.7e9))
    for step in (1, 2):
        board = Board(tmp_path, resumed_at=None if step == 1 else 1)
        board.record({"step": step, "d_loss": 0.5})
        board.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert [e.step for e in read(tmp_path).Scalars("d_loss")] == [1, 2]


def test_an_undefined_metric_is_left_out_quietly(tmp_path, caplog):
    from jaxgan.tensorboard import Board

    board = Board(tmp_path)
    board.record({"step": 1, "eval/reverse_kl": float("nan"), "d_loss": 0.5,
                  "g_loss": [1.0, float("inf")]})
    board.close()
    acc = read(tmp_path)
    assert set(acc.Tags()["scalars"]) == {"d_loss", "g_loss/seed_0"}
    assert "NaN or Inf" not in caplog.text


def test_no_tensorboard_writes_no_events(tmp_path):
    train(TINY, tmp_path, progress=False, tensorboard_events=False)
    assert not list(tmp_path.glob("events.out.tfevents.*"))


def test_a_comparison_writes_one_curve_per_seed_and_objective(tmp_path):
    out = tmp_path / "cmp"
    assert cli.main(["compare", "--objectives", "gan,lsgan", "--seeds", "2", "--steps", "4",
                     "--log-every", "2", "--set", "hidden=16", "--set", "z_dim=4",
                     "--set", "batch_size=32", "--out", str(out), "--no-progress"]) == 0
    for entry in ("gan", "lsgan"):
        tags = set(read(out / "tensorboard" / entry).Tags()["scalars"])
        assert {"d_loss/seed_0", "d_loss/seed_1", "eval/modes_covered/seed_1"} <= tags


def test_a_run_resumed_after_a_kill_shows_each_step_once(tmp_path):
    """Killed after writing the records of steps 5-8 but before their checkpoint: the resumed
    run writes them again, and TensorBoard hides the first copies."""
    import dataclasses
    import shutil

    cfg = dataclasses.replace(TINY, steps=8, eval_every=0)
    train(cfg, tmp_path, progress=False, checkpoint_every=4)
    shutil.rmtree(tmp_path / "checkpoints" / "8")  # as if killed before that save
    train(dataclasses.replace(cfg, steps=12), tmp_path, resume=True, progress=False,
          checkpoint_every=4)
    assert [e.step for e in read(tmp_path).Scalars("d_loss")] == [4, 8, 12]
