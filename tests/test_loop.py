"""The one host loop: records (per seed for a stacked state), hooks and checkpoints at the
epoch boundaries, and the non-finite stop, for any state and step."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxgan import loop, xla_cpu
from jaxgan.checkpoint import Checkpointer, saved_steps


@struct.dataclass
class Toy:
    step: jnp.ndarray
    w: jnp.ndarray


def toy_step(state, batch):
    # One "seed" per entry of w; the metric is per seed, as a vmapped step's is.
    w = state.w + batch["x"]
    return state.replace(step=state.step + 1, w=w), {"loss": w, "d_loss": w.mean()}


def batches(value=1.0, seeds=2, nan_at=None):
    i = 0
    while True:
        x = jnp.full((seeds,), jnp.nan if i == nan_at else value)
        yield {"x": x}
        i += 1


def test_records_hooks_and_checkpoints_at_epoch_ends(tmp_path):
    hooks, records = [], []
    ckpt = Checkpointer(tmp_path / "ckpt")
    state = loop.run(
        Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), toy_step, batches(), total_steps=7,
        steps_per_epoch=3, out_dir=tmp_path, checkpointer=ckpt, log_every=2,
        on_epoch=lambda s, e: hooks.append((int(s.step), e)) or {"eval/x": e},
        on_record=records.append, meta=lambda step: {"at": step}, progress=False)
    assert int(state.step) == 7 and hooks == [(3, 1), (6, 2), (7, 3)]
    # Per-seed values stay lists: the mean of each window, seed by seed. Records fall on
    # multiples of log_every and on the epochs' ends.
    assert [r["step"] for r in records] == [2, 3, 4, 6, 7]
    assert records[0]["loss"] == [1.5, 1.5] and isinstance(records[0]["d_loss"], float)
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 7, "epoch": 3, "eval/x": 3} in lines
    restored, meta = ckpt.restore(state)
    assert ckpt.latest_step() == 7 and meta["at"] == 7 and meta["window"] == []
    np.testing.assert_array_equal(restored.w, state.w)
    ckpt.close()


def test_a_late_boundary_is_skipped_when_asked():
    hooks = []
    loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), toy_step, batches(), total_steps=7,
             steps_per_epoch=3, on_epoch=lambda s, e: hooks.append(int(s.step)),
             skip_late_boundary=True, progress=False)
    assert hooks == [3, 7]  # 6 is less than half an interval before the end


def test_a_non_finite_metric_of_any_seed_stops_the_loop():
    with pytest.raises(loop.NonFiniteError, match=r"non-finite D.s loss \(d_loss\), loss at step 5 \(seed 0\): training diverged; no checkpoint"):
        loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), toy_step, batches(nan_at=4),
                 total_steps=10, steps_per_epoch=10, log_every=2, progress=False)


def test_start_is_taken_from_the_caller_where_the_state_cannot_say():
    seen = []

    def step(states, batch):
        seen.append(batch["x"][0])
        return states, {"loss": jnp.zeros(())}

    loop.run([object()], step, batches(), start=5, total_steps=8, steps_per_epoch=4,
             progress=False)
    assert len(seen) == 3


def test_staged_batches_arrive_in_order_on_the_device_ahead_of_their_step():
    pulled = []

    def source():
        for i in range(5):
            pulled.append(i)
            yield {"x": np.full((2,), i, np.float32)}

    class NextOnly:  # compare's per-seed batches have __next__ and no __iter__
        def __init__(self):
            self.it = source()

        def __next__(self):
            return next(self.it)

    feed = loop.staged(NextOnly(), ahead=2)
    first = next(feed)
    assert pulled == [0, 1, 2]  # two batches wait on the device while step 0 runs
    got = [first, *feed]
    assert [int(b["x"][0]) for b in got] == [0, 1, 2, 3, 4]
    assert all(isinstance(b["x"], jax.Array) for b in got)


def test_a_first_ctrl_c_asks_to_stop_and_a_second_stops_at_once():
    before = {sig: signal.getsignal(sig) for sig in loop.StopRequest.SIGNALS}
    with loop.StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {sig: signal.getsignal(sig) for sig in loop.StopRequest.SIGNALS} == before


def test_sigterm_stops_the_loop_at_the_step_it_reached_with_a_checkpoint():
    saved = []

    class Recorder:
        def save(self, step, state, meta):
            saved.append((step, int(state.step)))

        def wait(self):
            pass

    def step(state, batch):
        if int(state.step) == 5:  # SIGTERM arrives during step 6
            os.kill(os.getpid(), signal.SIGTERM)
        return toy_step(state, batch)

    with pytest.raises(loop.Interrupted, match="stopped by SIGTERM after step 6; checkpoint "
                       "saved: continue with --resume") as stopped:
        loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), step, batches(),
                 total_steps=100, steps_per_epoch=50, checkpointer=Recorder(), progress=False)
    assert stopped.value.step == 6 and saved == [(6, 6)]


def guarded_toy(policy):
    from jaxgan import guard
    return jax.jit(guard.guarded(toy_step, policy))


def test_no_checkpoint_holds_a_diverged_state(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt")
    with pytest.raises(loop.NonFiniteError, match=r"at step 5 \(seed 0\).*the last "
                       r"checkpoint \(step 4\) is left as it was"):
        # The NaN enters at step 5, between checkpoints (every 2 steps) and records (10).
        loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), guarded_toy("raise"),
                 batches(nan_at=4), total_steps=10, steps_per_epoch=10, log_every=10,
                 checkpointer=ckpt, checkpoint_every=2, progress=False)
    assert ckpt.latest_step() == 4
    restored, _ = ckpt.restore(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)))
    np.testing.assert_array_equal(restored.w, [4.0, 4.0])
    ckpt.close()


def test_a_state_gone_non_finite_behind_finite_metrics_is_not_saved(tmp_path):
    # The step's metrics stay finite while w becomes infinite at step 3: the check of the
    # state before the save at step 4 refuses it.
    def step(state, batch):
        w = jnp.where(state.step == 2, jnp.inf, state.w + 1.0)
        return state.replace(step=state.step + 1, w=w), {"loss": jnp.zeros(2)}

    ckpt = Checkpointer(tmp_path / "ckpt")
    with pytest.raises(loop.NonFiniteError, match=r"non-finite w at step 4, with finite "
                       r"losses and gradients: training diverged; the last checkpoint \(step "
                       r"2\) is left as it was"):
        loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), jax.jit(step), batches(),
                 total_steps=10, steps_per_epoch=10, checkpointer=ckpt, checkpoint_every=2,
                 progress=False)
    assert ckpt.latest_step() == 2
    ckpt.close()


def test_skip_undoes_a_bad_step_counts_it_and_stops_after_max_skips_in_a_row(tmp_path):
    def with_nans(bad):
        for i in range(100):
            yield {"x": jnp.full((2,), jnp.nan if i in bad else 1.0)}

    records = []
    state = loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), guarded_toy("skip"),
                     with_nans({2, 5, 6}), total_steps=8, steps_per_epoch=8, log_every=4,
                     on_record=records.append, max_skips=3, progress=False)
    # Steps 3, 6 and 7 were undone: w grew by 5 of the 8 steps.
    np.testing.assert_array_equal(state.w, [5.0, 5.0])
    assert [r["skipped"] for r in records] == [1, 2]
    assert records[1]["d_loss"] == 4.5  # the mean over the steps kept, 5 and 8 (w 4 and 5)
    with pytest.raises(loop.NonFiniteError, match="3 steps in a row undone by --on-nonfinite "
                       r"skip .to step 6; non-finite: D.s loss .d_loss., loss\)"):
        loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), guarded_toy("skip"),
                 with_nans({3, 4, 5}), total_steps=8, steps_per_epoch=8, log_every=4,
                 max_skips=3, progress=False)


def test_a_resumed_loop_writes_the_records_of_an_uninterrupted_one(tmp_path):
    def records(path):
        return [{k: v for k, v in json.loads(line).items() if k != "time"}
                for line in path.read_text().splitlines()]

    straight = tmp_path / "straight"
    loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), guarded_toy("raise"), batches(),
             total_steps=9, steps_per_epoch=9, log_every=4, out_dir=straight, progress=False)

    class Crash(Exception):
        pass

    def crashing():
        for i, b in enumerate(batches()):
            if i == 9:  # read (two steps ahead) as step 8 is dispatched
                raise Crash
            yield b

    cut = tmp_path / "cut"
    ckpt = Checkpointer(cut / "ckpt")
    with pytest.raises(Crash):  # after the checkpoint at 6, between the records at 4 and 8
        loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), guarded_toy("raise"),
                 crashing(), total_steps=9, steps_per_epoch=9, log_every=4, out_dir=cut,
                 checkpointer=ckpt, checkpoint_every=3, progress=False)
    ckpt.wait()
    state, meta = ckpt.restore(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)))
    assert int(state.step) == 6 and len(meta["window"]) == 2  # steps 5 and 6
    state = loop.run(state, guarded_toy("raise"), batches(), total_steps=9, steps_per_epoch=9,
                     log_every=4, out_dir=cut, pending=meta["window"], progress=False)
    ckpt.close()
    assert records(cut / "metrics.jsonl") == records(straight / "metrics.jsonl")


def test_several_steps_to_a_call_run_what_one_at_a_time_runs(tmp_path):
    """With ``multi_step`` (4 steps a call) the loop writes the records, calls the hooks and
    saves the checkpoints of a one-step run, on hook and checkpoint intervals (7, 5) and a
    record interval (3) that its calls straddle."""
    def counting():
        i = 0
        while True:
            yield {"x": np.full((2,), float(i), np.float32)}
            i += 1

    def once(out, **multi):
        hooks, ckpt = [], Checkpointer(out / "ckpt", max_to_keep=10)
        state = loop.run(
            Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), jax.jit(toy_step), counting(),
            total_steps=23, steps_per_epoch=7, checkpoint_every=5, log_every=3, out_dir=out,
            checkpointer=ckpt, on_epoch=lambda s, e: hooks.append((int(s.step), e)),
            progress=False, **multi)
        ckpt.wait()
        ckpt.close()
        saved = saved_steps(out / "ckpt")
        lines = [{k: v for k, v in json.loads(l).items() if k != "time"}
                 for l in (out / "metrics.jsonl").read_text().splitlines()]
        return state, hooks, saved, lines

    calls = []
    four = jax.jit(lambda state, batches: jax.lax.scan(toy_step, state, batches))

    def multi(state, batches):
        calls.append(int(state.step))
        return four(state, batches)

    one = once(tmp_path / "one")
    many = once(tmp_path / "many", multi_step=multi, steps_per_call=4)
    np.testing.assert_array_equal(one[0].w, many[0].w)
    assert int(many[0].step) == 23
    assert one[1:] == many[1:] and one[2] == [5, 7, 10, 14, 15, 20, 21, 23]
    # Calls of 4 from steps 0, 10 and 15 only: from any other step a hook (7, 14, 21), a
    # checkpoint (5, 10, 15, 20) or the end falls within the next 3 steps.
    assert calls == [0, 10, 15]


def test_host_batches_are_stacked_on_64_byte_boundaries():
    # Views 4 bytes into their buffers: never on a 64-byte boundary.
    batches = [{"x": np.arange(13, dtype=np.float32)[1:].reshape(3, 4) + i,
                "y": np.arange(5, dtype=np.int32)[1:] * i} for i in range(3)]
    out = loop._stack(batches)
    for k in ("x", "y"):
        assert xla_cpu.is_host_aligned(out[k]) and out[k].dtype == batches[0][k].dtype
        np.testing.assert_array_equal(out[k], np.stack([b[k] for b in batches]))
