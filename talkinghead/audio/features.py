"""Audio features at the video frame rate: one feature row per video frame.

Every extractor returns ``[T, F]`` float32 with ``T = round(len(audio) / sr * fps)``. Row ``t`` describes
the audio heard while video frame ``t`` is on screen, i.e. the span ``[t / fps, (t + 1) / fps)`` seconds,
so features and fitted expressions line up frame for frame whatever the sample rate or frame rate.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from talkinghead.errors import TalkingHeadError

FEATURE_KINDS = ("logmel", "wav2vec2")


@dataclass(frozen=True)
class LogMelConfig:
    n_mels: int = 80  # the usual resolution for speech models (Tacotron, Wav2Lip)
    window_s: float = 0.025  # 25 ms: the standard speech analysis window, covers a pitch period or two
    fine_hop_s: float = 0.005  # analysis hop before averaging into video frames; finer than any frame rate
    fmin: float = 55.0  # just below the lowest voice fundamentals
    fmax: float = 7600.0  # where speech energy ends; capped at Nyquist for low sample rates
    floor: float = 1e-6  # power floor for the log (~-60 dB re a full-scale tone): silence is flat


@dataclass(frozen=True)
class LevelConfig:
    """Loudness normalisation and the energy-based voice-activity mask."""

    frame_s: float = 0.025  # RMS window, the same as the mel window
    hop_s: float = 0.005
    target_dbfs: float = -20.0  # loud speech frames are brought to this level, whatever the recording gain
    reference_percentile: float = 95.0  # "loud speech": robust to clicks, present in any clip with speech
    max_gain_db: float = 20.0  # never lift background noise of a silent file up to speech level
    silence_dbfs: float = -55.0  # frames below this are silent in any recording (room tone, hiss)
    relative_db: float = -35.0  # frames this far under the loud reference are pauses
    noise_margin_db: float = 8.0  # frames must stand this far over the quiet floor (5th percentile)
    noise_percentile: float = 5.0
    soft_db: float = 2.0  # width of the soft step from silent to voiced
    # lips move ~0.15 s before a sound starts and settle after it ends; this also bridges short dips
    hangover_s: float = 0.15
    closing_s: float = 0.1  # the mouth takes about this long to close (or open) at a pause


LOGMEL = LogMelConfig()
LEVEL = LevelConfig()


def _check_audio(audio: np.ndarray, sr: float, fps: float) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:  # [channels, samples] as librosa gives, or [samples, channels]
        audio = audio.mean(axis=0 if audio.shape[0] < audio.shape[1] else 1)
    if audio.ndim != 1:
        raise TalkingHeadError(f"audio must be mono samples [S], got shape {audio.shape}")
    if not (sr > 0 and fps > 0):
        raise TalkingHeadError(f"sample rate and frame rate must be positive (sr={sr}, fps={fps})")
    if n_video_frames(len(audio), sr, fps) < 1:
        raise TalkingHeadError("audio is empty (shorter than one video frame)")
    if not np.all(np.isfinite(audio)):
        raise TalkingHeadError("audio holds NaN or infinite samples")
    return audio


def n_video_frames(n_samples: int, sr: float, fps: float) -> int:
    """The number of video frames that ``n_samples`` of audio cover: ``round(n_samples / sr * fps)``."""
    return int(round(n_samples / sr * fps))


def _area_resample(values: np.ndarray, hop_s: float, n_out: int, fps: float) -> np.ndarray:
    """Average rows sampled every ``hop_s`` (row i centred at ``i * hop_s``) over each video frame's span.

    Works for any ratio of rates, integer or not: the running integral is interpolated at the frame edges.
    ``values[M, F]`` -> ``[n_out, F]``.
    """
    m = len(values)
    edges = (np.arange(m + 1) - 0.5) * hop_s
    integral = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values * hop_s, axis=0)])
    bounds = np.clip(np.arange(n_out + 1) / fps, edges[0], edges[-1])
    pos = np.interp(bounds, edges, np.arange(m + 1, dtype=np.float64))
    lo = np.clip(np.floor(pos).astype(np.int64), 0, m - 1)
    frac = (pos - lo)[:, None]
    at = integral[lo] + frac * (integral[lo + 1] - integral[lo])
    width = np.maximum(np.diff(bounds), 1e-9)[:, None]
    return (np.diff(at, axis=0) / width).astype(np.float32)


def _interp_rows(x_src: np.ndarray, values: np.ndarray, x_dst: np.ndarray) -> np.ndarray:
    """Linear interpolation of each column of ``values[M, F]`` from times ``x_src`` to ``x_dst``."""
    if len(x_src) == 1:
        return np.repeat(values[:1], len(x_dst), axis=0)
    pos = np.interp(x_dst, x_src, np.arange(len(x_src), dtype=np.float64))
    lo = np.clip(np.floor(pos).astype(np.int64), 0, len(x_src) - 2)
    frac = (pos - lo)[:, None]
    return (values[lo] * (1 - frac) + values[lo + 1] * frac).astype(np.float32)


def log_mel(audio: np.ndarray, sr: float, fps: float, n_mels: int = LOGMEL.n_mels) -> np.ndarray:
    """Log mel power per video frame.

    ``audio[S]`` float in [-1, 1] at ``sr`` Hz -> ``[T, n_mels]`` float32 (natural log of power), with
    ``T = round(S / sr * fps)``. The spectrum is computed at a fine 5 ms hop and its power averaged over
    each frame's span, so a non-integer ``sr / fps`` (e.g. 44100 / 29.97) needs no rounding of the hop.
    """
    import librosa

    audio = _check_audio(audio, sr, fps)
    cfg = LOGMEL
    hop = max(1, int(round(sr * cfg.fine_hop_s)))
    win = max(16, int(round(sr * cfg.window_s)))
    n_fft = 1 << math.ceil(math.log2(win))
    with warnings.catch_warnings():  # low sample rates leave a few top mel bands empty; harmless
        warnings.simplefilter("ignore")
        mel = librosa.feature.melspectrogram(
            y=audio, sr=sr, n_fft=n_fft, hop_length=hop, win_length=win, n_mels=n_mels,
            fmin=cfg.fmin, fmax=min(cfg.fmax, sr / 2), power=2.0, center=True, pad_mode="constant",
        )  # fmt: skip
    power = _area_resample(mel.T.astype(np.float64), hop / sr, n_video_frames(len(audio), sr, fps), fps)
    return np.log(power + cfg.floor).astype(np.float32)


def _frame_db(audio: np.ndarray, sr: float, fps: float) -> np.ndarray:
    """Level of each video frame in dBFS (RMS of the samples under it), ``[T]``."""
    hop = max(1, int(round(sr * LEVEL.hop_s)))
    win = max(2, int(round(sr * LEVEL.frame_s)))
    padded = np.pad(audio.astype(np.float64), (win // 2, win // 2))
    n = 1 + (len(padded) - win) // hop if len(padded) >= win else 1
    csum = np.concatenate([[0.0], np.cumsum(padded**2)])
    starts = np.arange(n) * hop
    ends = np.minimum(starts + win, len(padded))
    power = (csum[ends] - csum[starts]) / win
    framed = _area_resample(power[:, None], hop / sr, n_video_frames(len(audio), sr, fps), fps)[:, 0]
    return 10 * np.log10(np.maximum(framed, 1e-12))


def normalize_loudness(audio: np.ndarray, sr: float) -> np.ndarray:
    """Scale ``audio[S]`` so its loud frames sit at ``LEVEL.target_dbfs``, lifting by at most 20 dB.

    Log-mel features depend on recording gain; this removes most of that difference between the
    training video's audio and new speech. Digital silence is returned unchanged.
    """
    audio = np.asarray(audio, np.float32)
    if len(audio) == 0:
        return audio
    db = _frame_db(audio, sr, 1.0 / LEVEL.hop_s)
    if len(db) == 0:
        return audio
    reference = np.percentile(db, LEVEL.reference_percentile)
    if reference <= -110:
        return audio
    gain_db = min(LEVEL.target_dbfs - reference, LEVEL.max_gain_db)
    return (audio * 10 ** (gain_db / 20)).astype(np.float32)


def voice_activity(audio: np.ndarray, sr: float, fps: float) -> np.ndarray:
    """Soft voice-activity mask per video frame, ``[T]`` in [0, 1] (1 = someone is speaking).

    Energy based: a frame is voiced when it is over an absolute floor (-60 dBFS), within 35 dB of the
    clip's loud frames and clearly over its quietest frames (so steady background noise alone never
    counts as speech). The mask opens a little before speech and closes a little after it, bridging
    short dips, so the mouth neither snaps shut inside words nor jumps at a pause.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    audio = _check_audio(audio, sr, fps)
    db = _frame_db(audio, sr, fps)
    threshold = max(
        LEVEL.silence_dbfs,
        np.percentile(db, LEVEL.reference_percentile) + LEVEL.relative_db,
        np.percentile(db, LEVEL.noise_percentile) + LEVEL.noise_margin_db,
    )
    soft = 1.0 / (1.0 + np.exp(-(db - threshold) / LEVEL.soft_db))
    reach = int(round(LEVEL.hangover_s * fps))
    if reach > 0:
        soft = maximum_filter1d(soft, size=2 * reach + 1, mode="nearest")
    ramp = int(round(LEVEL.closing_s * fps))
    if ramp > 1:
        soft = uniform_filter1d(soft, size=ramp, mode="nearest")
    return soft.astype(np.float32)


def pitched_fraction(audio: np.ndarray, sr: float, max_seconds: float = 60.0) -> float:
    """Fraction of 20 ms frames in which librosa's pYIN hears a voice pitch (65-500 Hz).

    Loudness alone cannot tell speech from room noise or a muted track with a noise floor; a voice is
    pitched in roughly half of its frames, noise almost never (a steady hum is pitched too, and passes).
    Looks at the first ``max_seconds``.
    """
    import librosa

    audio = _check_audio(audio, sr, 25.0)[: int(max_seconds * sr)]
    peak = float(np.abs(audio).max())
    if peak <= 0:
        return 0.0
    _, voiced, _ = librosa.pyin(
        (audio / peak).astype(np.float32), fmin=65, fmax=500, sr=int(sr), frame_length=1024,
        hop_length=max(1, int(round(0.02 * sr))),
    )  # fmt: skip
    return float(np.mean(voiced)) if len(voiced) else 0.0


# --------------------------------------------------------------------------- extractors
class FeatureExtractor(Protocol):
    """Anything that turns ``audio[S]`` at ``sr`` into ``[T, dim]`` features at ``fps``.

    Extractors are independent of recording gain (log-mel normalises loudness, wav2vec2 standardises
    its input), so callers pass raw audio.
    """

    kind: str
    dim: int

    def __call__(self, audio: np.ndarray, sr: float, fps: float) -> np.ndarray: ...


class LogMelFeatures:
    """Log-mel extractor object (always available): loudness-normalised audio -> ``log_mel``.

    The normalisation makes the features of one voice recorded at different gains alike, so a model
    trained on one video's audio hears new speech the same way.
    """

    kind = "logmel"

    def __init__(self, n_mels: int = LOGMEL.n_mels) -> None:
        self.dim = int(n_mels)

    def __call__(self, audio: np.ndarray, sr: float, fps: float) -> np.ndarray:
        return log_mel(normalize_loudness(_check_audio(audio, sr, fps), sr), sr, fps, n_mels=self.dim)


@dataclass(frozen=True)
class Wav2Vec2Settings:
    sample_rate: int = 16000  # wav2vec2 is trained on 16 kHz audio
    chunk_s: float = 20.0  # long audio runs in chunks: self-attention memory grows with length squared
    context_s: float = 1.0  # audio either side of each chunk, so chunk borders are invisible


class Wav2Vec2Features:
    """Hidden states of a wav2vec2 model found on disk or in the local Hugging Face cache.

    Never downloads: ``source`` is a folder written by ``save_pretrained`` or the name of a model
    already in the local cache (``facebook/wav2vec2-base-960h``). ``layer`` picks a hidden layer
    (default: the last). Output ``[T, hidden_size]`` at the video frame rate.
    """

    kind = "wav2vec2"

    def __init__(
        self, source: str | os.PathLike, device: str = "cpu", layer: int | None = None,
        settings: Wav2Vec2Settings | None = None,
    ) -> None:  # fmt: skip
        import torch
        from transformers import Wav2Vec2Model
        from transformers.utils import logging as hf_logging

        self.source = str(source)
        self.settings = settings or Wav2Vec2Settings()
        # a hub name is "org/name"; anything else with a separator is a folder the user meant
        looks_like_path = (
            Path(self.source).exists()
            or self.source.startswith((".", "/", "~"))
            or self.source.count("/") > 1
            or (os.sep != "/" and os.sep in self.source)
        )
        if looks_like_path and not Path(self.source).is_dir():
            raise TalkingHeadError(f"wav2vec2 weights folder {self.source} does not exist")
        previous, bar_was_on = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # a CTC checkpoint loaded as a bare encoder warns about its head
        hf_logging.disable_progress_bar()  # a "Loading weights" bar per load would drown our own progress
        try:
            model = Wav2Vec2Model.from_pretrained(self.source, local_files_only=True)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TalkingHeadError(
                f"wav2vec2 weights {self.source!r} are not on disk or in the local model cache "
                f"(nothing is downloaded; use --features logmel or give a folder): {first}"
            ) from None
        finally:
            hf_logging.set_verbosity(previous)
            if bar_was_on:
                hf_logging.enable_progress_bar()
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        config = model.config
        n_layers = int(config.num_hidden_layers)
        if layer is not None and not -n_layers - 1 <= layer <= n_layers:
            raise TalkingHeadError(f"wav2vec2 layer {layer} out of range (model has {n_layers} layers)")
        self.layer = layer
        self.dim = int(config.hidden_size)
        self.stride = int(np.prod(config.conv_stride))
        field = 1
        for kernel, stride in zip(reversed(config.conv_kernel), reversed(config.conv_stride), strict=True):
            field = (field - 1) * stride + kernel
        self.receptive_field = int(field)

    def _encode(self, samples: np.ndarray) -> np.ndarray:
        import torch

        x = (samples - samples.mean()) / (samples.std() + 1e-7)  # what Wav2Vec2FeatureExtractor does
        if len(x) < self.receptive_field:
            x = np.pad(x, (0, self.receptive_field - len(x)))
        with torch.inference_mode():
            inputs = torch.from_numpy(x.astype(np.float32))[None].to(self.device)
            out = self.model(inputs, output_hidden_states=self.layer is not None)
            hidden = out.last_hidden_state if self.layer is None else out.hidden_states[self.layer]
        return hidden[0].float().cpu().numpy()

    def __call__(self, audio: np.ndarray, sr: float, fps: float) -> np.ndarray:
        import librosa

        audio = _check_audio(audio, sr, fps)
        n_frames = n_video_frames(len(audio), sr, fps)
        rate = self.settings.sample_rate
        if sr != rate:
            audio = librosa.resample(audio, orig_sr=sr, target_sr=rate).astype(np.float32)
        core = int(self.settings.chunk_s * rate)
        context = int(self.settings.context_s * rate)
        times, rows = [], []
        for start in range(0, max(len(audio), 1), core):
            lo = max(0, start - context)
            hidden = self._encode(audio[lo : min(len(audio), start + core + context)])
            centre = (lo + np.arange(len(hidden)) * self.stride + self.receptive_field / 2) / rate
            keep = (centre >= start / rate) | (start == 0)
            keep &= (centre < (start + core) / rate) | (start + core >= len(audio))
            times.append(centre[keep])
            rows.append(hidden[keep])
        frame_centres = (np.arange(n_frames) + 0.5) / fps
        return _interp_rows(np.concatenate(times), np.concatenate(rows), frame_centres)


def make_features(
    kind: str = "logmel", *, n_mels: int = LOGMEL.n_mels, wav2vec2: str | os.PathLike | None = None,
    device: str = "cpu", layer: int | None = None,
) -> FeatureExtractor:  # fmt: skip
    """Build the extractor named ``kind``: ``"logmel"`` (always there) or ``"wav2vec2"`` (needs ``wav2vec2``,
    a local folder or a cached model name)."""
    if kind == "logmel":
        return LogMelFeatures(n_mels)
    if kind == "wav2vec2":
        if wav2vec2 is None:
            raise TalkingHeadError(
                "wav2vec2 features need the weights: give a local folder or a cached model name"
            )
        return Wav2Vec2Features(wav2vec2, device=device, layer=layer)
    raise TalkingHeadError(f"unknown audio feature kind {kind!r}; choose one of {', '.join(FEATURE_KINDS)}")
