"""The head crop: one square box per frame, stable over time, and pasting a generated crop back.

The box has one size for the whole video (a zoom would look like the head changing size) taken from
the face's extent, enlarged to take in hair and chin; its centre follows the head slowly, and stays
fixed when the head hardly moves, so the background inside the crop is still too.
Boxes are integer ``(x0, y0, size)`` in frame pixels: cropping and pasting then need no resampling
beyond one resize, and a crop pixel ``(i, j)`` covers frame pixels
``x0 + [j, j+1) * size/res``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.errors import TalkingHeadError


@dataclass(frozen=True)
class CropConfig:
    # box side / face extent: 1.9 takes in the hair above the forehead landmarks and the chin's
    # shadow while keeping most pixels on the person
    face_scale: float = 1.9
    # the face points stop at the hairline: move the box up by this fraction of the face extent
    up_shift: float = 0.12
    # centre smoothing (Gaussian sigma, seconds): slow enough that the crop never shakes with the head
    smooth_s: float = 0.5
    # if the smoothed centre never strays further than this fraction of the box, use one fixed box
    fixed_motion: float = 0.06
    # width of the feathered border (fraction of the box) where the generated crop fades into the frame
    feather: float = 0.08


def face_extent(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame bounding-box centre ``[T,2]`` and size ``[T]`` of 2D points ``[T,N,2+]``."""
    pts = np.asarray(points)[..., :2]
    lo, hi = pts.min(1), pts.max(1)
    return (lo + hi) / 2, (hi - lo).max(1)


def box_size(points: np.ndarray, frame_size: tuple[int, int], config: CropConfig = CropConfig()) -> int:
    """One box side for a whole video: ``face_scale`` x the median face extent, at most the frame."""
    _, extent = face_extent(points)
    side = int(round(config.face_scale * float(np.median(extent))))
    side = min(side, int(frame_size[0]), int(frame_size[1]))
    if side < 16:
        raise TalkingHeadError(f"the face is too small to crop ({side} px box)")
    return side


def compute_boxes(
    points: np.ndarray,
    frame_size: tuple[int, int],
    fps: float,
    size: int | None = None,
    config: CropConfig = CropConfig(),
) -> tuple[np.ndarray, bool]:
    """Boxes ``[T,3]`` int ``(x0, y0, size)`` for face points ``[T,N,2+]`` and whether they are all the same.

    ``size`` forces the box side (an avatar renders at the size it was trained with).
    """
    centre, extent = face_extent(points)
    side = box_size(points, frame_size, config) if size is None else int(size)
    centre = centre.copy()
    centre[:, 1] -= config.up_shift * np.median(extent)
    if len(centre) > 1:
        centre = gaussian_filter1d(centre, sigma=max(config.smooth_s * fps, 1e-3), axis=0, mode="nearest")
    median = np.median(centre, 0)
    fixed = bool(np.abs(centre - median).max() <= config.fixed_motion * side)
    if fixed:
        centre = np.broadcast_to(median, centre.shape)
    return _place(centre, side, frame_size), fixed


def _place(centre: np.ndarray, side: int, frame_size: tuple[int, int]) -> np.ndarray:
    w, h = frame_size
    x0 = np.clip(np.round(centre[:, 0] - side / 2), 0, max(w - side, 0))
    y0 = np.clip(np.round(centre[:, 1] - side / 2), 0, max(h - side, 0))
    return np.stack([x0, y0, np.full_like(x0, side)], 1).astype(np.int64)


def scale_boxes(boxes: np.ndarray, factor: float) -> np.ndarray:
    """Boxes in a frame resized by ``factor`` (background stored smaller than the source video)."""
    return np.round(np.asarray(boxes, np.float64) * factor).astype(np.int64)


def to_crop(points: np.ndarray, boxes: np.ndarray, resolution: int) -> np.ndarray:
    """Frame-pixel points ``[T,N,3]`` -> crop pixels (z scaled alike) for boxes ``[T,3]``."""
    boxes = np.asarray(boxes, np.float32)
    k = (resolution / boxes[:, 2])[:, None, None]
    out = np.array(points, np.float32, copy=True)
    out[..., :2] -= boxes[:, None, :2]
    return out * k


def crop_image(frame: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
    """Cut ``box`` out of ``frame`` (padding by edge replication if it leaves the frame), resized."""
    x0, y0, side = (int(v) for v in box)
    h, w = frame.shape[:2]
    if x0 < 0 or y0 < 0 or x0 + side > w or y0 + side > h:
        pad = max(-x0, -y0, x0 + side - w, y0 + side - h, 0)
        frame = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    patch = frame[y0 : y0 + side, x0 : x0 + side]
    if side == resolution:
        return patch.copy()
    interp = cv2.INTER_AREA if side > resolution else cv2.INTER_LINEAR
    return cv2.resize(patch, (resolution, resolution), interpolation=interp)


@lru_cache(maxsize=8)
def feather_mask(side: int, feather: float) -> np.ndarray:
    """``[side,side]`` float32 weights: 1 inside, smoothly 0 at the box border."""
    ramp = max(feather * side, 1.0)
    d = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32) + 0.5
    t = np.clip(d / ramp, 0, 1)
    t = t * t * (3 - 2 * t)  # smoothstep: no visible kink where the ramp starts
    return np.minimum(t[:, None], t[None, :])


def paste_crop(
    frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, box: np.ndarray, config: CropConfig = CropConfig()
) -> np.ndarray:
    """Composite a generated crop into a copy of ``frame``.

    ``rgb [r,r,3]`` float in [0, 1] and ``alpha [r,r]`` are resized to the box; the box border is feathered.
    """
    x0, y0, side = (int(v) for v in box)
    h, w = frame.shape[:2]
    # the part of the box inside the frame
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame.copy()
    interp = cv2.INTER_LINEAR if side >= rgb.shape[0] else cv2.INTER_AREA
    # colour and alpha are resized apart: contiguous arrays keep the blend below fast (online mode)
    fg = np.ascontiguousarray(rgb, np.float32)
    fg = cv2.resize(fg, (side, side), interpolation=interp) if side != fg.shape[0] else fg.copy()
    alpha = np.ascontiguousarray(alpha, np.float32)
    alpha = cv2.resize(alpha, (side, side), interpolation=interp) if side != alpha.shape[0] else alpha
    weight = alpha * feather_mask(side, config.feather)
    sub = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    out = frame.copy()
    region = out[fy0:fy1, fx0:fx1].astype(np.float32)
    blend = fg[sub]
    blend *= 255.0  # in place: region + (fg - region) * weight, rounded
    blend -= region
    blend *= weight[sub][..., None]
    blend += region + 0.5
    np.clip(blend, 0, 255, out=blend)
    out[fy0:fy1, fx0:fx1] = blend.astype(np.uint8)
    return out
