"""Personalised blendshapes: adapt the authored basis and neutral to one subject's real motion.

Authored fields capture what each expression means, not how this face actually moves. As in
example-based facial rigging (Li et al. 2010), we alternate: fit coefficients and pose, then solve,
per vertex, a ridge regression for the neutral and every blendshape, pulled towards the authored
template and confined to the region the template moves. Coefficients keep their meaning (a smile
is still ``mouthSmile*``) while the reprojection error drops to a fraction of the template's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from talkinghead.morphable.model import MorphableModel  # noqa: F401  (type context)
from talkinghead.morphable.rotation import axis_angle_to_matrix


@dataclass
class PersonalizeConfig:
    rounds: int = 3  # fit/refine alternations; little changes after the third
    min_frames: int = 30  # below this the template is kept; the ridge keeps 30+ frames well-posed
    max_frames: int = 400  # frames used for the regression: enough samples for 53 unknowns per point
    ridge: float = 0.5  # pull towards the template, in "frames' worth" of evidence
    neutral_ridge: float = 5.0
    pose_ridge: float = 0.5  # pose correctives start from zero
    support_floor: float = 0.08  # a blendshape may move a point if its template moves it >= this share of its max


def model_space_targets(model: MorphableModel, landmarks: np.ndarray, rotation, translation, scale) -> np.ndarray:
    """Undo the pose: landmarks ``[T,N,3]`` in pixels -> model space."""
    rot = axis_angle_to_matrix(torch.as_tensor(rotation, dtype=torch.float64))
    centred = torch.as_tensor(landmarks, dtype=torch.float64) - torch.as_tensor(translation, dtype=torch.float64)[
        :, None
    ]
    local = torch.einsum("bji,bnj->bni", rot, centred) / torch.as_tensor(scale, dtype=torch.float64)[:, None, None]
    return local.numpy()


def support_weights(template: np.ndarray, floor: float) -> np.ndarray:
    """``[K,N]`` in [0,1]: where each authored blendshape is allowed to move points."""
    mag = np.linalg.norm(template, axis=-1)
    rel = mag / np.maximum(mag.max(1, keepdims=True), 1e-9)
    return np.clip((rel - floor / 2) / floor, 0.0, 1.0)


def refine_basis(
    targets: np.ndarray, expression: np.ndarray, rotation: np.ndarray, config: PersonalizeConfig,
    template: np.ndarray, template_neutral: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per-vertex ridge regression ``targets ~ neutral + expression @ basis + rotation @ pose_basis``.

    Returns (neutral ``[N,3]``, basis ``[K,N,3]``, pose_basis ``[3,N,3]``).
    """
    t, n, _ = targets.shape
    k = expression.shape[1]
    design = np.concatenate([np.ones((t, 1)), expression, rotation], 1).astype(np.float64)  # [T,1+K+3]
    gram = design.T @ design
    support = support_weights(template, config.support_floor)  # [K,N]
    # penalty per (vertex, unknown): ridge where supported, effectively infinite elsewhere
    penalty = np.concatenate([
        np.full((1, n), config.neutral_ridge),
        config.ridge / np.maximum(support, 1e-4),
        np.full((3, n), config.pose_ridge),
    ], 0).T  # [N,1+K+3]  # fmt: skip
    prior = np.concatenate([template_neutral[None], template, np.zeros((3, n, 3))], 0)
    rhs = np.einsum("tk,tnc->nkc", design, targets) + penalty[..., None] * prior.transpose(1, 0, 2)
    system = gram[None] + np.einsum("nk,kj->nkj", penalty, np.eye(design.shape[1]))
    solved = np.linalg.solve(system, rhs).transpose(1, 0, 2).astype(np.float32)  # [1+K+3,N,3]
    return solved[0], solved[1 : 1 + k], solved[1 + k :]
