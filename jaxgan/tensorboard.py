"""TensorBoard event files beside ``metrics.jsonl``: every record as scalars, every epoch's
sample grid as an image, written with tensorboardX (no TensorFlow needed).

``tensorboard --logdir runs/`` then shows every run (and each entry of a comparison, one
curve per seed) side by side; ``metrics.jsonl`` stays the record jaxgan itself reads.
"""

from __future__ import annotations

import math
import numbers
import time
from pathlib import Path

import numpy as np
from PIL import Image

_NOT_SCALARS = {"step", "time", "epoch", "elapsed"}


class Board:
    """Writes records and images of one run into ``folder`` (nothing if not ``enabled``).

    ``resumed_at``: the step a resumed run continues from; TensorBoard then drops what the
    interrupted run wrote after it (written again, the same, by the resumed run).
    """

    def __init__(self, folder: str | Path, enabled: bool = True, resumed_at: int | None = None):
        self.writer = None
        if enabled:
            from tensorboardX import SummaryWriter  # imported only when used

            # TensorBoard hides events at or after purge_step: the resumed run's first step
            # is the one after its checkpoint's.
            purge = None if resumed_at is None else resumed_at + 1
            # tensorboardX names the file by the second and the host only, and opens it with
            # "wb": a run resumed within the same second would truncate the first one's file.
            # Nanoseconds keep the files apart and in the order TensorBoard reads them in.
            self.writer = SummaryWriter(str(folder), flush_secs=30, purge_step=purge,
                                        filename_suffix=f".{time.time_ns()}")

    def record(self, record: dict) -> None:
        """A metrics record (`jaxgan.loop`): each number as a scalar at ``record["step"]``; a
        list (one value per seed of a comparison) as ``name/seed_i``. A NaN (e.g. reverse KL
        while no mode is hit, a metric undefined rather than diverged: diverged steps never
        reach a record) is left out: a chart has no point for it, and tensorboardX would log
        a warning for each; ``metrics.jsonl`` keeps it."""
        if self.writer is None:
            return
        step = int(record["step"])
        for key, value in record.items():
            if key in _NOT_SCALARS or value is None:
                continue
            if isinstance(value, list) and all(isinstance(v, numbers.Number) for v in value):
                for i, v in enumerate(value):
                    self._scalar(f"{key}/seed_{i}", v, step)
            elif isinstance(value, numbers.Number) and not isinstance(value, bool):
                self._scalar(key, value, step)

    def _scalar(self, tag: str, value, step: int) -> None:
        if math.isfinite(value):
            self.writer.add_scalar(tag, float(value), step)

    def image(self, tag: str, path: str | Path, step: int) -> None:
        """A PNG the run wrote (its sample grid) as an image at ``step``."""
        if self.writer is None or not Path(path).exists():
            return
        with Image.open(path) as img:
            pixels = np.asarray(img.convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
