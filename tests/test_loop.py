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

from jaxgan import loop
from jaxgan.checkpoint import Checkpointer


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
    # Per-seed values stay lists: the mean of each window, seed by seed.
    assert [r["step"] for r in records] == [2, 3, 5, 6, 7]
    assert records[0]["loss"] == [1.5, 1.5] and isinstance(records[0]["d_loss"], float)
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 7, "epoch": 3, "eval/x": 3} in lines
    restored, meta = ckpt.restore(state)
    assert ckpt.latest_step() == 7 and meta == {"at": 7}
    np.testing.assert_array_equal(restored.w, state.w)
    ckpt.close()


def test_a_late_boundary_is_skipped_when_asked():
    hooks = []
    loop.run(Toy(jnp.zeros((), jnp.int32), jnp.zeros(2)), toy_step, batches(), total_steps=7,
             steps_per_epoch=3, on_epoch=lambda s, e: hooks.append(int(s.step)),
             skip_late_boundary=True, progress=False)
    assert hooks == [3, 7]  # 6 is less than half an interval before the end


def test_a_non_finite_metric_of_any_seed_stops_the_loop():
    with pytest.raises(loop.NonFiniteError, match="non-finite d_loss, loss by step 6"):
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
