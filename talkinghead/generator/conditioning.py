"""From morphable parameters and crop boxes to the generator's inputs (guide maps + parameter vector).

Training, rendering and evaluation all go through ``Conditioner``, so the generator sees exactly
the same inputs for a frame whichever path produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from talkinghead.generator.guide import (
    GUIDE_CHANNELS,
    GuideConfig,
    GuideRasterizer,
    MeshTopology,
    Raster,
    head_plane_affine,
)
from talkinghead.training.crop import to_crop

GAZE_DIM = 4


@dataclass
class FrameBatch:
    """Generator inputs for a batch of frames, plus the posed mesh for losses that need geometry."""

    guide: torch.Tensor  # [B,C,H,W]
    params: torch.Tensor  # [B,P]
    vertices: np.ndarray  # [B,N,3] crop pixels
    rasters: list[Raster] | None = None  # kept when asked (pseudo targets warp along them)


class Conditioner:
    """Build guides for frames of a parameter sequence inside given crop boxes."""

    def __init__(self, model: Any, resolution: int, guide_config: GuideConfig | None = None) -> None:
        self.model = model
        self.resolution = int(resolution)
        self.rasterizer = GuideRasterizer(MeshTopology.from_model(model), guide_config)

    @property
    def param_dim(self) -> int:
        return len(self.model.names) + 3 + GAZE_DIM

    def param_vector(
        self, expression: np.ndarray, rotation: np.ndarray, gaze: np.ndarray | None
    ) -> np.ndarray:
        """``[B,P]``: expression, rotation (axis-angle), gaze.

        Gaze the driver did not give is derived from the ``eyeLook*`` coefficients exactly as the
        fitter derives it, so the generator sees the same kind of values it was trained on.
        """
        expression = np.asarray(expression, np.float32)
        if gaze is None:
            gaze = self._gaze_from_expression(expression)
        return np.concatenate([expression, np.asarray(rotation, np.float32), np.asarray(gaze, np.float32)], 1)

    def _gaze_from_expression(self, expression: np.ndarray) -> np.ndarray:
        from talkinghead.morphable.fitting import FitResult

        try:
            return FitResult(expression, None, None, None).gaze(tuple(self.model.names))
        except KeyError:  # a model without ARKit eye names
            return np.zeros((len(expression), GAZE_DIM), np.float32)

    def vertices(self, expression, rotation, translation, scale, boxes) -> np.ndarray:
        """Posed mesh ``[B,N,3]`` in crop pixels."""
        with torch.no_grad():
            verts = self.model.vertices(
                torch.as_tensor(np.asarray(expression, np.float32)),
                torch.as_tensor(np.asarray(rotation, np.float32)),
                torch.as_tensor(np.asarray(translation, np.float32)),
                torch.as_tensor(np.asarray(scale, np.float32)),
            ).numpy()
        return to_crop(verts, boxes, self.resolution)

    def head_affines(self, rotation, translation, scale, boxes) -> np.ndarray:
        """``[B,2,3]`` crop pixel -> head-plane model coordinates, from three projected plane points."""
        plane = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        b = len(np.asarray(rotation))
        with torch.no_grad():
            pts = self.model.project(
                plane.expand(b, -1, -1),
                torch.as_tensor(np.asarray(rotation, np.float32)),
                torch.as_tensor(np.asarray(translation, np.float32)),
                torch.as_tensor(np.asarray(scale, np.float32)),
            ).numpy()
        pts = to_crop(pts, boxes, self.resolution)
        return np.stack([head_plane_affine(p[0], p[1], p[2]) for p in pts])

    def frames(
        self, seq: Any, indices: np.ndarray, boxes: np.ndarray, device: torch.device | str = "cpu",
        keep_rasters: bool = False,
    ) -> FrameBatch:  # fmt: skip
        """Inputs for frames ``indices`` of ``seq`` (a ParamSequence) in crop ``boxes [B,3]``."""
        idx = np.asarray(indices)
        gaze = None if seq.gaze is None else seq.gaze[idx]
        return self.build(seq.expression[idx], seq.rotation[idx], seq.translation[idx], seq.scale[idx], gaze,
                          boxes, device, keep_rasters)  # fmt: skip

    def build(
        self, expression, rotation, translation, scale, gaze, boxes, device="cpu", keep_rasters: bool = False
    ) -> FrameBatch:
        boxes = np.asarray(boxes)
        verts = self.vertices(expression, rotation, translation, scale, boxes)
        affines = self.head_affines(rotation, translation, scale, boxes)
        size = self.resolution
        guides = np.zeros((len(verts), size, size, GUIDE_CHANNELS), np.float32)  # channels-last
        rasters = [
            self.rasterizer.guide_into(g, v, a) for g, v, a in zip(guides, verts, affines, strict=True)
        ]
        return FrameBatch(
            torch.from_numpy(guides).permute(0, 3, 1, 2).to(device),
            torch.from_numpy(self.param_vector(expression, rotation, gaze)).to(device),
            verts,
            rasters if keep_rasters else None,
        )
