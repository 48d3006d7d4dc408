"""The PyTorch references ``jaxgan bench --vs-torch`` runs: scripts in the source checkout's
``benchmarks/`` (layer for layer the models of ``../shared/bench``; torch is never imported
here, only run by the python the user names)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REFS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def torch_version(python: str) -> str:
    """The torch version ``python`` imports; a clear error when the references or torch are
    missing."""
    if not (REFS_DIR / "torch_ring.py").is_file():
        raise FileNotFoundError(
            f"--vs-torch runs the PyTorch references in {REFS_DIR}, which this installation "
            "lacks: run it from a source checkout (git clone, then pip install -e .)")
    try:
        done = subprocess.run([python, "-c", "import torch; print(torch.__version__)"],
                              capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise FileNotFoundError(f"--vs-torch {python}: cannot run it ({e})") from None
    if done.returncode:
        raise ValueError(f"--vs-torch {python}: that python cannot import torch; give the "
                           "python of a virtual environment with torch installed "
                           "(python -m venv tv && tv/bin/pip install torch numpy)")
    return done.stdout.strip().splitlines()[-1]


def torch_run(python: str, reference: tuple[str, ...], steps: int) -> dict:
    """One run of a PyTorch reference, ``(script in benchmarks/, *flags)``: its
    ``steps_per_s``, ``params_g`` and ``params_d``."""
    script, *flags = reference
    out = subprocess.run([python, str(REFS_DIR / script), *flags, "--steps", str(steps)],
                         capture_output=True, text=True, check=True).stdout
    return {k: float(v) if "." in v else int(v) for k, v in re.findall(r"(\w+)=([\d.]+)", out)}


