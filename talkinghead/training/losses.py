"""Image losses for both training stages: L1, SSIM, image gradients, velocity, mouth weighting.

All take images ``[B,3,H,W]`` in [0, 1] and optional per-pixel weights ``[B,1,H,W]`` (a weight of 0
leaves a pixel unsupervised: pseudo targets only cover what the source frame saw).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from talkinghead.generator.guide import MASK_NAMES

_MASK0 = 3  # guide channel of the first mask


@dataclass(frozen=True)
class LossConfig:
    l1: float = 1.0
    # SSIM carries structure (edges of teeth and lids) that L1 averages away; 0.2 is the usual
    # L1/SSIM balance of image-reconstruction work
    ssim: float = 0.2
    gradient: float = 0.5
    # consecutive frames: penalise wrong motion, the main source of flicker
    velocity: float = 1.0
    # the mouth is small but is what viewers watch: weigh its pixels this much more
    mouth_weight: float = 4.0
    eye_weight: float = 1.0
    # the mouth mask is grown by this fraction of the crop so lip edges and teeth count fully
    mouth_dilate: float = 0.03
    perceptual: float = 0.1  # used only when VGG weights are on disk (never downloaded)


def region_weights(guide: torch.Tensor, config: LossConfig) -> torch.Tensor:
    """``[B,1,H,W]`` per-pixel weights from the guide's region masks (mouth and eyes count more)."""
    mouth = guide[:, _MASK0 + MASK_NAMES.index("lips")] + guide[:, _MASK0 + MASK_NAMES.index("mouth_inner")]
    mouth = mouth.clamp(0, 1)[:, None]
    k = max(int(round(config.mouth_dilate * guide.shape[-1])), 0) * 2 + 1
    if k > 1:
        mouth = F.max_pool2d(mouth, k, stride=1, padding=k // 2)
    eyes = guide[:, _MASK0 + MASK_NAMES.index("eyes"), None]
    return 1 + config.mouth_weight * mouth + config.eye_weight * eyes


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    diff = (pred - target).abs()
    if weight is None:
        return diff.mean()
    return (diff * weight).sum() / (weight.sum() * pred.shape[1]).clamp_min(1e-6)


@lru_cache(maxsize=4)
def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM ``[B,C,H,W]`` (Gaussian 11x11, sigma 1.5, images in [0, 1])."""
    c = a.shape[1]
    g = _gauss().to(a.device, a.dtype)
    kx = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    ky = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    pad = g.numel() // 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    return weighted_l1(ssim_map(pred, target), torch.ones_like(pred), weight)


def gradient_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 between horizontal and vertical image differences: sharp edges, not blurry averages."""
    loss = pred.new_zeros(())
    for dim in (-1, -2):
        dp, dt = torch.diff(pred, dim=dim), torch.diff(target, dim=dim)
        w = None if weight is None else weight.narrow(dim, 0, weight.shape[dim] - 1)
        loss = loss + weighted_l1(dp, dt, w)
    return loss


def velocity_loss(
    pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Frames come in consecutive pairs ``(2i, 2i+1)``: match the change between them, not just each frame."""
    dp = pred[1::2] - pred[0::2]
    dt = target[1::2] - target[0::2]
    w = None if weight is None else torch.minimum(weight[0::2], weight[1::2])
    return weighted_l1(dp, dt, w)


def reconstruction_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None,
    config: LossConfig,
    pairs: bool = True,
    perceptual: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the image losses; returns the total and its parts (for the progress bar)."""
    parts = {
        "l1": config.l1 * weighted_l1(pred, target, weight),
        "ssim": config.ssim * ssim_loss(pred, target, weight),
        "grad": config.gradient * gradient_loss(pred, target, weight),
    }
    if pairs and pred.shape[0] >= 2:
        parts["vel"] = config.velocity * velocity_loss(pred, target, weight)
    if perceptual is not None:
        parts["perc"] = config.perceptual * perceptual(pred, target)
    total = sum(parts.values())
    return total, {k: float(v.detach()) for k, v in parts.items()}


# ----------------------------------------------------------------------------- optional perceptual
_VGG_FILES = ("vgg16-397923af.pth",)  # torchvision's own file name for VGG-16


def find_vgg_weights() -> Path | None:
    """A torchvision VGG checkpoint already in the local torch cache, or None (never downloads)."""
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    for name in _VGG_FILES:
        if (hub / name).is_file():
            return hub / name
    return None


class PerceptualLoss(torch.nn.Module):
    """L1 between VGG-16 features (first three blocks); only built when the weights are on disk."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torchvision.models import vgg16  # optional dependency, imported only here

        net = vgg16()
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.blocks = net.features[:16].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = (pred - self.mean) / self.std
        b = (target - self.mean) / self.std
        loss = pred.new_zeros(())
        for i, layer in enumerate(self.blocks):
            a, b = layer(a), layer(b)
            if i in (3, 8, 15):
                loss = loss + (a - b).abs().mean()
        return loss


def maybe_perceptual() -> PerceptualLoss | None:
    weights = find_vgg_weights()
    if weights is None:
        return None
    try:
        return PerceptualLoss(weights)
    except Exception:  # torchvision missing or a different checkpoint: train without it
        return None
