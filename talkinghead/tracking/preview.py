"""A preview video: the fitted mesh drawn over the source frames, to judge a fit at a glance."""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from talkinghead import media

MESH_COLOUR = (80, 220, 120)
LOST_COLOUR = (240, 80, 60)  # frames where the face was lost and the mesh is interpolated


def draw_mesh(frame: np.ndarray, points: np.ndarray, triangles: np.ndarray, colour=MESH_COLOUR) -> np.ndarray:
    """Draw triangle edges of ``points [N,2+]`` (pixels) on a copy of ``frame``."""
    out = frame.copy()
    polys = np.round(points[triangles][..., :2] * 4).astype(np.int32)  # 2 bits of sub-pixel precision
    cv2.polylines(out, list(polys), True, colour, 1, cv2.LINE_AA, shift=2)
    return out


def write_preview(video: str | os.PathLike, track, path: str | os.PathLike, quiet: bool = False) -> None:
    params, model = track.params, track.model
    with torch.no_grad():
        verts = model.vertices(
            torch.as_tensor(params.expression), torch.as_tensor(params.rotation),
            torch.as_tensor(params.translation), torch.as_tensor(params.scale),
        ).numpy()  # fmt: skip
    info = media.probe_video(video)
    audio = media.extract_audio(video, 16000) if info.has_audio else None
    with media.VideoWriter(path, info.fps, (info.width, info.height), audio=audio, audio_rate=16000,
                           quiet=quiet, total=len(params)) as writer:  # fmt: skip
        for i, frame in enumerate(media.iter_frames(video, stop=len(params))):
            colour = MESH_COLOUR if params.valid[i] else LOST_COLOUR
            writer.write(draw_mesh(frame, verts[i], model.triangles, colour))
