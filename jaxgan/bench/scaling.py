"""``jaxgan bench --scaling``: how the cost of a step grows with the work.

Two families, each timed as `jaxgan.bench.measure` times a configuration (median of timed
windows after compilation) with the step's device memory from XLA's memory analysis
(arguments, outputs and temporaries: what the step needs resident at its peak):

* the DCGAN step (Radford et al. 2015's networks, RGB) at 32, 64 and 128 px and batch 32 to
  256: images/s against the batch shows where the machine saturates (a flat line: the step is
  compute-bound, doubling the batch doubles its time), and memory against the batch where it
  would stop fitting;
* ``compare``'s vmapped step (the ring8 mixture networks, batch 512) at 1 to 16 seeds: seed
  steps/s against the seeds shows what training the seeds of a comparison together buys.

With ``torch_python`` (``--vs-torch``), each DCGAN size is also run by the PyTorch reference
of the same networks (``benchmarks/torch_dcgan.py``), alternating with jaxgan's windows as
`jaxgan.bench.measure` does; the figure draws it dashed. compare's vmapped seeds have no
PyTorch counterpart. The biggest DCGAN steps take tens of seconds on a 2-core CPU: each
configuration gets ``windows`` short windows after its compile and a first step (``seconds``
long, at least one step).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from matplotlib.ticker import FuncFormatter

from jaxgan.bench.reference import torch_version
from jaxgan.bench.steps import (
    dcgan_case,
    environment,
    matmul_peak,
    measure,
    row_end,
    seeds_case,
)
from jaxgan.plots import plt

RESOLUTIONS = (32, 64, 128)
BATCHES = (32, 64, 128, 256)
SEEDS = (1, 2, 4, 8, 16)


def scaling(*, resolutions=RESOLUTIONS, batches=BATCHES, seeds=SEEDS, seconds: float = 2.0,
            windows: int = 1, figure: str | Path | None = "docs/bench_scaling.png",
            torch_python: str | None = None, repeats: int = 3, as_json: bool = False,
            out=sys.stdout) -> list[dict]:
    """Times every (resolution, batch) DCGAN step and every seed count, prints a table (or
    JSON lines) and draws the log-log figure to ``figure`` (none if ``None``)."""
    env = environment()
    if torch_python:
        env["torch"] = torch_version(torch_python)
    peak = matmul_peak()
    if not as_json:
        print(f"jax {env['jax']}, {env['backend']} x{env['device_count']} ({env['devices']}); "
              f"fp32 matmul peak measured {peak / 1e9:.0f} GFLOP/s", file=out)
        versus = (" torch examples/s | ratio |", "---|---|") if torch_python else ("", "")
        print("| step | batch | steps/s | examples/s | GFLOP/step | of matmul peak "
              f"| step memory MiB |{versus[0]}\n|---|---|---|---|---|---|---|{versus[1]}",
              file=out, flush=True)
    plan = [("dcgan", r, b, dcgan_case(r, b)) for r in resolutions for b in batches]
    plan += [("compare", n, 512, seeds_case(n)) for n in seeds]
    rows = []
    for family, size, batch, case in plan:
        r = measure(case, windows=windows, seconds=seconds, peak=peak,
                    torch_python=torch_python, repeats=repeats)
        # One example a seed per row of the batch: seeds x batch for compare.
        r.update(env, family=family, size=size, batch=batch,
                 examples_per_s=r["steps_per_s"] * batch * (size if family == "compare" else 1))
        rows.append(r)
        if as_json:
            print(json.dumps(r), file=out, flush=True)
        else:
            label = f"DCGAN {size} px" if family == "dcgan" else f"compare, {size} seeds"
            print(f"| {label} | {batch} | {r['steps_per_s']:.3g} | {r['examples_per_s']:.4g} "
                  f"| {r['gflop_per_step']:.3g} | {100 * r['flops_fraction']:.0f}% | "
                  f"{row_end(r, torch_python, per_step=batch)}", file=out, flush=True)
    if figure is not None:
        draw(rows, figure)
        if not as_json:
            print(f"wrote {figure}", file=out)
    return rows


def draw(rows: list[dict], path: str | Path) -> Path:
    """Log-log panels: DCGAN images/s and step memory against the batch (one line per
    resolution); compare's seed-steps/s and memory against the number of seeds."""
    compare = sorted((r for r in rows if r["family"] == "compare"), key=lambda r: r["size"])
    fig, axes = plt.subplots(1, 3 if compare else 2, figsize=(12 if compare else 8, 3.6))
    dcgan = [r for r in rows if r["family"] == "dcgan"]
    for res in sorted({r["size"] for r in dcgan}):
        mine = sorted((r for r in dcgan if r["size"] == res), key=lambda r: r["batch"])
        batches = [r["batch"] for r in mine]
        line, = axes[0].plot(batches, [r["examples_per_s"] for r in mine], "o-",
                             label=f"{res} px")
        theirs = [(r["batch"], r["torch_steps_per_s"] * r["batch"]) for r in mine
                  if r.get("torch_steps_per_s")]
        if theirs:
            axes[0].plot(*zip(*theirs), "x--", color=line.get_color(),
                         label=f"{res} px, PyTorch")
        axes[1].plot(batches, [r["step_device_bytes"] / 2**20 for r in mine], "o-",
                     label=f"{res} px")
    axes[0].set(title="DCGAN step: images/s", xlabel="batch", ylabel="images / s")
    axes[1].set(title="DCGAN step: device memory", xlabel="batch", ylabel="MiB")
    if compare:
        n = [r["size"] for r in compare]
        axes[2].plot(n, [r["steps_per_s"] * r["size"] for r in compare], "o-",
                     label="seed-steps/s")
        axes[2].plot(n, [r["step_device_bytes"] / 2**20 for r in compare], "s--",
                     label="memory MiB")
        axes[2].set(title="compare's step (ring8, batch 512)", xlabel="seeds vmapped")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
