"""A whole run through the run layer: what it writes, resuming exactly, refusing to mix runs
up, and sampling / evaluating a run of any method."""

import dataclasses
import json
import signal
import subprocess
import sys
import time

import chex
import numpy as np
import pytest

from jaxgan import xla_cpu
from jaxgan.checkpoint import Checkpointer, saved_steps
from jaxgan.configs import MixtureConfig, load_config
from jaxgan.runs import load_run, train

TINY = MixtureConfig(
    objective="nsgan", hidden=16, z_dim=4, batch_size=32, steps=12, log_every=4, num_samples=100
)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(xla_cpu, "MIN_RUN_STEPS", 0)  # 10 steps a call on CPU, short as it is
        state = train(TINY, out, progress=False).state
    return out, state


def test_a_run_writes_its_figures_metrics_config_and_checkpoint(full_run):
    out, state = full_run
    assert int(state.step) == 12
    for name in ("config.json", "data.json", "metrics.jsonl", "samples.png", "loss_curve.png"):
        assert (out / name).stat().st_size > 0, name
    assert load_config(out / "config.json") == TINY
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if "d_loss" in r]
    assert [r["step"] for r in train_records] == [4, 8, 12]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in train_records)
    # A mixture run scores its samples with PacGAN's mode metrics at each epoch's end.
    (evaluation,) = [r for r in records if "eval/modes_covered" in r]
    assert evaluation["step"] == 12 and 0 <= evaluation["eval/modes_covered"] <= 8
    assert Checkpointer(out / "checkpoints").latest_step() == 12


def test_resume_equals_an_uninterrupted_run(full_run, tmp_path):
    out, uninterrupted = full_run
    half = dataclasses.replace(TINY, steps=6)
    train(half, tmp_path, progress=False)
    resumed = train(TINY, tmp_path, resume=True, progress=False).state
    chex.assert_trees_all_equal(resumed, uninterrupted)
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # The shorter run's end wrote a record at 6; after it, records fall on multiples of 4.
    assert [r["step"] for r in records if "d_loss" in r] == [4, 6, 8, 12]


def test_one_step_a_call_trains_what_several_a_call_train(full_run, tmp_path, monkeypatch):
    """On CPU the mixture MLPs of a long run go 10 steps to a compiled call
    (`xla_cpu.steps_per_call`; `full_run` lowers the length that takes): one step a call gives
    the same state and records."""
    if xla_cpu.steps_per_call(full_run[1].g_params) == 1:
        pytest.skip("this backend runs one step a call")
    monkeypatch.setattr(xla_cpu, "STEPS_PER_CALL", 1)
    single = train(TINY, tmp_path, progress=False).state
    chex.assert_trees_all_equal(single, full_run[1])

    def records(out):
        return [{k: v for k, v in json.loads(l).items() if k != "time"}
                for l in (out / "metrics.jsonl").read_text().splitlines()]

    assert records(tmp_path) == records(full_run[0])


def test_load_run_restores_the_latest_state(full_run):
    out, state = full_run
    run = load_run(out)
    assert run.cfg == TINY and run.nets.out_shape == (2,)
    chex.assert_trees_all_equal(run.state, state)


def test_refuses_to_overwrite_or_resume_with_another_config(full_run, tmp_path):
    out, _ = full_run
    with pytest.raises(FileExistsError, match="--resume"):
        train(TINY, out, progress=False)
    with pytest.raises(ValueError, match=r"in \{'hidden': \(16, 32\)\} \(saved, now\)"):
        train(dataclasses.replace(TINY, hidden=32, d_lr=0.5), out, resume=True, progress=False)
    with pytest.raises(ValueError, match="already at step 12; pass --steps 12 or more"):
        train(dataclasses.replace(TINY, steps=8), out, resume=True, progress=False)
    assert load_config(out / "config.json") == TINY  # nothing was rewritten


def test_learning_rates_may_change_on_resume_and_the_change_is_recorded(tmp_path):
    train(dataclasses.replace(TINY, steps=8), tmp_path, progress=False)
    lower = dataclasses.replace(TINY, d_lr=TINY.d_lr / 10)
    assert int(train(lower, tmp_path, resume=True, progress=False).state.step) == 12
    assert load_config(tmp_path / "config.json") == lower
    (line,) = (tmp_path / "resumes.jsonl").read_text().splitlines()
    assert json.loads(line) == {"step": 8, "changed": {"d_lr": [TINY.d_lr, TINY.d_lr / 10],
                                                       "steps": [8, 12]}}


def test_a_huge_learning_rate_stops_the_run_or_is_skipped(tmp_path):
    """A learning rate of 1e38 makes D's logits infinite at step 2. "raise" stops there, naming
    the losses, with nothing saved; "skip" undoes the step each time and stops after
    --max-skips in a row; a learning rate of 1e30 diverges without a NaN, which the health
    monitor names and --halt-on-collapse stops."""
    from jaxgan import health, loop

    huge = dataclasses.replace(TINY, d_lr=1e38, g_lr=1e38, steps=40)
    with pytest.raises(loop.NonFiniteError, match=r"non-finite D's loss \(d_loss\), G's "
                       r"loss \(g_loss\) at step 2: training diverged; no checkpoint"):
        train(huge, tmp_path / "raise", progress=False)
    assert not saved_steps(tmp_path / "raise" / "checkpoints")
    with pytest.raises(loop.NonFiniteError, match="5 steps in a row undone"):
        train(huge, tmp_path / "skip", progress=False, on_nonfinite="skip", max_skips=5)
    (record,) = [json.loads(line) for line in (tmp_path / "skip" / "metrics.jsonl").open()]
    assert record["step"] == 4 and record["skipped"] == 3 and np.isfinite(record["d_loss"])
    with pytest.raises(health.Collapsed, match=r"at step 12: .* likely too high"):
        train(dataclasses.replace(huge, d_lr=1e30, g_lr=1e30), tmp_path / "halt",
              progress=False, halt_on_collapse=True)


def test_a_start_that_saved_nothing_does_not_block_its_folder(tmp_path):
    """A run that fails before its first checkpoint (here a typo in --z-dist, found when the
    step is traced, after the folder was made) leaves no run: --resume says so, and the
    corrected command starts afresh, without the failed start's records."""
    with pytest.raises(ValueError, match="gauss"):
        train(dataclasses.replace(TINY, z_dist="gauss"), tmp_path, progress=False)
    assert (tmp_path / "checkpoints").exists()
    (tmp_path / "metrics.jsonl").write_text('{"step": 4, "d_loss": 1.0}\n')  # as if it had run
    with pytest.raises(FileNotFoundError, match="no checkpoint yet .* without --resume"):
        train(TINY, tmp_path, resume=True, progress=False)
    assert int(train(TINY, tmp_path, progress=False).state.step) == 12
    records = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "d_loss" in r] == [4, 8, 12]


def test_sigterm_saves_the_step_it_reached_and_the_resumed_run_is_the_uninterrupted_one(
        tmp_path):
    """How a cluster preempts: SIGTERM mid-run. The run finishes its step, writes its metrics
    and a checkpoint, and exits with 128 + 15; resumed, it ends on the bits of a run that was
    never stopped."""
    flags = ["--dataset", "ring8", "--objective", "nsgan", "--hidden", "16", "--z-dim", "4",
             "--batch-size", "32", "--log-every", "10", "--num-samples", "100"]
    steps = 2000
    out = tmp_path / "preempted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgan.cli", "train", *flags, "--steps", str(steps),
         "--out", str(out), "--no-progress"], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.stat().st_size) and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never logged"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=300)[0]
    assert proc.returncode == 128 + signal.SIGTERM, log
    (stopped,) = saved_steps(out / "checkpoints")
    assert 0 < stopped < steps, stopped
    assert f"stopped by SIGTERM after step {stopped}; checkpoint saved" in log
    cfg = dataclasses.replace(TINY, steps=steps, log_every=10)
    resumed = train(cfg, out, resume=True, progress=False).state
    straight = train(cfg, tmp_path / "straight", progress=False).state
    chex.assert_trees_all_equal(resumed, straight)
    # The steps since the last record went into the checkpoint: the records are the same.
    assert records(metrics) == records(tmp_path / "straight" / "metrics.jsonl")


def records(path):
    # Without the wall-clock fields.
    return [{k: v for k, v in json.loads(line).items() if k not in ("time", "elapsed")}
            for line in path.read_text().splitlines()]


KILL_CASES = {
    # name: (flags, steps, checkpoint every); each small enough to run in seconds.
    "gan": (["--dataset", "ring8", "--objective", "nsgan", "--hidden", "16", "--z-dim", "4",
             "--batch-size", "32", "--num-samples", "100"], 1500, 100),
    "ssl": (["--config", "ssl_mnist", "--labels", "20", "--d-hidden", "32,16", "--g-hidden",
             "16", "--z-dim", "8", "--batch-size", "20", "--init-examples", "40",
             "--num-samples", "16"], 300, 25),
    # 900 steps: at 300 a fast machine finished the run within the kill's 1.5 s window.
    "glo": (["--config", "glo_mnist", "--width", "4", "--z-dim", "8", "--batch-size", "16",
             "--num-samples", "16"], 900, 75),
}


@pytest.mark.parametrize("name", list(KILL_CASES))
def test_sigkill_at_a_random_moment_resumes_to_the_uninterrupted_run(name, mnist_dir,
                                                                     tmp_path):
    """kill -9 at a random moment after the first checkpoint (during a step, a record or a
    save): the run resumes from its newest complete checkpoint and ends on the bits, and
    the records, of a run that was never killed."""
    import random

    from jaxgan import cli

    flags, steps, every = KILL_CASES[name]
    flags = [*flags, "--data-dir", str(mnist_dir), "--steps", str(steps), "--log-every", "10",
             "--checkpoint-every", str(every), "--no-progress"]
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(0.0, 1.5)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "jaxgan.cli", "train", *flags, "--out",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    deadline = time.monotonic() + 300
    while not saved_steps(out / "checkpoints") and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint was ever saved"
        time.sleep(0.01)
    time.sleep(delay)
    proc.kill()
    log = proc.communicate(timeout=60)[0]
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill: {log}"
    killed_at = saved_steps(out / "checkpoints")
    assert killed_at and killed_at[-1] < steps, (killed_at, seed)

    assert cli.main(["train", *flags, "--out", str(out), "--resume"]) == 0
    assert cli.main(["train", *flags, "--out", str(tmp_path / "straight")]) == 0
    resumed, straight = load_run(out), load_run(tmp_path / "straight")
    assert int(resumed.state.step) == steps
    chex.assert_trees_all_equal(resumed.state, straight.state)
    assert records(out / "metrics.jsonl") == records(tmp_path / "straight" / "metrics.jsonl"), \
        f"kill after {delay:.2f} s (seed {seed}), checkpoints {killed_at}"
