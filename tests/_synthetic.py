"""A synthetic 'person' for generator and training tests: the default face mesh painted with its own
canonical coordinates (a smooth colour field), a dark mouth interior, on a plain background.
"""

from __future__ import annotations

import numpy as np

from talkinghead.generator.guide import MASK_NAMES, GuideRasterizer, MeshTopology
from talkinghead.morphable.model import MODEL_ID, MorphableModel
from talkinghead.params import ParamSequence

FRAME = (160, 160)  # (W, H) of the synthetic video


def synthetic_params(model: MorphableModel, frames: int = 60, fps: float = 25.0) -> ParamSequence:
    t = np.arange(frames)
    expr = np.zeros((frames, len(model.names)), np.float32)
    expr[:, model.index("jawOpen")] = 0.35 + 0.35 * np.sin(t / 3.0)
    expr[:, model.index("eyeBlinkLeft")] = (np.sin(t / 5.0) > 0.9) * 0.9
    rot = np.zeros((frames, 3), np.float32)
    rot[:, 1] = 0.08 * np.sin(t / 8.0)
    trans = np.tile(np.array([[80.0, 84.0, 0.0]], np.float32), (frames, 1))
    return ParamSequence(
        fps=fps, model_id=MODEL_ID, coefficient_names=model.names, expression=expr, rotation=rot,
        translation=trans, scale=np.full(frames, 22.0, np.float32), valid=np.ones(frames, bool),
        frame_size=FRAME,
        identity=model.neutral.numpy(),
    )  # fmt: skip


def synthetic_frames(model: MorphableModel, params: ParamSequence) -> np.ndarray:
    """Full frames ``[T,H,W,3]`` uint8 of the painted face for ``params``."""
    rast = GuideRasterizer(MeshTopology.from_model(model))
    w, h = FRAME
    verts = model.vertices(params.expression, params.rotation, params.translation, params.scale).numpy()
    size = max(w, h)
    frames = np.empty((len(params), h, w, 3), np.uint8)
    for i, v in enumerate(verts):
        g = rast.guide(v, size)
        img = np.empty((size, size, 3), np.float32)
        img[:] = (0.55, 0.6, 0.7)
        img[:, :, 2] -= np.linspace(0, 0.3, size)[:, None]  # a gradient background
        face = g[3] > 0.5
        img[face] = g[0:3, face].T * 0.3 + 0.6
        img[g[3 + MASK_NAMES.index("lips")] > 0.5] = (0.75, 0.25, 0.3)
        img[g[3 + MASK_NAMES.index("mouth_inner")] > 0.5] = (0.15, 0.05, 0.05)
        frames[i] = (img[:h, :w] * 255).clip(0, 255).astype(np.uint8)
    return frames
