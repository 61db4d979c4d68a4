"""Rigid (similarity) alignment of landmark sets, and the canonical model space built from it.

Model space: x to image right (the subject's left), y down, z away from the camera, origin at the
mean of the 468 face points moved sideways onto the midpoint of the eyes (the mirror plane), unit length = the distance between the two eye centres (IOD), so
every subject's face has the same size and authored displacements mean the same thing on each.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

RIGHT_EYE_CORNERS = (33, 133)  # subject's right eye: outer, inner (image left)
LEFT_EYE_CORNERS = (362, 263)  # subject's left eye: inner, outer (image right)
N_FACE = 468  # points without the irises; the irises move with gaze, so alignment ignores them


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eye centres ``[...,3]`` (right, left) from the eye corners."""
    right = points[..., RIGHT_EYE_CORNERS, :].mean(-2)
    left = points[..., LEFT_EYE_CORNERS, :].mean(-2)
    return right, left


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """2D inter-ocular distance ``[...]`` in the points' own units, the usual landmark-error scale."""
    right, left = eye_centres(points)
    return np.linalg.norm((left - right)[..., :2], axis=-1)


def similarity_fit(
    source: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched Umeyama: ``target ~ s * R @ source + t``.

    ``source`` ``[N,3]`` or ``[B,N,3]``, ``target`` ``[B,N,3]``, optional ``weights`` ``[N]``.
    Returns ``R [B,3,3]``, ``t [B,3]``, ``s [B]``.
    """
    if source.dim() == 2:
        source = source.expand(target.shape[0], -1, -1)
    w = torch.ones(source.shape[1], dtype=source.dtype) if weights is None else weights
    w = (w / w.sum())[None, :, None]
    mu_s = (w * source).sum(1)
    mu_t = (w * target).sum(1)
    xs = source - mu_s[:, None]
    xt = target - mu_t[:, None]
    cov = torch.einsum("bni,bnj->bij", w * xt, xs)
    u, sig, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(sig)
    fix[:, 2] = d
    rot = u @ torch.diag_embed(fix) @ vh
    var_s = (w * xs.pow(2)).sum((1, 2))
    scale = (sig * fix).sum(1) / var_s
    trans = mu_t - scale[:, None] * torch.einsum("bij,bj->bi", rot, mu_s)
    return rot, trans, scale


def to_model_space(points: np.ndarray) -> np.ndarray:
    """Put one landmark set ``[N,3]`` (pixels) into model space: centred, IOD = 1, eyes level."""
    p = np.asarray(points, np.float64)
    centre = p[:N_FACE].mean(0)
    right, left = eye_centres(p)
    x_axis = left - right
    iod = np.linalg.norm(x_axis)
    x_axis /= iod
    # y points from the eyes towards the chin (landmark 152), orthogonalised against x
    down = p[152] - (right + left) / 2
    y_axis = down - x_axis * (down @ x_axis)
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    basis = np.stack([x_axis, y_axis, z_axis])
    out = (p - centre) @ basis.T / iod
    mid_x = ((right + left) / 2 - centre) @ x_axis / iod
    out[:, 0] -= mid_x
    return out.astype(np.float32)


def align_sequence(landmarks: np.ndarray, reference: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Similarity-align every frame ``[T,N,3]`` to ``reference``; NaN frames stay NaN."""
    out = np.full_like(landmarks, np.nan, dtype=np.float32)
    ok = np.isfinite(landmarks).all((1, 2))
    if not ok.any():
        return out
    ref = torch.as_tensor(reference, dtype=torch.float64)
    tgt = torch.as_tensor(landmarks[ok], dtype=torch.float64)
    # align the frames onto the reference: fit reference->frame then invert it
    rot, trans, scale = similarity_fit(ref[:N_FACE], tgt[:, :N_FACE])
    inv = torch.einsum("bji,bnj->bni", rot, tgt - trans[:, None]) / scale[:, None, None]
    out[ok] = inv.float().numpy()
    return out


REST_FRACTION = 0.2  # share of frames with the least open mouth that define the resting face


def lip_gap(points: np.ndarray) -> np.ndarray:
    """Inner-lip opening ``[T]`` in IOD units (landmarks 13 and 14), a model-free mouth aperture."""
    return np.linalg.norm(points[..., 13, :2] - points[..., 14, :2], axis=-1) / inter_ocular(points)


def neutral_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """A subject's resting face in model space: the per-point median of aligned closed-mouth frames.

    A median over all frames of someone talking has a half-open mouth; the identity must have it
    closed so that ``jawOpen = 0`` means closed. The median is robust to the remaining expressions.
    """
    valid = landmarks[np.isfinite(landmarks).all((1, 2))]
    gap = lip_gap(valid)
    rest = valid[gap <= np.quantile(gap, REST_FRACTION)]
    reference = to_model_space(rest[len(rest) // 2])
    for _ in range(3):
        aligned = align_sequence(rest, reference)
        reference = to_model_space(np.median(aligned, axis=0))
    return reference


def mirror_indices(shape: np.ndarray) -> np.ndarray:
    """For each point, the index of its left-right mirror partner (nearest after flipping x)."""
    flipped = shape.copy()
    flipped[:, 0] *= -1
    pairs = np.empty(len(shape), np.int64)
    for block in (slice(0, N_FACE), slice(N_FACE, None)):
        idx = np.arange(len(shape))[block]
        # an assignment, not nearest neighbours: every point gets exactly one partner
        cost = np.linalg.norm(shape[block][:, None] - flipped[block][None], axis=-1)
        rows, cols = linear_sum_assignment(cost)
        pairs[idx[cols]] = idx[rows]
    return pairs


def symmetrize(shape: np.ndarray) -> np.ndarray:
    """Average a shape with its mirror image (fixes tracking bias, and de-personalises a mean)."""
    for _ in range(3):  # the pairing improves as the shape becomes symmetric
        pairs = mirror_indices(shape)
        mirrored = shape[pairs].copy()
        mirrored[:, 0] *= -1
        shape = to_model_space((shape + mirrored) / 2)
    return shape
