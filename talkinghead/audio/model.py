"""The audio-to-expression network: audio features per frame -> mouth, jaw and cheek coefficients.

A small temporal convolution network with a bounded, symmetric window (about 0.3 s either side):
a mouth shape depends on the sound being made and its neighbours (coarticulation), not on what was said
a minute ago, and a bounded window keeps the model honest on a 30 s training clip.
Saved like every model in an avatar: ``config.json`` + ``model.safetensors`` (no pickle), one format version.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.audio.features import FEATURE_KINDS
from talkinghead.errors import TalkingHeadError
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.weights import save_weights

FEATURE_CLIP = 6.0  # normalised features beyond this many standard deviations are clipped

FORMAT_NAME = "talkinghead.audio_to_expression"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def is_mouth_name(name: str) -> bool:
    """Coefficients that speech drives: every ``mouth*``, every ``jaw*`` and ``cheekPuff``."""
    return name.startswith(("mouth", "jaw")) or name == "cheekPuff"


# The ARKit coefficients speech moves (tongueOut is left out: a mesh without a tongue cannot show it).
MOUTH_NAMES: tuple[str, ...] = tuple(n for n in ARKIT_NAMES if is_mouth_name(n))


@dataclass
class AudioToExpressionConfig:
    """Everything needed to rebuild the network and its input features."""

    coefficient_names: tuple[str, ...] = MOUTH_NAMES  # outputs, in this order
    feature_kind: str = "logmel"  # "logmel" (always available) or "wav2vec2"
    feature_dim: int = 80  # n_mels for log-mel, hidden size for wav2vec2
    fps: float = 25.0  # frame rate of the features and of the outputs
    hidden: int = 128  # channels: ample for ~25 outputs trained on a minute of speech, fast on a CPU
    layers: int = 4  # dilated blocks; their dilations are chosen to fill the context window exactly
    kernel_size: int = 3
    context_s: float = 0.3  # audio seen on each side of a frame: coarticulation spans about one syllable
    dropout: float = 0.1  # a short clip is easy to memorise
    wav2vec2: str | None = None  # where the wav2vec2 weights were found (feature_kind "wav2vec2" only)
    wav2vec2_layer: int | None = None  # hidden layer used as features (None: the last)

    def __post_init__(self) -> None:
        self.coefficient_names = tuple(self.coefficient_names)
        if self.feature_kind not in FEATURE_KINDS:
            raise TalkingHeadError(f"unknown audio feature kind {self.feature_kind!r}")
        if not self.coefficient_names:
            raise TalkingHeadError("audio-to-expression model needs at least one output coefficient")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise TalkingHeadError("audio-to-expression kernel_size must be odd and at least 3")

    @property
    def n_out(self) -> int:
        return len(self.coefficient_names)

    @property
    def context_frames(self) -> int:
        """Frames seen on each side of the output frame."""
        return max(1, int(round(self.context_s * self.fps)))

    def dilations(self) -> list[int]:
        """Dilation per block, doubling until the window is full; later blocks see only their frame (0)."""
        reach_per_unit = (self.kernel_size - 1) // 2
        budget, out, d = self.context_frames, [], 1
        for _ in range(self.layers):
            step = min(d, budget // reach_per_unit)
            out.append(step)
            budget -= step * reach_per_unit
            d *= 2
        if budget > 0:  # too few layers for the window: widen the last one
            out[-1] += budget // reach_per_unit
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["coefficient_names"] = list(self.coefficient_names)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioToExpressionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TalkingHeadError(f"audio model config has unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise TalkingHeadError(f"audio model config is malformed: {exc}") from None


class _Block(nn.Module):
    """Pre-norm residual block: dilated conv over time, GELU, pointwise conv."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.pad = dilation * (kernel - 1) // 2
        self.conv = nn.Conv1d(channels, channels, kernel if dilation else 1, dilation=max(dilation, 1))
        self.mix = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, T]
        y = self.norm(x.transpose(1, 2)).transpose(1, 2)
        if self.pad:  # repeat the edge frames: the clip's ends are not silence
            y = F.pad(y, (self.pad, self.pad), mode="replicate")
        return x + self.drop(self.mix(F.gelu(self.conv(y))))


class AudioToExpression(nn.Module):
    """Features ``[B, T, F]`` -> expression coefficients ``[B, T, K]`` (K = ``config.n_out``).

    Holds its own statistics: feature mean/std (inputs are normalised inside), target mean/std (outputs
    are predicted in normalised units), the subject's closed-mouth ``rest`` coefficients used for silence,
    and the coefficient range seen in training (``low``/``high``) used to clamp predictions.
    """

    def __init__(self, config: AudioToExpressionConfig) -> None:
        super().__init__()
        self.config = config
        f, k, c = config.feature_dim, config.n_out, config.hidden
        self.register_buffer("feature_mean", torch.zeros(f))
        self.register_buffer("feature_std", torch.ones(f))
        self.register_buffer("target_mean", torch.zeros(k))
        self.register_buffer("target_std", torch.ones(k))
        self.register_buffer("rest", torch.zeros(k))
        self.register_buffer("low", torch.zeros(k))
        self.register_buffer("high", torch.ones(k))
        self.inp = nn.Conv1d(f, c, 1)
        self.blocks = nn.ModuleList(
            _Block(c, config.kernel_size, d, config.dropout) for d in config.dilations()
        )
        self.out_norm = nn.LayerNorm(c)
        self.out = nn.Conv1d(c, k, 1)

    @property
    def names(self) -> tuple[str, ...]:
        return self.config.coefficient_names

    def set_statistics(
        self, features: np.ndarray, targets: np.ndarray, rest: np.ndarray, mask: np.ndarray | None = None
    ) -> None:
        """Store normalisation statistics from training ``features[T,F]`` and ``targets[T,K]``."""
        if mask is not None:
            features, targets = features[mask], targets[mask]
        as_t = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=self.rest.device)  # noqa: E731
        self.feature_mean.copy_(as_t(features.mean(0)))
        self.feature_std.copy_(as_t(np.maximum(features.std(0), 1e-3)))
        self.target_mean.copy_(as_t(targets.mean(0)))
        self.target_std.copy_(as_t(np.maximum(targets.std(0), 1e-2)))
        self.rest.copy_(as_t(rest))
        self.low.copy_(as_t(np.minimum(targets.min(0), rest)))
        self.high.copy_(as_t(np.maximum(targets.max(0), rest)))

    def normalize_features(self, features: torch.Tensor) -> torch.Tensor:
        """Standardise with the training statistics; clip outliers (new microphones, clicks) to 6 sigma."""
        return ((features - self.feature_mean) / self.feature_std).clamp(-FEATURE_CLIP, FEATURE_CLIP)

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised features ``[B,T,F]`` -> coefficients ``[B,T,K]`` in coefficient units (not clamped)."""
        h = self.inp(x.transpose(1, 2))
        for block in self.blocks:
            h = block(h)
        h = self.out_norm(h.transpose(1, 2)).transpose(1, 2)
        return self.out(h).transpose(1, 2) * self.target_std + self.target_mean

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.forward_normalized(self.normalize_features(features))

    def gate(self, expression: torch.Tensor, activity: torch.Tensor) -> torch.Tensor:
        """Pull ``expression[...,T,K]`` to rest where ``activity[...,T]`` (0..1) is low; clamp to range."""
        gated = self.rest + activity[..., None] * (expression - self.rest)
        return torch.maximum(torch.minimum(gated, self.high), self.low)

    # ------------------------------------------------------------------ I/O
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``, each atomically."""
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": self.config.to_dict()}
        return save_weights(self, directory, header, {"format": FORMAT_NAME, "version": str(FORMAT_VERSION)})

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, device: str | torch.device = "cpu"
    ) -> AudioToExpression:
        """Read exactly what ``save_pretrained`` wrote; clear errors for missing, foreign or newer files."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise TalkingHeadError(f"audio model {directory} lacks {path.name}")
        try:
            header = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TalkingHeadError(f"{config_path} is not valid JSON: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise TalkingHeadError(f"{config_path} is not an audio-to-expression model config")
        if header.get("version") != FORMAT_VERSION:
            raise TalkingHeadError(
                f"{directory} holds audio model format version {header.get('version')}, "
                f"this talkinghead reads version {FORMAT_VERSION}"
            )
        if not isinstance(header.get("config"), dict):
            raise TalkingHeadError(f"{config_path} has no 'config' section")
        model = cls(AudioToExpressionConfig.from_dict(header["config"]))
        try:
            state = load_file(str(weights_path))
        except (SafetensorError, OSError) as exc:
            raise TalkingHeadError(f"{weights_path} is not a readable safetensors file: {exc}") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise TalkingHeadError(f"{weights_path} does not match its config.json: {first}") from None
        return model.to(device).eval()


@contextlib.contextmanager
def cpu_compute(threads: int | None = 1) -> Iterator[None]:
    """Fast CPU settings for this small network inside the block, restored afterwards.

    Subnormal floats are flushed to zero: GELU of strongly negative inputs (features of silence) yields
    them, and they make x86 CPUs 10-50x slower. Intra-op threads are limited (``threads``; None: leave
    as is): the layers are so small that thread synchronisation costs more than it saves, and on a busy
    machine two threads were measured 10-30x slower than one.
    """
    flushed = torch.set_flush_denormal(True)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, min(threads, previous)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        if flushed:
            torch.set_flush_denormal(False)


def scatter_coefficients(
    values: np.ndarray, value_names: tuple[str, ...], names: tuple[str, ...], base: np.ndarray | None = None
) -> np.ndarray:
    """Place ``values[T, k]`` (named ``value_names``) into a full ``[T, K]`` array over ``names``.

    Coefficients the values do not name come from ``base[K]`` (default zeros), e.g. the subject's
    resting expression, so eyes and brows stay put while speech moves the mouth.
    """
    values = np.asarray(values, np.float32)
    out = np.zeros((len(values), len(names)), np.float32)
    if base is not None:
        out[:] = np.asarray(base, np.float32)
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in value_names if n not in index]
    if missing:
        raise TalkingHeadError(f"coefficient(s) {', '.join(missing[:5])} are not in the target model")
    out[:, [index[n] for n in value_names]] = values
    return out
