"""Figures a person looks at: image grids, 2-D scatters over the real modes, loss curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def image_grid(x: np.ndarray, *, rows: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles ``(N, H, W, C)`` images in [-1, 1] into one uint8 ``(rows*H, cols*W, C)`` array."""
    x = np.asarray(x, np.float32)
    n, h, w, c = x.shape
    rows = rows or int(math.floor(math.sqrt(n)))
    cols = int(math.ceil(n / rows))
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    pixels = np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top : top + h, left : left + w] = pixels[i]
    return grid


def save_image_grid(path: str | Path, x: np.ndarray, *, rows: int | None = None, scale: int = 1):
    """Writes an image grid PNG; ``scale`` enlarges small images (nearest neighbour)."""
    grid = image_grid(x, rows=rows)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def save_scatter(
    path: str | Path,
    samples: np.ndarray,
    centres: np.ndarray | None = None,
    *,
    title: str = "",
    ax=None,
):
    """Scatter of 2-D samples over the real mixture centres (hollow red rings, drawn under
    the samples: crosses on top hid the samples piled up on a centre, the ones that count)."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    samples = np.asarray(samples)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, color="tab:blue", linewidths=0,
               zorder=2)
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], marker="o", s=70, facecolors="none",
                   edgecolors="tab:red", linewidths=1.0, zorder=1)
        span = np.abs(centres).max() * 1.5 + 0.1
        ax.set_xlim(-span, span)
        ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    if own:
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)


def log_y(ax) -> None:
    """A log y axis whose ticks read as plain numbers (2, 3, 10), not as 2 x 10^0."""
    from matplotlib.ticker import LogFormatter

    ax.set_yscale("log")
    # LogFormatter labels the minor ticks only where the axis spans few decades, as the
    # default does, but as plain numbers.
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def read_metrics(path: str | Path) -> list[dict]:
    """Reads a ``metrics.jsonl`` file (one JSON object per line)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def save_loss_curves(path: str | Path, records: list[dict], *, title: str = ""):
    """Plots D and G losses, and mean D output on real and fake data, against the step."""
    rows = [r for r in records if "d_loss" in r]
    if not rows:
        return
    step = [r["step"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=110)
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss")):
        a1.plot(step, [r[key] for r in rows], label=label)
    for key, label in (("d_real", "D(real)"), ("d_fake", "D(G(z))")):
        a2.plot(step, [r[key] for r in rows], label=label)
    a1.set_xlabel("step")
    a2.set_xlabel("step")
    a1.legend()
    a2.legend()
    a1.set_title(title or "losses", fontsize=9)
    a2.set_title("mean D output", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
