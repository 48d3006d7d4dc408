"""Orbax checkpoints of a run: the whole state pytree (step and key included) and metadata.

The data position needs no iterator state: batches are indexed by the global step (see
`jaxgan.data`), so restoring ``state.step`` restores the data stream too. The metadata keeps
that step, the epoch and what the loop needs to continue its figures.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp

from jaxgan.configs import differences


def run_directory(path: str | Path) -> Path:
    """The run folder a user named: the ``--out`` of a run, or its ``checkpoints/``."""
    run_dir = Path(path)
    if run_dir.name == "checkpoints":
        run_dir = run_dir.parent
    if not (run_dir / "config.json").exists():
        raise FileNotFoundError(f"{run_dir} has no config.json: is it the --out of a jaxgan run?")
    return run_dir


def check_run_folder(out: Path, cfg: Any, *, resume: bool, load_config: Callable) -> None:
    """Refuses, before any data is loaded, to mix two runs up in ``out``: without ``resume``
    a folder that already holds a run; with it, a config (a dataclass) that differs from the
    saved one (read by ``load_config``) in anything but the run's length."""
    if resume:
        saved = load_config(out / "config.json")
        diff = differences(dataclasses.asdict(saved), dataclasses.asdict(cfg))
        if set(diff) - {"epochs", "steps"}:
            raise ValueError(f"--resume with a config that differs from {out / 'config.json'} "
                             f"in {diff}; only --epochs / --steps may change on resume")
    elif (out / "checkpoints").exists():
        raise FileExistsError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out")


class Checkpointer:
    """Saves and restores a state pytree plus a JSON dict under ``directory``."""

    def __init__(self, directory: str | Path, *, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep)
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )

    def restore(self, like: Any, step: int | None = None) -> tuple[Any, dict]:
        """Restores into the structure of ``like`` (a state or its ``jax.eval_shape``)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        out = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()
            ),
        )
        return out["state"], out["meta"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
