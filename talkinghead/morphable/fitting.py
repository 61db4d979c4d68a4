"""Fit the morphable model to tracked landmarks: identity once, then pose, expression and gaze per frame.

Batched Adam in torch over a chunk of frames at once, with an L1 prior on the coefficients (few
blendshapes explain a frame: this keeps them semantic), an L2 prior, box constraints [0, 1], and a
temporal smoothness term that also ties each chunk to the last frame of the previous one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.morphable.alignment import N_FACE, inter_ocular, neutral_from_landmarks, similarity_fit
from talkinghead.morphable.model import MorphableModel
from talkinghead.morphable.personalize import PersonalizeConfig, model_space_targets, refine_basis
from talkinghead.morphable.rotation import matrix_to_axis_angle
from talkinghead.params import ParamSequence

# points that barely move with expression: forehead, nose bridge, eye corners, temples (rigid fit)
STABLE_POINTS = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 33, 133, 362, 263, 127, 356, 234, 454, 109, 338, 67, 297)


@dataclass
class FitConfig:
    iterations: int = 120  # Adam steps per chunk; the loss is flat well before this on real clips
    lr_expression: float = 0.04
    lr_pose: float = 0.01
    # The data term is a mean squared error in IOD units (0.5 % noise ~ 2.5e-5), priors are scaled to it.
    l1_prior: float = 1e-5  # sparsity: a smile should be mouthSmile*, not five small look-alikes
    l2_prior: float = 1e-6
    temporal: float = 2e-3  # coefficient velocity penalty (IOD^2 units): removes tracker jitter
    z_weight: float = 0.05  # MediaPipe depth is much noisier than x, y; it only disambiguates
    chunk_frames: int = 300  # frames fitted together; bounds memory on long videos
    # coefficients no landmark can see get a stronger prior so they stay near 0 unless needed
    weak_names: tuple[str, ...] = ("tongueOut", "mouthClose", "jawForward", "cheekPuff")
    weak_factor: float = 8.0


@dataclass
class FitResult:
    expression: np.ndarray  # [T,K]
    rotation: np.ndarray  # [T,3]
    translation: np.ndarray  # [T,3]
    scale: np.ndarray  # [T]

    def gaze(self, names: tuple[str, ...]) -> np.ndarray:
        """``[T,4]`` gaze (left x, y, right x, y; +x = subject's left, +y = down) from eyeLook*."""
        e = dict(zip(names, self.expression.T, strict=True))
        return np.stack([
            e["eyeLookOutLeft"] - e["eyeLookInLeft"], e["eyeLookDownLeft"] - e["eyeLookUpLeft"],
            e["eyeLookInRight"] - e["eyeLookOutRight"], e["eyeLookDownRight"] - e["eyeLookUpRight"],
        ], 1).astype(np.float32)  # fmt: skip


def interpolate_missing(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill frames without a face ``[T,N,3]`` (NaN) by linear interpolation; returns (filled, valid)."""
    valid = np.isfinite(landmarks).all((1, 2))
    if not valid.any():
        return landmarks, valid
    t = np.arange(len(landmarks))
    flat = landmarks.reshape(len(landmarks), -1)
    filled = np.stack([np.interp(t, t[valid], flat[valid, j]) for j in range(flat.shape[1])], 1)
    return filled.reshape(landmarks.shape).astype(np.float32), valid


class Fitter:
    """Landmarks ``[T,478,3]`` in pixels -> ParamSequence for one subject."""

    def __init__(self, model: MorphableModel, config: FitConfig | None = None) -> None:
        self.model = model
        self.config = config or FitConfig()
        prior = torch.ones(model.n_coefficients)
        for name in self.config.weak_names:
            if name in model.names:
                prior[model.index(name)] = self.config.weak_factor
        self._prior_scale = prior

    @classmethod
    def for_landmarks(
        cls, landmarks: np.ndarray, config: FitConfig | None = None, personalize: PersonalizeConfig | None = None
    ) -> Fitter:
        """Estimate the subject's identity and personal blendshapes from their frames.

        ``personalize=None`` uses the default refinement; pass ``PersonalizeConfig(rounds=0)`` to keep
        the authored template (ablation, or too few frames to learn from).
        """
        template = MorphableModel.for_subject(neutral_from_landmarks(landmarks))
        fitter = cls(template, config)
        cfg = personalize or PersonalizeConfig()
        if len(landmarks) < cfg.min_frames:
            return fitter
        sample = landmarks[np.linspace(0, len(landmarks) - 1, min(len(landmarks), cfg.max_frames)).astype(int)]
        base_neutral, base_basis = template.neutral.numpy(), template.basis.numpy()
        for _ in range(cfg.rounds):
            fit = fitter.fit(sample)
            targets = model_space_targets(fitter.model, sample, fit.rotation, fit.translation, fit.scale)
            neutral, basis, pose_basis = refine_basis(
                targets, fit.expression, fit.rotation, cfg, base_basis, base_neutral
            )
            fitter = cls(MorphableModel(neutral, basis, template.names, pose_basis), config)
        return fitter

    # ------------------------------------------------------------------ rigid
    def fit_rigid(self, landmarks: np.ndarray) -> FitResult:
        """Similarity fit of the neutral on stable points only: the pose baseline."""
        target = torch.as_tensor(landmarks, dtype=torch.float64)
        source = self.model.neutral.double()
        idx = list(STABLE_POINTS)
        rot, trans, scale = similarity_fit(source[idx], target[:, idx])
        zeros = np.zeros((len(landmarks), self.model.n_coefficients), np.float32)
        return FitResult(zeros, matrix_to_axis_angle(rot).float().numpy(), trans.float().numpy(),
                         scale.float().numpy())  # fmt: skip

    # ------------------------------------------------------------------- full
    def fit(self, landmarks: np.ndarray, fixed: frozenset[str] = frozenset()) -> FitResult:
        """Full fit, chunk by chunk. ``fixed`` names coefficients held at 0 (ablations)."""
        parts: list[FitResult] = []
        previous: FitResult | None = None
        for chunk in self._chunks(landmarks):
            previous = self._fit_chunk(chunk, previous, fixed)
            parts.append(previous)
        return FitResult(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                           ("expression", "rotation", "translation", "scale")))  # fmt: skip

    def _chunks(self, landmarks: np.ndarray) -> Iterator[np.ndarray]:
        step = self.config.chunk_frames
        for start in range(0, len(landmarks), step):
            yield landmarks[start : start + step]

    def _fit_chunk(self, landmarks: np.ndarray, previous: FitResult | None, fixed: frozenset[str]) -> FitResult:
        cfg = self.config
        rigid = self.fit_rigid(landmarks)
        target = torch.as_tensor(landmarks, dtype=torch.float32)
        iod = torch.as_tensor(inter_ocular(landmarks), dtype=torch.float32).clamp_min(1.0)
        n, k = len(landmarks), self.model.n_coefficients
        expr = torch.full((n, k), 0.02, requires_grad=True)
        if previous is not None:
            expr.data[:] = torch.as_tensor(previous.expression[-1])
        rot = torch.as_tensor(rigid.rotation).clone().requires_grad_(True)
        trans = torch.as_tensor(rigid.translation).clone().requires_grad_(True)
        log_scale = torch.as_tensor(rigid.scale).log().clone().requires_grad_(True)
        mask = torch.ones(k)
        for name in fixed:
            mask[self.model.index(name)] = 0
        axis_w = torch.tensor([1.0, 1.0, cfg.z_weight])
        prev_expr = None if previous is None else torch.as_tensor(previous.expression[-1:])
        opt = torch.optim.Adam(
            [{"params": [expr], "lr": cfg.lr_expression}, {"params": [rot, trans, log_scale], "lr": cfg.lr_pose}]
        )
        # translation is in pixels: give Adam a per-pixel scale so one lr fits every resolution
        trans_scale = iod.mean()
        trans0 = trans.detach().clone()
        trans.data.zero_()
        for _ in range(cfg.iterations):
            opt.zero_grad()
            e = expr * mask
            pred = self.model.vertices(e, rot, trans0 + trans * trans_scale, log_scale.exp())
            resid = (pred - target) / iod[:, None, None]
            data = (resid.pow(2) * axis_w).sum(-1).mean()
            prior = (cfg.l1_prior * e.abs() * self._prior_scale).sum(1).mean() + cfg.l2_prior * e.pow(2).sum(1).mean()
            seq = e if prev_expr is None else torch.cat([prev_expr, e])
            smooth = cfg.temporal * (seq[1:] - seq[:-1]).pow(2).sum(1).mean() if len(seq) > 1 else 0.0
            (data + prior + smooth).backward()
            opt.step()
            with torch.no_grad():
                expr.clamp_(0.0, 1.0)
        e = (expr * mask).detach()
        return FitResult(e.numpy(), rot.detach().numpy(), (trans0 + trans * trans_scale).detach().numpy(),
                         log_scale.exp().detach().numpy())  # fmt: skip

    # ---------------------------------------------------------------- helpers
    def reprojection_error(self, landmarks: np.ndarray, result: FitResult) -> np.ndarray:
        """Mean 2D point error per frame ``[T]``, as a fraction of the inter-ocular distance."""
        with torch.no_grad():
            pred = self.model.vertices(torch.as_tensor(result.expression), torch.as_tensor(result.rotation),
                                       torch.as_tensor(result.translation), torch.as_tensor(result.scale))  # fmt: skip
        err = np.linalg.norm(pred.numpy()[..., :2] - landmarks[..., :2], axis=-1).mean(-1)
        return err / inter_ocular(landmarks)

    def to_params(self, result: FitResult, fps: float, frame_size: tuple[int, int], valid: np.ndarray,
                  metadata: dict | None = None) -> ParamSequence:  # fmt: skip
        return ParamSequence(
            fps=fps, model_id=self.model.model_id, coefficient_names=self.model.names,
            expression=result.expression, rotation=result.rotation, translation=result.translation,
            scale=result.scale, valid=valid, frame_size=frame_size, gaze=result.gaze(self.model.names),
            identity=self.model.neutral.numpy(), metadata=metadata or {},
        )  # fmt: skip


__all__ = ["FitConfig", "FitResult", "Fitter", "interpolate_missing", "N_FACE"]
