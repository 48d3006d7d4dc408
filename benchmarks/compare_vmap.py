"""S seeds in one vmapped program vs S separate runs, on the compare defaults (ring8).

    python benchmarks/compare_vmap.py [--seeds 1,3,10] [--steps 1000] [--batch 512]
    python benchmarks/compare_vmap.py --config pacgan_mixture --seeds 10 --steps 2000

Prints seed-steps per second both ways and their ratio, alternating the two so that machine
load hits both alike, and how long the config's own budget (3 objectives x its steps) takes
at the vmapped rate: ``--config pacgan_mixture`` is what ``jaxgan compare --paper`` trains. Each "separate" run is a jitted step called S times per step (the cost
of S sequential runs without their compile time); the vmapped one is one call per step.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax

from jaxgan.comparison import _SeedBatches, stack
from jaxgan.configs import CONFIGS, MIXTURES
from jaxgan.data import load_dataset
from jaxgan.state import init_state
from jaxgan.step import make_step


def time_vmapped(cfg, data, seeds: int, steps: int) -> float:
    built = [init_state(dataclasses.replace(cfg, seed=s), (2,), 8) for s in range(seeds)]
    nets, state = built[0][0], stack([s for _, s in built])
    step = jax.jit(jax.vmap(make_step(cfg, nets, jit=False)[0]),
                   donate_argnums=0)
    batches = _SeedBatches(data, cfg.batch_size, seeds)
    for _ in range(10):
        state, m = step(state, next(batches))
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        state, m = step(state, next(batches))
    jax.block_until_ready(m)
    return seeds * steps / (time.perf_counter() - t)


def time_separate(cfg, data, seeds: int, steps: int) -> float:
    built = [init_state(dataclasses.replace(cfg, seed=s), (2,), 8) for s in range(seeds)]
    step = make_step(cfg, built[0][0])[0]
    states = [s for _, s in built]
    batches = [_SeedBatches(data, cfg.batch_size, 1) for _ in range(seeds)]

    def one_round():
        out = None
        for i in range(seeds):
            b = next(batches[i])
            states[i], out = step(states[i], {k: v[0] for k, v in b.items()})
        return out

    for _ in range(10):
        m = one_round()
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        m = one_round()
    jax.block_until_ready(m)
    return seeds * steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,3,10")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, help="default: the config's")
    p.add_argument("--config", default="mixture", choices=[k for k, c in CONFIGS.items()
                                                           if c().dataset in MIXTURES])
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    cfg = CONFIGS[a.config]()
    cfg = dataclasses.replace(cfg, batch_size=a.batch or cfg.batch_size)
    data = load_dataset("ring8")
    print(f"ring8, --config {a.config} (arch {cfg.arch}), batch {cfg.batch_size}, "
          f"{jax.device_count()} device(s)")
    for seeds in map(int, a.seeds.split(",")):
        v, s = [], []
        for _ in range(a.repeats):
            v.append(time_vmapped(cfg, data, seeds, a.steps // seeds or 1))
            s.append(time_separate(cfg, data, seeds, a.steps // seeds or 1))
        ratio = statistics.median(x / y for x, y in zip(v, s))
        print(f"S={seeds:>3}: vmapped {statistics.median(v):7.0f} seed-steps/s, "
              f"separate {statistics.median(s):7.0f} seed-steps/s, ratio {ratio:.2f}x", flush=True)
        hours = 3 * seeds * cfg.steps / statistics.median(v) / 3600
        print(f"       3 objectives x {seeds} seeds x {cfg.steps:,} steps vmapped: {hours:.1f} h",
              flush=True)


if __name__ == "__main__":
    main()
