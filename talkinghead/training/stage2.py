"""Stage 2 (morphable prior): auxiliary parameters the video never showed, and how to supervise them.

- ``AuxSampler`` draws smooth parameter sequences: keyframes of sparse blendshape combinations (a few
  coefficients pushed at a time, up to beyond the video's range) and head poses beyond the video's
  range, eased between keyframes the way speech and expressions move.
- ``pseudo_targets`` warps the nearest real frame (in parameter space) to the new geometry along the
  mesh: every surface point visible in the source frame takes that frame's pixel. What the source
  did not see (occluded surface, the mouth interior) is masked out of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talkinghead.generator.guide import MASK_NAMES, GuideRasterizer, Raster
from talkinghead.params import ParamSequence


@dataclass(frozen=True)
class AuxConfig:
    seq_len: int = 32  # frames per sampled sequence (about a second)
    key_every: int = 8  # a new keyframe every 8 frames: about the pace of syllables at 25 fps
    active: int = 3  # coefficients pushed per keyframe: sparse combinations, as real expressions are
    # a pushed coefficient may exceed the video's strongest value by this much (weights live in [0, 1])
    beyond: float = 0.35
    # head rotation may go this factor beyond the video's own range, up to pose_max radians (~20 deg)
    pose_beyond: float = 1.5
    pose_max: float = 0.35
    # keyframes start from a real frame's expression this often, else from neutral
    real_base: float = 0.7
    # nearest-frame search: mouth coefficients weigh more since the mouth is what must match
    mouth_match: float = 3.0
    rotation_match: float = 2.0
    # a warped pixel counts as visible if the source's front surface is no nearer than this (crop fraction)
    depth_tolerance: float = 0.02
    erode: int = 1  # pixels trimmed from the supervised area (its edges sample the background)


class AuxSampler:
    """Random smooth parameter sequences around, and beyond, a video's own parameters."""

    def __init__(self, real: ParamSequence, config: AuxConfig | None = None) -> None:
        self.real = real
        self.config = c = config or AuxConfig()
        self.expr_cap = np.clip(real.expression.max(0) + c.beyond, 0.2, 1.0)
        rot = real.rotation
        centre = (rot.max(0) + rot.min(0)) / 2
        half = (rot.max(0) - rot.min(0)) / 2
        self.rot_centre = centre
        self.rot_half = np.minimum(half * c.pose_beyond + 0.05, c.pose_max)

    def sample(self, rng: np.random.Generator) -> tuple[ParamSequence, int]:
        """One sequence of ``seq_len`` frames and the real frame whose position (translation, scale) it keeps.

        Keeping a real frame's position keeps the head inside that frame's crop box.
        """
        c = self.config
        n_keys = c.seq_len // c.key_every + 2
        k = self.real.expression.shape[1]
        base_idx = rng.integers(0, len(self.real), n_keys)
        expr = np.where(rng.random((n_keys, 1)) < c.real_base, self.real.expression[base_idx], 0.0)
        for row in expr:
            chosen = rng.choice(k, size=min(c.active, k), replace=False)
            row[chosen] = rng.random(len(chosen)) * self.expr_cap[chosen]
        rot = self.rot_centre + (rng.random((n_keys, 3)) * 2 - 1) * self.rot_half
        gaze = None
        if self.real.gaze is not None:
            gaze = self.real.gaze[base_idx] + rng.normal(0, 0.05, (n_keys, 4))
        anchor = base_idx[0]
        t = np.arange(c.seq_len) / c.key_every
        i0 = np.floor(t).astype(int)
        u = t - i0
        u = (u * u * (3 - 2 * u))[:, None]  # ease in and out between keyframes

        def ease(keys: np.ndarray) -> np.ndarray:
            return keys[i0] * (1 - u) + keys[i0 + 1] * u

        seq = self.real.with_arrays(
            expression=ease(expr).astype(np.float32),
            rotation=ease(rot).astype(np.float32),
            translation=np.repeat(self.real.translation[anchor : anchor + 1], c.seq_len, 0),
            scale=np.repeat(self.real.scale[anchor : anchor + 1], c.seq_len, 0),
            valid=np.ones(c.seq_len, bool),
            gaze=None if gaze is None else ease(gaze).astype(np.float32),
        )
        return seq, int(anchor)


def match_features(seq: ParamSequence, names: tuple[str, ...], config: AuxConfig) -> np.ndarray:
    """Vectors whose distances rank frames by how alike their face looks (mouth and pose weighted)."""
    w = np.array([config.mouth_match if n.startswith(("jaw", "mouth")) else 1.0 for n in names], np.float32)
    return np.concatenate([seq.expression * w, seq.rotation * config.rotation_match], 1)


def nearest_frames(query: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Index in ``bank [M,D]`` of the nearest row for each ``query [B,D]``."""
    d = torch.cdist(
        torch.from_numpy(np.asarray(query, np.float32)), torch.from_numpy(np.asarray(bank, np.float32))
    )
    return d.argmin(1).numpy()


def pseudo_targets(
    rasterizer: GuideRasterizer,
    target_rasters: list[Raster],
    source_vertices: np.ndarray,
    source_images: torch.Tensor,
    config: AuxConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp source crops onto target geometry along the mesh.

    ``target_rasters``: rasters of the target meshes; ``source_vertices [B,N,3]`` crop pixels of the
    source frames; ``source_images [B,3,r,r]``. Returns ``(images [B,3,r,r], weight [B,1,r,r])``.
    """
    b, _, r, _ = source_images.shape
    grids = np.zeros((b, r, r, 2), np.float32)
    weights = np.zeros((b, 1, r, r), np.float32)
    hole = np.array(
        [(bits & (1 << MASK_NAMES.index("mouth_inner"))) > 0 for bits in rasterizer.topology.tri_bits]
    )
    for i, (raster, src) in enumerate(zip(target_rasters, source_vertices, strict=True)):
        pos = rasterizer.interpolate(
            raster, src
        )  # [r,r,3]: where each target surface point sits in the source
        covered = raster.covered.copy()
        covered[covered] &= ~hole[raster.tri_id[covered]]
        src_depth = rasterizer.rasterize(src, r).depth
        px = np.clip(np.floor(pos[..., 0]).astype(int), 0, r - 1)
        py = np.clip(np.floor(pos[..., 1]).astype(int), 0, r - 1)
        front = src_depth[py, px]
        inside = (pos[..., 0] >= 0) & (pos[..., 0] < r) & (pos[..., 1] >= 0) & (pos[..., 1] < r)
        visible = covered & inside & (pos[..., 2] <= front + config.depth_tolerance * r)
        if config.erode > 0:
            k = np.ones((2 * config.erode + 1,) * 2, np.uint8)
            visible = cv2.erode(visible.astype(np.uint8), k).astype(bool)
        grids[i] = pos[..., :2] / r * 2 - 1
        weights[i, 0] = visible
    grid = torch.from_numpy(grids).to(source_images.device)
    warped = F.grid_sample(source_images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return warped, torch.from_numpy(weights).to(source_images.device)
