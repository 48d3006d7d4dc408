"""The timed configurations of ``jaxgan bench`` and how one is measured (see `jaxgan.bench`)."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import resource
import statistics
import sys
import time
from typing import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import configs, xla_cpu
from jaxgan.bench.reference import torch_run, torch_version
from jaxgan.methods import glo, ssl
from jaxgan.state import init_state
from jaxgan.step import make_step


@dataclasses.dataclass(frozen=True)
class Case:
    """One configuration to time: its name, what it is, and ``build() -> (step, state,
    batch, like)``: the train step (not jitted), its state and a batch, and one seed's state
    for the compiler's choices (`jaxgan.xla_cpu`); ``torch``: its PyTorch reference for
    ``--vs-torch``, a script in ``benchmarks/`` and its flags (the same networks, step and
    batch), if it has one; ``multi``: whether training runs it several steps to a call where
    `jaxgan.xla_cpu.steps_per_call` says so (`jaxgan train` does; `compare`'s stack of seeds
    runs one)."""

    name: str
    what: str
    build: Callable[[], tuple[Callable, object, dict, object]]
    torch: tuple[str, ...] = ()
    multi: bool = True


def _images(key, n, shape):
    return jax.random.uniform(jax.random.PRNGKey(key), (n, *shape), minval=-1.0, maxval=1.0)


def _gan(cfg, shape, num_classes=None, seeds: int = 0):
    def build():
        built = [init_state(configs.replace(cfg, seed=s), shape, num_classes)
                 for s in range(max(seeds, 1))]
        nets = built[0][0]
        step, n_critic = make_step(cfg, nets, jit=False)
        n = cfg.batch_size * n_critic
        labels = jnp.arange(n, dtype=jnp.int32) % (num_classes or 1)
        batch = {"x": _images(0, n, shape), "y": labels}
        if not seeds:
            return step, built[0][1], batch, built[0][1]
        # compare's seeds: one vmapped program over a stacked state and stacked batches.
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[s for _, s in built])
        batch = jax.tree.map(lambda a: jnp.broadcast_to(a, (seeds, *a.shape)), batch)
        # As `compare` compiles it: options from one seed's state.
        return jax.vmap(step), stacked, batch, built[0][1]

    return build


def _glo(cfg: configs.GLOConfig, num_examples: int = 22_699):
    def build():
        nets, state = glo.init_state(cfg, (28, 28, 1), num_examples)
        idx = jnp.arange(cfg.batch_size, dtype=jnp.int32)
        return glo.make_train_step(cfg, nets, jit=False), state, {
            "x": _images(0, cfg.batch_size, (28, 28, 1)), "index": idx}, state

    return build


def _ssl(cfg: configs.SSLConfig):
    def build():
        nets, state = ssl.init_state(cfg, np.asarray(_images(1, cfg.init_examples, (28, 28, 1))))
        b = cfg.batch_size
        batch = {"x_lab": _images(2, b, (28, 28, 1)), "y_lab": jnp.arange(b, dtype=jnp.int32) % 10,
                 "x_unl": _images(3, b, (28, 28, 1)), "x_unl2": _images(4, b, (28, 28, 1))}
        return ssl.make_train_step(cfg, nets, jit=False), state, batch, state

    return build


# torch_ring.py's networks: 3 ReLU hidden layers of 128, z 256, batch 512, Adam 1e-4.
RING = configs.MixtureConfig(objective="lsgan", depth=3, activation="relu", d_lr=1e-4, g_lr=1e-4)

def dcgan_case(resolution: int, batch: int, name: str | None = None) -> Case:
    """The DCGAN step at ``resolution`` px (RGB) and ``batch``, beside its PyTorch reference."""
    cfg = configs.DCGANConfig(resolution=resolution, batch_size=batch)
    return Case(name or f"dcgan{resolution}_b{batch}", f"DCGAN at {resolution} px, RGB, batch "
                f"{batch}", _gan(cfg, (resolution, resolution, 3)),
                ("torch_dcgan.py", "--resolution", str(resolution), "--batch", str(batch)))


def seeds_case(seeds: int) -> Case:
    """``compare``'s step: the LSGAN mixture networks on ring8, ``seeds`` seeds vmapped."""
    return Case(f"ring8_x{seeds}", f"ring8 (LSGAN's mixture networks), {seeds} seeds "
                "vmapped, batch 512", _gan(configs.MixtureConfig(), (2,), seeds=seeds),
                multi=False)


# lsgan_mnist's D has no batch norm on its FC layer (`jaxgan.nets.lsgan`): its reference
# drops that one too.
CASES = {c.name: c for c in (
    Case("lsgan_mnist", "LSGAN's MNIST networks, batch 64", _gan(
        configs.LSGANMnistConfig(), (28, 28, 1)), ("torch_lsgan.py", "--no-d-fc-batchnorm")),
    Case("cgan_mlp", "the user's cGAN MLPs on MNIST, batch 64", _gan(
        configs.CGANMnistConfig(), (28, 28, 1), num_classes=10),
        ("torch_lsgan.py", "--arch", "mlp")),
    Case("ring8", "ring8 MLPs 3x128 (torch_ring.py's), batch 512", _gan(RING, (2,)),
         ("torch_ring.py",)),
    dcgan_case(64, 128, "dcgan64"),
    Case("glo_mnist", "GLO on MNIST (width 32, d 32), batch 128", _glo(configs.GLOMnistConfig())),
    Case("ssl_mnist", "the K+1 GAN's MNIST networks, batch 100", _ssl(configs.SSLConfig())),
    seeds_case(10),
)}


def _param_count(tree) -> int:
    return sum(math.prod(a.shape) for a in jax.tree.leaves(tree))


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul FLOP/s: the best of ``repeats`` timed ``n x n`` products."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(case: Case, *, windows: int = 5, seconds: float = 1.0, peak: float | None = None,
            torch_python: str | None = None, repeats: int = 3) -> dict:
    """Times one case: compile, then ``windows`` windows of about ``seconds`` each; with
    ``torch_python`` and a reference (``case.torch``), at least ``repeats`` of them alternate
    with PyTorch runs of about the same length."""
    raw, state, batch, like = case.build()
    # GLO has no D; its latent table is not a network's.
    params = {k: _param_count(getattr(state, f"{k}_params")) for k in ("g", "d")
              if hasattr(state, f"{k}_params")}
    # As training runs it (`jaxgan.runs.train`): `per_call` steps to a compiled call.
    per_call = xla_cpu.steps_per_call(like) if case.multi else 1
    t0 = time.perf_counter()
    one = xla_cpu.jit_step(raw, like).lower(state, batch).compile()
    # XLA's cost analysis counts a loop's body once: FLOPs from the one-step program.
    cost = one.cost_analysis() or {}
    cost = cost[0] if isinstance(cost, list) else cost
    if per_call > 1:
        batch = jax.tree.map(lambda a: jnp.broadcast_to(a, (per_call, *a.shape)), batch)
    # Compiled once, ahead of time: the program training runs (state still donated), whose
    # memory analysis is read below; with several steps a call, training compiles both (the
    # single step runs next to hooks and checkpoints), and so does the compile time here.
    step = one if per_call == 1 else xla_cpu.jit_step(
        xla_cpu.scan_steps(raw), like).lower(state, batch).compile()
    state, metrics = step(state, batch)  # the first call: compile time includes its run
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    memory = step.memory_analysis()
    # Steps per window, so a window lasts about `seconds` on this machine.
    t = time.perf_counter()
    state, metrics = step(state, batch)  # the state is donated: keep the new one
    jax.block_until_ready(metrics)
    per_window = max(1, int(seconds / max(time.perf_counter() - t, 1e-6)))
    steps_per_window = per_window * per_call
    with_torch = torch_python is not None and bool(case.torch)
    rates, torch_runs = [], []
    for _ in range(max(windows, repeats) if with_torch else windows):
        t = time.perf_counter()
        for _ in range(per_window):
            state, metrics = step(state, batch)
        jax.block_until_ready((state, metrics))
        rates.append(steps_per_window / (time.perf_counter() - t))
        if with_torch:
            # A PyTorch run as long as a window, from the last rate seen (jaxgan's at first).
            rate = torch_runs[-1]["steps_per_s"] if torch_runs else rates[-1]
            torch_runs.append(torch_run(torch_python, case.torch, max(3, round(seconds * rate))))
    steps_per_s = statistics.median(rates)
    torch_result = {"torch_steps_per_s": None, "ratio": None}
    if torch_runs:
        theirs = [r["steps_per_s"] for r in torch_runs]
        torch_params = {"g": torch_runs[0]["params_g"], "d": torch_runs[0]["params_d"]}
        torch_result = {
            "torch_steps_per_s": statistics.median(theirs),
            "torch_steps_per_s_runs": theirs,
            "ratio": statistics.median(o / t for o, t in zip(rates, theirs)),
            "torch_params": torch_params,
            "params_match": torch_params == params,
        }
    flops = float(cost.get("flops", float("nan")))
    device_bytes = None
    if memory is not None:
        device_bytes = int(memory.argument_size_in_bytes + memory.output_size_in_bytes
                           + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
    return {
        "name": case.name,
        "what": case.what,
        "steps_per_s": steps_per_s,
        "steps_per_s_windows": rates,
        "steps_per_call": per_call,
        "compile_s": compile_s,
        "gflop_per_step": flops / 1e9,
        "flops_fraction": flops * steps_per_s / peak if peak else None,
        "step_device_bytes": device_bytes,
        "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": params,
        **torch_result,
    }


def environment() -> dict:
    """What a result was measured with."""
    return {"jax": jax.__version__, "flax": flax.__version__, "python": platform.python_version(),
            "backend": jax.default_backend(), "device_count": jax.device_count(),
            "devices": str(jax.devices()[0].device_kind), "machine": platform.machine()}


def run(names: list[str], *, windows: int = 5, seconds: float = 1.0, as_json: bool = False,
        torch_python: str | None = None, repeats: int = 3, out=sys.stdout) -> list[dict]:
    """Measures ``names`` (keys of `CASES`) and prints a table, or one JSON object a line;
    with ``torch_python``, beside the PyTorch references (``Case.torch``)."""
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown bench configuration {', '.join(unknown)}; valid: "
                         f"{', '.join(CASES)}")
    if repeats < 3 and torch_python:
        raise ValueError(f"--repeats {repeats}: a ratio needs at least 3 alternating runs")
    env = environment()
    if torch_python:
        env["torch"] = torch_version(torch_python)
    peak = matmul_peak()
    if not as_json:
        versus = f"; PyTorch {env['torch']}" if torch_python else ""
        print(f"jax {env['jax']}, flax {env['flax']}, {env['backend']} x{env['device_count']} "
              f"({env['devices']}){versus}; fp32 matmul peak measured {peak / 1e9:.0f} GFLOP/s",
              file=out)
        extra = (" torch steps/s | ratio |", "---|---|") if torch_python else ("", "")
        print("| configuration | steps/s | compile s | GFLOP/step | of matmul peak "
              f"| step memory MiB |{extra[0]}", file=out)
        print(f"|---|---|---|---|---|---|{extra[1]}", file=out)
    results = []
    for name in names:
        r = measure(CASES[name], windows=windows, seconds=seconds, peak=peak,
                    torch_python=torch_python, repeats=repeats)
        r.update(env, matmul_peak_flops=peak)
        results.append(r)
        if as_json:
            print(json.dumps(r), file=out, flush=True)
            continue
        print(f"| {name} | {r['steps_per_s']:.3g} | {r['compile_s']:.1f} | "
              f"{r['gflop_per_step']:.3g} | {100 * r['flops_fraction']:.1f}% | "
              f"{row_end(r, torch_python)}", file=out, flush=True)
    return results


def row_end(r: dict, torch_python: str | None, per_step: int = 1) -> str:
    """A table row's last cells: the step's memory, then with ``torch_python`` PyTorch's rate
    (times ``per_step``: examples a step, where the table counts examples) and the ratio; and a
    warning line when the reference's parameter counts differ from jaxgan's networks."""
    mem = r["step_device_bytes"]
    cells = f"{'' if mem is None else f'{mem / 2**20:.0f}'} |"
    if torch_python:
        cells += (f" {r['torch_steps_per_s'] * per_step:.4g} | {r['ratio']:.2f}x |"
                  if r["ratio"] is not None else " | |")
    if r.get("params_match") is False:
        cells += (f"\n  warning: {r['name']}'s PyTorch reference has {r['torch_params']} "
                  f"parameters, jaxgan's networks {r['params']}: not the same model")
    return cells
