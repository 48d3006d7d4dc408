"""Orbax checkpoints of a run: the whole state pytree (step and key included) and metadata.

The data position needs no iterator state: batches are indexed by the global step (see
`jaxgan.data`), so restoring ``state.step`` restores the data stream too. The metadata keeps
that step, the epoch and what the loop needs to continue its figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


def saved_steps(directory: str | Path) -> list[int]:
    """The steps with a complete checkpoint under ``directory``, without opening a manager
    (which would create the folder). Orbax writes a checkpoint under a temporary name and
    renames it to its step when it is complete, so a step-named folder is a whole one."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


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
