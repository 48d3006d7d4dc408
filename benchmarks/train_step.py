"""Throughput of jaxgan's train steps, to set beside ../shared/bench's PyTorch references.

    python benchmarks/train_step.py [--which lsgan,ring8] [--steps 50] [--torch PYTHON]

Each case trains the same networks as the reference on random data (one D update and one G
update a step) and prints steps/s. With ``--torch /path/to/venv/bin/python`` (a venv with
``torch==2.13.0``), it alternates jaxgan and PyTorch runs, three of each, and prints the
median ratio: quote ratios from one run, never one absolute time (the machine is shared).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxgan.configs import LSGANMnistConfig, MixtureConfig
from jaxgan.state import init_state
from jaxgan.step import make_step

BENCH = Path(__file__).resolve().parents[1].parent / "shared" / "bench"

# name -> (config, example shape, the PyTorch reference command)
CASES = {
    "lsgan": (LSGANMnistConfig(objective="lsgan-01"), (28, 28, 1), ["torch_lsgan.py"]),
    # torch_ring.py: 3 ReLU hidden layers of 128, z 256, batch 512, Adam 1e-4.
    "ring8": (
        MixtureConfig(objective="lsgan-01", depth=3, activation="relu", d_lr=1e-4, g_lr=1e-4),
        (2,),
        ["torch_ring.py"],
    ),
}


def jax_steps_per_s(name: str, steps: int) -> float:
    cfg, shape, _ = CASES[name]
    nets, state = init_state(cfg, shape)
    step = make_step(cfg, nets)[0]
    x = jax.random.uniform(jax.random.PRNGKey(0), (cfg.batch_size, *shape), minval=-1, maxval=1)
    batch = {"x": x, "y": jnp.zeros(cfg.batch_size, jnp.int32)}
    for _ in range(5):  # compile and warm up
        state, m = step(state, batch)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, batch)
    jax.block_until_ready((state, m))
    return steps / (time.perf_counter() - t)


def torch_steps_per_s(python: str, name: str, steps: int) -> float:
    script = CASES[name][2]
    out = subprocess.run(
        [python, str(BENCH / script[0]), *script[1:], "--steps", str(steps)],
        check=True, capture_output=True, text=True,
    ).stdout
    return float(out.strip().split("=")[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--which", default=",".join(CASES))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--torch", help="python of a venv with torch==2.13.0, for the ratio")
    a = p.parse_args()
    for name in a.which.split(","):
        n = a.steps * (10 if name == "ring8" else 1)
        ours, theirs = [], []
        for _ in range(a.repeats):
            ours.append(jax_steps_per_s(name, n))
            if a.torch:
                theirs.append(torch_steps_per_s(a.torch, name, n))
        line = f"{name}: jaxgan {statistics.median(ours):.1f} steps/s"
        if theirs:
            ratio = statistics.median(o / t for o, t in zip(ours, theirs))
            line += f", torch {statistics.median(theirs):.1f} steps/s, ratio {ratio:.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
