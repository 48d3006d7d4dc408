"""Figures a person looks at: image grids, 2-D scatters over the real modes, loss curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import LogFormatter  # noqa: E402
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
    ax.set_yscale("log")
    # LogFormatter labels the minor ticks only where the axis spans few decades, as the
    # default does, but as plain numbers.
    ax.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def read_metrics(path: str | Path) -> list[dict]:
    """Reads a ``metrics.jsonl`` file (one JSON object per line)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def save_curves(
    path: str | Path,
    records: list[dict],
    panels: list[tuple[str, list[tuple[str, str]]]],
    *,
    title: str = "",
    x: str = "step",
    log: bool = False,
    smooth: bool = False,
    scale: float = 1.0,
    ylabel: str | None = None,
) -> None:
    """Curves of ``metrics.jsonl`` records against ``x``, one panel per ``(panel title,
    [(key, label), ...])``; ``title`` heads the first panel.

    Records without the first panel's first key (evaluation lines, or training lines in an
    evaluation plot) are skipped. ``log``: a log y axis; ``smooth``: a moving mean of 9 beside
    each noisy curve; ``scale`` multiplies values (100 for percentages).
    """
    first = panels[0][1][0][0]
    rows = [r for r in records if first in r]
    if not rows:
        return
    xs = np.array([r[x] for r in rows])
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels) + 0.5 * (len(panels) == 1),
                                                      3.2 + 0.3 * (len(panels) == 1)),
                             dpi=110, squeeze=False)
    for ax, (name, curves) in zip(axes[0], panels):
        for key, label in curves:
            y = scale * np.array([r.get(key, np.nan) for r in rows], np.float64)
            ax.plot(xs, y, alpha=0.4 if smooth else 1.0, label=label,
                    **({} if smooth or len(xs) > 40 else {"marker": "o", "ms": 3}))
            k = 9  # a moving mean only once there are more points than its window
            if smooth and len(y) > k:
                ax.plot(xs[k - 1 :], np.convolve(y, np.ones(k) / k, mode="valid"),
                        label=f"moving mean of {k}")
        ax.set_xlabel(x)
        if ylabel:
            ax.set_ylabel(ylabel)
        if log:
            log_y(ax)
            ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[0, 0].set_title(title or panels[0][0], fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


# The panels of a GAN run's loss_curve.png.
GAN_CURVES = [("losses", [("d_loss", "D loss"), ("g_loss", "G loss")]),
              ("mean D output", [("d_real", "D(real)"), ("d_fake", "D(G(z))")])]


def save_samples(path: Path, x: np.ndarray, centres: np.ndarray | None = None, title: str = "",
                 rows: int | None = None) -> None:
    """A grid for images (``rows`` rows), a scatter over the real ``centres`` for 2-D points."""
    if x.ndim == 2:
        save_scatter(path, x, centres, title=title)
    else:
        save_image_grid(path, x, rows=rows, scale=2 if x.shape[1] <= 32 else 1)
