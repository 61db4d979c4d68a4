"""A small frozen segmentation head for stage 2's geometric-consistency loss.

Trained on real frames (image -> region masks rasterized from the tracked mesh), it then judges
generated frames for parameters the video never showed: if the driving mesh opens the mouth wider
than any real frame, the generated mouth must be segmented as open as the mesh says.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from talkinghead.errors import TalkingHeadError
from talkinghead.generator.guide import MASK_NAMES
from talkinghead.weights import save_weights

SEG_MASKS = ("face", "lips", "mouth_inner", "eyes", "brows")  # irises are too small to judge at this size
_MASK0 = 3


@dataclass
class SegmenterConfig:
    # masks are judged at 64x64: enough for lips and eye openings, cheap next to the generator
    size: int = 64
    width: int = 32


class Segmenter(nn.Module):
    """``image [B,3,H,W] in [0,1] -> mask logits [B,M,size,size]``."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or SegmenterConfig()
        w = c.width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=2, dilation=2), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=4, dilation=4), nn.SiLU(),
            nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
            nn.Conv2d(2 * w, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, len(SEG_MASKS), 1),
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = self.config.size
        if image.shape[-1] != size:
            image = F.interpolate(image, size=(size, size), mode="area")
        return self.net(image * 2 - 1)

    def targets(self, guide: torch.Tensor) -> torch.Tensor:
        """Mask targets ``[B,M,size,size]`` from guide maps (area-averaged: soft edges)."""
        idx = [_MASK0 + MASK_NAMES.index(n) for n in SEG_MASKS]
        masks = guide[:, idx]
        size = self.config.size
        return F.interpolate(masks, size=(size, size), mode="area") if masks.shape[-1] != size else masks

    def loss(self, image: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        logits = self(image)
        target = self.targets(guide)
        # small regions (mouth interior) would vanish in a plain mean: weigh each mask by its rarity
        pos = target.mean((0, 2, 3), keepdim=True).clamp(0.01, 0.5)
        weight = torch.where(target > 0.5, 0.5 / pos, 1.0)
        return F.binary_cross_entropy_with_logits(logits, target, weight=weight)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        return save_weights(self, directory, {"masks": list(SEG_MASKS), **asdict(self.config)})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> Segmenter:
        directory = Path(directory)
        try:
            data = json.loads((directory / "config.json").read_text())
            model = cls(SegmenterConfig(size=int(data["size"]), width=int(data["width"])))
            model.load_state_dict(load_file(str(directory / "model.safetensors"), device=str(device)))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise TalkingHeadError(
                f"cannot read the segmenter in {directory}: {exc}".splitlines()[0]
            ) from None
        return model.to(device).eval().requires_grad_(False)
