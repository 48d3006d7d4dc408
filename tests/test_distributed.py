"""Two processes on this machine join one run through `jax.distributed` (CPU collectives over
gloo), as two hosts would: the README's command, the state one process reaches, and their
checkpoint continued by one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from jaxgan import configs, mesh, runs

STEPS, LOG_EVERY = 12, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_train_ring8_to_the_state_of_one(tmp_path):
    out = tmp_path / "two"
    command = [sys.executable, "-m", "jaxgan.cli", "train", "--dataset", "ring8",
               "--steps", str(STEPS), "--log-every", str(LOG_EVERY), "--out", str(out),
               "--no-progress"]
    port = _free_port()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ,
                                              mesh.COORDINATOR_ENV: f"localhost:{port}",
                                              mesh.NUM_PROCESSES_ENV: "2",
                                              mesh.PROCESS_ID_ENV: str(i)})
             for i in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)[-4000:]
    # Process 0 writes the run folder, once; process 1 says nothing on its own.
    assert "jaxgan: wrote" in logs[0] and "jaxgan: wrote" not in logs[1]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "d_loss" in r] == list(range(LOG_EVERY, STEPS + 1,
                                                                       LOG_EVERY))

    # Each process read half of every batch of 512; together, one process's batch.
    one = runs.train(configs.MixtureConfig(steps=STEPS, log_every=LOG_EVERY),
                     tmp_path / "one", progress=False)
    two = runs.load_run(out)
    assert int(two.state.step) == STEPS
    assert_close(one.state, two.state, lr=max(one.cfg.g_lr, one.cfg.d_lr))
    one_records = [json.loads(line)
                   for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for r1, r2 in zip(one_records, records):
        for k in ("d_loss", "g_loss"):
            if k in r1:
                np.testing.assert_allclose(r2[k], r1[k], rtol=1e-4)

    # The two processes' checkpoint, continued by one process, follows the one-process run.
    longer = configs.MixtureConfig(steps=STEPS + 6, log_every=LOG_EVERY)
    one = runs.train(longer, tmp_path / "one", resume=True, progress=False)
    two = runs.train(longer, out, resume=True, progress=False)
    assert int(two.state.step) == STEPS + 6
    assert_close(one.state, two.state, lr=max(one.cfg.g_lr, one.cfg.d_lr))


def assert_close(a_state, b_state, *, lr: float) -> None:
    """Every leaf equal to float32 rounding of a mean split over two processes, or within
    the 2 lr by which Adam may step a noise-level gradient component the other way."""
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(a_state),
                            jax.tree.leaves(b_state)):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        close = np.isclose(a, b, rtol=1e-4, atol=1e-6) | (np.abs(a - b) <= 2.001 * lr)
        assert close.all(), (jax.tree_util.keystr(path), np.max(np.abs(a - b)))
