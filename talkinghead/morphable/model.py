"""The embedded morphable model: MediaPipe Face Mesh topology, the subject's neutral, ARKit blendshapes.

``shape = neutral + sum_k w_k * basis_k + sum_j r_j * pose_basis_j`` in model space (IOD = 1,
x right, y down, z away), then posed with weak perspective: ``pixels = scale * R @ shape + translation``.
The pose correctives (linear in the axis-angle ``r``, as in FLAME) let silhouette landmarks (face
outline, forehead) slide over the surface as the head turns; they are learned per subject and are
zero for the generic model.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.morphable.blendshapes import author_basis
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.morphable.rotation import axis_angle_to_matrix

MODEL_ID = "mediapipe478-arkit52/1"
N_POINTS = 478
DATA = Path(__file__).parent / "data"


class MorphableModel:
    """A subject-specific model: its neutral (identity) plus blendshapes scaled to that face."""

    model_id = MODEL_ID

    def __init__(
        self, neutral: np.ndarray, basis: np.ndarray | None = None, names: tuple[str, ...] = ARKIT_NAMES,
        pose_basis: np.ndarray | None = None,
    ):  # fmt: skip
        neutral = np.asarray(neutral, np.float32)
        if neutral.shape != (N_POINTS, 3) or not np.isfinite(neutral).all():
            raise TalkingHeadError(f"identity must be a finite [{N_POINTS},3] array, got {neutral.shape}")
        self.names = tuple(names)
        self.neutral = torch.from_numpy(neutral)
        self.basis = torch.from_numpy(author_basis(neutral, self.names) if basis is None else np.asarray(basis))
        self.pose_basis = torch.zeros(3, N_POINTS, 3) if pose_basis is None else torch.as_tensor(pose_basis).float()
        topology = np.load(DATA / "topology.npz")
        self.triangles = topology["triangles"]
        self.regions = {k: topology[k] for k in topology.files if k != "triangles"}

    @classmethod
    def for_subject(cls, identity: np.ndarray) -> MorphableModel:
        return cls(identity)

    @classmethod
    def default(cls) -> MorphableModel:
        """The generic face shipped with the package (no real person's shape)."""
        return cls(np.load(DATA / "generic_neutral.npy"))

    @property
    def n_coefficients(self) -> int:
        return len(self.names)

    @cached_property
    def _flat_basis(self) -> torch.Tensor:
        return self.basis.reshape(len(self.names), -1)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise TalkingHeadError(f"unknown coefficient {name!r}; valid names: {', '.join(self.names)}") from None

    def shape(self, expression: torch.Tensor, rotation: torch.Tensor | None = None) -> torch.Tensor:
        """``expression [...,K]`` (and the head ``rotation [...,3]`` for correctives) -> ``[...,N,3]``."""
        expression = torch.as_tensor(expression, dtype=self.basis.dtype)
        flat = expression @ self._flat_basis.to(expression.device)
        if rotation is not None:
            rotation = torch.as_tensor(rotation, dtype=self.basis.dtype, device=expression.device)
            flat = flat + rotation @ self.pose_basis.reshape(3, -1).to(expression.device)
        return self.neutral.to(expression.device) + flat.reshape(*expression.shape[:-1], N_POINTS, 3)

    @staticmethod
    def project(shape: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor, scale: torch.Tensor):
        """Weak perspective: ``[...,N,3]`` model space -> pixels (x, y) and depth in pixels (z)."""
        rot = axis_angle_to_matrix(torch.as_tensor(rotation, dtype=shape.dtype))
        posed = torch.einsum("...ij,...nj->...ni", rot, shape)
        scale = torch.as_tensor(scale, dtype=shape.dtype)[..., None, None]
        return scale * posed + torch.as_tensor(translation, dtype=shape.dtype)[..., None, :]

    def vertices(self, expression, rotation, translation, scale) -> torch.Tensor:
        """Posed points in pixels ``[...,N,3]`` for parameters with leading dims ``[...]``."""
        return self.project(self.shape(expression, rotation), rotation, translation, scale)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything that makes this subject's model, for safetensors."""
        return {"neutral": self.neutral, "basis": self.basis, "pose_basis": self.pose_basis}

    @classmethod
    def from_state_dict(cls, tensors: dict[str, torch.Tensor], names: tuple[str, ...] = ARKIT_NAMES):
        try:
            return cls(tensors["neutral"].numpy(), tensors["basis"].numpy(), names, tensors.get("pose_basis"))
        except KeyError as exc:
            raise TalkingHeadError(f"morphable model data lacks {exc}") from None
