"""A contact sheet of every blendshape at weight 1 beside the neutral face, to judge them by eye."""

from __future__ import annotations

import io
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402

from talkinghead.atomic import write_bytes_atomic  # noqa: E402
from talkinghead.morphable.model import MorphableModel  # noqa: E402

REGION_COLOURS = {"lips": "#c0392b", "left_eye": "#2471a3", "right_eye": "#2471a3", "left_iris": "#17202a",
                  "right_iris": "#17202a", "left_brow": "#6e2c00", "right_brow": "#6e2c00"}  # fmt: skip


def _draw(ax, model: MorphableModel, points: np.ndarray, title: str, neutral: np.ndarray | None) -> None:
    tris = points[model.triangles][..., :2]
    ax.add_collection(PolyCollection(tris, facecolors="#f5cba7", edgecolors="#e59866", linewidths=0.2))
    if neutral is not None:  # ghost of the neutral contours, so the motion is visible
        for name in ("lips", "left_eye", "right_eye", "left_brow", "right_brow"):
            idx = model.regions[name]
            ax.scatter(neutral[idx, 0], neutral[idx, 1], s=0.6, c="#7f8c8d")
    for name, colour in REGION_COLOURS.items():
        idx = model.regions[name]
        ax.scatter(points[idx, 0], points[idx, 1], s=1.5, c=colour)
    if neutral is not None:
        moved = np.linalg.norm(points - neutral, axis=1) > 1e-3
        segments = np.stack([neutral[moved, :2], points[moved, :2]], 1)
        ax.add_collection(LineCollection(segments, colors="#27ae60", linewidths=0.5))
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(1.6, -1.7)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def draw_sheet(model: MorphableModel, path: str | os.PathLike, columns: int = 9) -> None:
    """Write a png grid: the neutral face, then each blendshape at weight 1 (green: motion)."""
    k = model.n_coefficients
    rows = math.ceil((k + 1) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.6, rows * 1.9))
    axes = axes.ravel()
    neutral = model.neutral.numpy()
    _draw(axes[0], model, neutral, "neutral", None)
    eye = torch.eye(k)
    shapes = model.shape(eye).numpy()
    for i, name in enumerate(model.names):
        _draw(axes[i + 1], model, shapes[i], name, neutral)
    for ax in axes[k + 1 :]:
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
