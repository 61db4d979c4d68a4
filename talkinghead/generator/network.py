"""The personalized generator: a coordinate-based network from geometry guide + parameters to RGB + alpha.

Every output pixel sees
- a Fourier encoding of its crop position and a learned screen-space feature grid (background,
  torso: things that stay put in the crop), computed once per call and shared by the batch;
- the geometry guide (canonical surface coordinates, region masks, depth, head-plane coordinates);
- features looked up in two learned neural textures: one indexed by the canonical surface
  coordinate (skin detail that moves with the expression: wrinkles, lips), one indexed by the
  head-plane coordinate (hair, ears, upper teeth: what moves rigidly with the skull);
- the parameter vector (expression, rotation, gaze) through FiLM on every hidden layer.
A pixel-wise MLP (1x1 convolutions) and one 3x3 convolution at the end (edges, local consistency)
turn these into RGB and alpha. Alpha says where the generated crop replaces the background frame.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from talkinghead.errors import TalkingHeadError
from talkinghead.generator.guide import CHANNEL_NAMES, GUIDE_CHANNELS
from talkinghead.weights import save_weights

SUPPORTED_RESOLUTIONS = (64, 128, 256, 512)  # 64 only for tests; 128 fast, 256 default, 512 on a GPU
_CANON = slice(0, 3)
_HEAD = slice(GUIDE_CHANNELS - 2, GUIDE_CHANNELS)


@dataclass
class GeneratorConfig:
    resolution: int = 256
    # expression K + rotation 3 + gaze 4; set from the morphable model when an avatar is built
    param_dim: int = 59
    guide_channels: int = GUIDE_CHANNELS
    # octaves of the crop-position encoding: 2^5 cycles resolve ~1/64 of the crop, finer detail comes
    # from the textures, which do not flicker with position as high frequencies would
    fourier_bands: int = 6
    # neural textures: a coarse and a fine level each (coarse generalises, fine holds detail);
    # the fine level is half the crop resolution since the face covers about half the crop
    texture_channels: int = 8
    texture_coarse: int = 32
    screen_channels: int = 8
    screen_grid: int = 64
    hidden: int = 64  # 64 wide x 3 layers at 128x128 (see stride) keeps 256 output real time on 2 CPU cores
    layers: int = 3
    film_hidden: int = 128
    # feed the head rotation to FiLM too? The guide already carries the pose geometrically; giving it
    # to FiLM as well lets the network memorise per-pose looks that do not carry over to new poses
    film_rotation: bool = False
    refine: bool = True

    def __post_init__(self) -> None:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise TalkingHeadError(
                f"unsupported resolution {self.resolution}; "
                f"choose one of {', '.join(map(str, SUPPORTED_RESOLUTIONS))}"
            )

    @property
    def texture_fine(self) -> int:
        return max(self.texture_coarse, self.resolution // 2)

    @property
    def stride(self) -> int:
        """How much coarser than the output the MLP runs: 1 up to 128, then the MLP stays at 128+."""
        return 1 if self.resolution <= 128 else 2

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class NeuralTexture(nn.Module):
    """Two-level learned 2D feature grid sampled at coordinates in [-1, 1] (zeros outside).

    The coarse level is upsampled onto the fine grid and both are sampled in one ``grid_sample``.
    """

    def __init__(self, channels: int, coarse: int, fine: int) -> None:
        super().__init__()
        self.coarse = nn.Parameter(torch.randn(1, channels, coarse, coarse) * 0.1)
        self.fine = nn.Parameter(torch.zeros(1, channels, fine, fine))

        self._cache: torch.Tensor | None = None

    def levels(self) -> torch.Tensor:
        """``[1, 2C, fine, fine]``: the coarse level resampled onto the fine grid, then the fine level."""
        if not self.training and self._cache is not None and self._cache.device == self.fine.device:
            return self._cache
        size = self.fine.shape[-2:]
        coarse = F.interpolate(self.coarse, size=size, mode="bilinear", align_corners=False)
        out = torch.cat([coarse, self.fine], 1)
        if not self.training:
            self._cache = out.detach()
        return out

    def train(self, mode: bool = True) -> NeuralTexture:
        self._cache = None
        return super().train(mode)

    def forward(self, coords: torch.Tensor, texture: torch.Tensor | None = None) -> torch.Tensor:
        """``coords [B,2,H,W]`` -> features ``[B,2C,H,W]`` (or of ``texture``, a derived grid)."""
        tex = self.levels() if texture is None else texture
        grid = coords.permute(0, 2, 3, 1)
        return F.grid_sample(tex.expand(coords.shape[0], -1, -1, -1), grid, mode="bilinear",
                             padding_mode="zeros", align_corners=False)  # fmt: skip


def _fused_linear_available(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and _HAS_FUSED


def _fused_linear_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "swish", [], "")


_HAS_FUSED = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class Generator(nn.Module):
    """``forward(guide [B,C,H,W], params [B,P]) -> (rgb [B,3,H,W] in [0,1], alpha [B,1,H,W] in [0,1])``.

    The MLP runs on a grid ``stride`` times coarser than the output (pixel-shuffled back up), and the
    fine texture levels are added at full resolution: this keeps 256x256 near real time on a CPU.
    Inside, the layout is pixel-major ``[B, pixels, channels]`` and FiLM is folded into per-sample
    weights, so each layer is one matrix product with its activation (memory traffic dominates on a CPU).
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = c = config
        s = c.stride
        self.face_texture = NeuralTexture(c.texture_channels, c.texture_coarse, c.texture_fine)
        self.head_texture = NeuralTexture(c.texture_channels, c.texture_coarse, c.texture_fine)
        self.screen = nn.Parameter(torch.randn(1, c.screen_channels, c.screen_grid, c.screen_grid) * 0.1)
        static_in = 4 * c.fourier_bands + c.screen_channels
        dynamic_in = c.guide_channels + 4 * c.texture_channels
        self.static_in = nn.Conv2d(static_in, c.hidden, 1)
        self.dynamic_in = nn.Parameter(torch.randn(c.hidden, dynamic_in) / math.sqrt(dynamic_in))
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(c.hidden, c.hidden) / math.sqrt(c.hidden)) for _ in range(c.layers - 1)
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(c.hidden)) for _ in range(c.layers - 1))
        self.film = nn.Sequential(
            nn.Linear(c.param_dim, c.film_hidden),
            nn.SiLU(),
            nn.Linear(c.film_hidden, 2 * c.hidden * c.layers),
        )
        nn.init.zeros_(self.film[-1].weight)
        nn.init.zeros_(self.film[-1].bias)
        self.out = nn.Linear(c.hidden, 4 * s * s)
        # full-resolution detail from the fine texture levels (only when the MLP runs coarser)
        self.detail_face = nn.Conv2d(c.texture_channels, 4, 1) if s > 1 else None
        self.detail_head = nn.Conv2d(c.texture_channels, 4, 1) if s > 1 else None
        self.refine = nn.Conv2d(4, 4, 3, padding=1) if c.refine else None
        for layer in (self.detail_face, self.detail_head, self.refine):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.out.bias.view(s * s, 4)[:, 3] = 2.0  # start opaque: the crop is shown until taught otherwise
        self._static_cache: tuple[tuple, torch.Tensor] | None = None
        self._detail_cache: tuple[torch.Tensor, torch.Tensor] | None = None

    # ---------------------------------------------------------------- inputs
    def _position(self, size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        lin = (torch.arange(size, device=device, dtype=dtype) + 0.5) / size * 2 - 1
        y, x = torch.meshgrid(lin, lin, indexing="ij")
        xy = torch.stack([x, y])  # [2,H,W]
        freqs = (2.0 ** torch.arange(self.config.fourier_bands, device=device, dtype=dtype)) * math.pi
        ang = xy[:, None] * freqs[None, :, None, None]  # [2,L,H,W]
        enc = torch.cat([ang.sin(), ang.cos()], 0).reshape(-1, size, size)
        return enc[None]

    def static_features(self, size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """First-layer contribution of the frame-independent inputs ``[size*size, hidden]``.

        Cached in eval mode (rendering), recomputed in training where the weights change.
        """
        key = (size, device, dtype)
        if not self.training and self._static_cache is not None and self._static_cache[0] == key:
            return self._static_cache[1]
        screen = F.interpolate(self.screen.to(dtype), size=(size, size), mode="bilinear", align_corners=False)
        out = self.static_in(torch.cat([self._position(size, device, dtype), screen], 1))[0].flatten(1).t()
        if not self.training:
            self._static_cache = (key, out.detach().contiguous())
        return out

    def _detail_textures(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine texture levels projected to the 4 output channels (cached in eval mode)."""
        cache = self._detail_cache
        if not self.training and cache is not None and cache[0].device == self.face_texture.fine.device:
            return cache
        textures = (self.detail_face(self.face_texture.fine), self.detail_head(self.head_texture.fine))
        if not self.training:
            self._detail_cache = (textures[0].detach(), textures[1].detach())
        return textures

    def train(self, mode: bool = True) -> Generator:
        self._static_cache = None
        self._detail_cache = None
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):  # noqa: ANN002, ANN003 (nn.Module's signature)
        self.train(self.training)  # drop caches computed from the old weights
        return super().load_state_dict(*args, **kwargs)

    # --------------------------------------------------------------- forward
    def forward(
        self, guide: torch.Tensor, params: torch.Tensor, window: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Render the crop, or with ``window=(top, left)`` only the patch of the crop that ``guide`` covers.

        Patches (multiples of the stride, inside the crop) make training steps cheaper: the network is
        pixel-wise, so a patch renders exactly as it would inside the whole crop (but at its border,
        where the final 3x3 convolution sees zero padding instead of neighbours).
        """
        c, s = self.config, self.config.stride
        b = guide.shape[0]
        low = F.avg_pool2d(guide, s) if s > 1 else guide
        hl, wl = low.shape[-2:]
        face = self.face_texture(low[:, _CANON][:, :2]) * low[:, 3:4]
        head = self.head_texture(low[:, _HEAD])
        # pixel-major [B,P,D]: one copy, and each layer becomes a plain (P x D) @ (D x hidden) product;
        # a constant 1 channel carries the first layer's FiLM shift
        one = torch.ones_like(low[:, :1])
        dyn = torch.cat([t.permute(0, 2, 3, 1) for t in (low, face, head, one)], -1).reshape(b, hl * wl, -1)
        if not c.film_rotation:  # params are [expression K, rotation 3, gaze 4]
            params = torch.cat([params[:, :-7], torch.zeros_like(params[:, -7:-4]), params[:, -4:]], 1)
        film = self.film(params).view(b, c.layers, 2, c.hidden)
        gain, shift = 1 + film[:, :, 0], film[:, :, 1]  # [B,L,hidden]
        static = self.static_features(c.resolution // s, guide.device, guide.dtype)  # [P,hidden]
        if window is not None or hl * s != c.resolution:
            top, left = (0, 0) if window is None else (window[0] // s, window[1] // s)
            full = c.resolution // s
            static = static.view(full, full, -1)[top : top + hl, left : left + wl].reshape(hl * wl, -1)
        # FiLM folded into per-sample weights: gain * (W x) + shift = (gain W) x + shift; the static
        # (position, screen) part is a per-pixel bias shared by every frame
        first = torch.cat([gain[:, 0, :, None] * self.dynamic_in, shift[:, 0, :, None]], 2)  # [B,hidden,D+1]
        weights = [gain[:, i, :, None] * w for i, w in enumerate(self.weights, start=1)]  # [B,hidden,hidden]
        biases = [
            gain[:, i] * bias + shift[:, i] for i, bias in enumerate(self.biases, start=1)
        ]  # [B,hidden]
        if not torch.is_grad_enabled() and _fused_linear_available(dyn):
            # inference, one frame at a time (stays in cache): oneDNN's linear + bias + SiLU in one pass
            outs = []
            for k in range(b):
                x = F.silu(torch.addmm(static, dyn[k], first[k].t()), inplace=True)
                for weight, bias in zip(weights, biases, strict=True):
                    x = _fused_linear_silu(x, weight[k], bias[k])
                outs.append(F.linear(x, self.out.weight, self.out.bias))
            out = torch.stack(outs)
        else:
            x = F.silu(torch.baddbmm(static[None], dyn, first.transpose(1, 2)))
            for weight, bias in zip(weights, biases, strict=True):
                x = F.silu(torch.baddbmm(bias[:, None], x, weight.transpose(1, 2)))
            out = F.linear(x, self.out.weight, self.out.bias)  # [B,P,4*s*s]
        out = out.view(b, hl, wl, 4 * s * s).permute(0, 3, 1, 2)
        if s > 1:
            out = F.pixel_shuffle(out, s)
            # the detail projection is linear, so it is applied to the textures before sampling:
            # two 4-channel lookups at full resolution instead of 16 channels and a convolution
            face_detail, head_detail = self._detail_textures()
            out = out + self.face_texture(guide[:, _CANON][:, :2], face_detail) * guide[:, 3:4]
            out = out + self.head_texture(guide[:, _HEAD], head_detail)
        if self.refine is not None:
            out = out + self.refine(out)
        return torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:4])

    # ------------------------------------------------------------------- I/O
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (each atomically) into ``directory``."""
        return save_weights(self, directory, {"channels": list(CHANNEL_NAMES), **asdict(self.config)})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
        directory = Path(directory)
        try:
            data = json.loads((directory / "config.json").read_text())
            state = load_file(str(directory / "model.safetensors"), device=str(device))
        except (OSError, ValueError) as exc:
            raise TalkingHeadError(f"cannot read the generator in {directory}: {exc}") from None
        if data.get("channels", list(CHANNEL_NAMES)) != list(CHANNEL_NAMES):
            raise TalkingHeadError(
                f"generator in {directory} expects other guide channels; retrain the avatar"
            )
        model = cls(GeneratorConfig.from_dict(data))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise TalkingHeadError(
                f"generator weights in {directory} do not match its config: {first}"
            ) from None
        return model.to(device)
