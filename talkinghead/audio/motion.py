"""The subject's own head motion and blinking, measured once and re-synthesised for speech.

Speech gives no head pose and no blinks, so a speaking avatar borrows them from its training video:
how far and how fast the head wanders around its mean pose, how often and how long the eyes blink.
Synthesis draws smooth random motion with those statistics (a little livelier while speaking) and
blinks at the subject's rate with natural, irregular timing.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.params import ParamSequence

FORMAT_NAME = "talkinghead.motion_stats"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class MotionConfig:
    """Measurement and synthesis constants."""

    default_timescale_s: float = 1.0  # head sway when a clip is too short to measure it
    timescale_range_s: tuple[float, float] = (0.1, 5.0)  # slower than 5 s is drift, not motion
    speech_motion_gain: float = 0.5  # rotation amplitude 0.75x in silence .. 1.25x while speaking
    speech_smoothing_s: float = 0.4  # the head follows phrases, not syllables
    prior_blink_rate: float = 17.0  # blinks per minute during conversation (adults: 15-20)
    prior_blink_minutes: float = 0.25  # weight of that prior: a short clip barely shows the subject's rate
    default_blink_duration_s: float = 0.15  # full width at half closure of a spontaneous blink
    default_blink_amplitude: float = 0.85  # eyeBlink value at full closure when none is seen
    prior_blink_count: float = 2.0  # pseudo-blinks mixed into measured duration and amplitude
    min_blink_prominence: float = 0.2  # eyeBlink rise that counts as a blink (not a squint or noise)
    max_blink_width_s: float = 0.6  # longer closures are deliberate, not blinks
    min_blink_interval_s: float = 0.3
    blink_interval_cv: float = 0.5  # inter-blink intervals are irregular (gamma-distributed)
    blink_open_ratio: float = 2.0  # eyes close fast and open about twice as slowly


MOTION = MotionConfig()


@dataclass
class MotionStats:
    """Head motion and blink statistics of one subject.

    Rotation deviations are axis-angle (radians) of ``mean^-1 * R`` (x: pitch, y: yaw, z: roll in the
    head's own frame); translation deviations are pixels; scale deviation is relative (std of scale/mean - 1).
    Timescales are the lag (s) at which a deviation's autocorrelation falls to 1/e.
    """

    rotation_mean: tuple[float, float, float]
    rotation_std: tuple[float, float, float]
    rotation_timescale_s: tuple[float, float, float]
    translation_mean: tuple[float, float, float]
    translation_std: tuple[float, float, float]
    translation_timescale_s: tuple[float, float, float]
    scale_mean: float
    scale_std: float
    scale_timescale_s: float
    blink_rate_per_min: float
    blink_duration_s: float
    blink_amplitude: float
    blink_baseline: float
    blinks_detected: int = 0
    source_seconds: float = 0.0

    @classmethod
    def from_params(cls, seq: ParamSequence, config: MotionConfig = MOTION) -> MotionStats:
        """Measure a tracked sequence (valid frames for levels, all frames for timing)."""
        from scipy.spatial.transform import Rotation

        n = len(seq)
        if n < 2:
            raise TalkingHeadError("motion statistics need at least two frames")
        valid = seq.valid if seq.valid.sum() >= 2 else np.ones(n, bool)
        rot = Rotation.from_rotvec(seq.rotation.astype(np.float64))
        mean_rot = rot[valid].mean()
        rot_dev = (mean_rot.inv() * rot).as_rotvec()
        trans_mean = seq.translation[valid].mean(0)
        trans_dev = seq.translation - trans_mean
        scale_mean = float(seq.scale[valid].mean())
        scale_dev = seq.scale / max(scale_mean, 1e-9) - 1.0
        ts = lambda x: _timescale(x, seq.fps, config)  # noqa: E731
        blink = _measure_blinks(seq, config)
        return cls(
            rotation_mean=_tuple(mean_rot.as_rotvec()),
            rotation_std=_tuple(rot_dev[valid].std(0)),
            rotation_timescale_s=tuple(ts(rot_dev[:, i]) for i in range(3)),
            translation_mean=_tuple(trans_mean),
            translation_std=_tuple(trans_dev[valid].std(0)),
            translation_timescale_s=tuple(ts(trans_dev[:, i]) for i in range(3)),
            scale_mean=scale_mean,
            scale_std=float(scale_dev[valid].std()),
            scale_timescale_s=ts(scale_dev),
            source_seconds=float(seq.duration),
            **blink,
        )

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        data = {"format": FORMAT_NAME, "version": FORMAT_VERSION}
        for key, value in asdict(self).items():
            data[key] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MotionStats:
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise TalkingHeadError("not a motion statistics record")
        if data.get("version") != FORMAT_VERSION:
            raise TalkingHeadError(
                f"motion statistics have format version {data.get('version')}, "
                f"this talkinghead reads {FORMAT_VERSION}"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is not MISSING:
                    continue
                raise TalkingHeadError(f"motion statistics lack {f.name!r}")
            value = data[f.name]
            try:
                if isinstance(value, list):
                    if len(value) != 3:
                        raise ValueError
                    values[f.name] = tuple(float(v) for v in value)
                else:
                    values[f.name] = int(value) if f.name == "blinks_detected" else float(value)
            except (TypeError, ValueError):
                raise TalkingHeadError(
                    f"motion statistics field {f.name!r} is malformed: {value!r}"
                ) from None
        try:
            stats = cls(**values)
        except TypeError as exc:
            raise TalkingHeadError(f"motion statistics are malformed: {exc}") from None
        if not all(np.all(np.isfinite(v)) for v in values.values()):
            raise TalkingHeadError("motion statistics hold NaN or infinite values")
        return stats


def _tuple(x: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in x)  # type: ignore[return-value]


def _timescale(x: np.ndarray, fps: float, config: MotionConfig) -> float:
    """Lag (s) where the autocorrelation of ``x[T]`` first drops under 1/e (interpolated), clamped."""
    x = np.asarray(x, np.float64) - np.mean(x)
    if len(x) < 4 or x.std() < 1e-9:
        return config.default_timescale_s
    n = len(x)
    spec = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spec * np.conj(spec))[: n // 2]
    acf /= acf[0]
    below = np.flatnonzero(acf < 1 / math.e)
    if len(below) == 0:
        lag = n // 2
    else:
        k = below[0]
        lag = k - 1 + (acf[k - 1] - 1 / math.e) / max(acf[k - 1] - acf[k], 1e-9)
    lo, hi = config.timescale_range_s
    return float(np.clip(lag / fps, lo, hi))


def blink_signal(seq: ParamSequence) -> np.ndarray | None:
    """Mean of the eyeBlinkLeft/Right coefficients, ``[T]``; None when the model has neither."""
    cols = [
        seq.coefficient_names.index(n)
        for n in ("eyeBlinkLeft", "eyeBlinkRight")
        if n in seq.coefficient_names
    ]
    return seq.expression[:, cols].mean(1) if cols else None


def detect_blinks(
    signal: np.ndarray, fps: float, config: MotionConfig = MOTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blinks in an eyeBlink series ``[T]``: (peak frame indices, widths at half height in s, peak values)."""
    from scipy.signal import find_peaks, peak_widths

    signal = np.asarray(signal, np.float64)
    if len(signal) < 3:
        return np.zeros(0, int), np.zeros(0), np.zeros(0)
    baseline = np.median(signal)
    prominence = max(config.min_blink_prominence, 0.5 * (np.percentile(signal, 99.5) - baseline))
    peaks, _ = find_peaks(
        signal, prominence=prominence, width=(None, config.max_blink_width_s * fps),
        distance=max(1, int(config.min_blink_interval_s * fps)),
    )  # fmt: skip
    widths = peak_widths(signal, peaks, rel_height=0.5)[0] / fps if len(peaks) else np.zeros(0)
    return peaks, widths, signal[peaks]


def _measure_blinks(seq: ParamSequence, config: MotionConfig) -> dict[str, Any]:
    signal = blink_signal(seq)
    minutes = seq.duration / 60.0
    if signal is None:
        peaks, widths, heights, baseline = np.zeros(0), np.zeros(0), np.zeros(0), 0.0
    else:
        peaks, widths, heights = detect_blinks(signal, seq.fps, config)
        baseline = float(np.median(signal))
    n, k = len(peaks), config.prior_blink_count
    rate = (n + config.prior_blink_rate * config.prior_blink_minutes) / (minutes + config.prior_blink_minutes)
    duration = (widths.sum() + k * config.default_blink_duration_s) / (n + k)
    amplitude = (heights.sum() + k * max(config.default_blink_amplitude, baseline)) / (n + k)
    return {
        "blink_rate_per_min": float(rate), "blink_duration_s": float(duration),
        "blink_amplitude": float(amplitude), "blink_baseline": baseline, "blinks_detected": int(n),
    }  # fmt: skip


# --------------------------------------------------------------------------- synthesis
def _pole_for_timescale(frames: float) -> float:
    """Pole ``a`` of two cascaded one-pole low-passes whose output autocorrelation is 1/e at lag ``frames``.

    That autocorrelation is ``a^k (1 + k (1 - a^2) / (1 + a^2))``.
    """
    from scipy.optimize import brentq

    k = max(frames, 0.5)
    f = lambda a: a**k * (1 + k * (1 - a * a) / (1 + a * a)) - 1 / math.e  # noqa: E731
    return float(brentq(f, 1e-9, 1 - 1e-12))


def smooth_noise(n: int, fps: float, timescale_s: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance smooth random series ``[n]`` with the given autocorrelation timescale."""
    from scipy.signal import lfilter

    a = _pole_for_timescale(timescale_s * fps)
    burn = int(min(20 * timescale_s * fps, 5000)) + 1  # start from the stationary state
    x = rng.standard_normal(n + burn)
    for _ in range(2):
        x = lfilter([1 - a], [1, -a], x)
    x = x[burn:]
    if n < 2:
        return np.zeros(n)
    return (x - x.mean()) / max(x.std(), 1e-12)


def _speech_gain(audio_energy: np.ndarray | None, n: int, fps: float, config: MotionConfig) -> np.ndarray:
    if audio_energy is None:
        return np.ones(n)
    from scipy.ndimage import gaussian_filter1d

    e = np.asarray(audio_energy, np.float64)
    if e.shape != (n,):
        raise TalkingHeadError(f"audio_energy must have one value per frame ({n}), got shape {e.shape}")
    e = np.clip(e / e.max(), 0, 1) if e.max() > 0 else np.zeros(n)
    e = gaussian_filter1d(e, config.speech_smoothing_s * fps, mode="nearest")
    return 1.0 + config.speech_motion_gain * (e - 0.5)


def blink_times(n_frames: int, fps: float, rate_per_min: float, rng: np.random.Generator,
                config: MotionConfig = MOTION) -> np.ndarray:  # fmt: skip
    """Frame indices of blink peaks: gamma-distributed intervals with mean ``60 / rate``."""
    if rate_per_min <= 0 or n_frames < 1:
        return np.zeros(0, int)
    mean = 60.0 / rate_per_min
    shape = 1.0 / config.blink_interval_cv**2
    t = rng.uniform(0.2, 1.0) * mean  # the clip starts somewhere between two blinks
    out = []
    while t < n_frames / fps:
        out.append(int(round(t * fps)))
        t += max(config.min_blink_interval_s, rng.gamma(shape, mean / shape))
    return np.asarray(out, int)


def blink_curve(n_frames: int, fps: float, peaks: np.ndarray, duration_s: float, amplitude: float,
                baseline: float, config: MotionConfig = MOTION) -> np.ndarray:  # fmt: skip
    """eyeBlink value per frame ``[n]``: asymmetric bumps (fast close, slower open) at ``peaks``."""
    t = np.arange(n_frames, dtype=np.float64)
    # full width at half height of an asymmetric Gaussian is 1.1774 * (sigma_close + sigma_open)
    sigma_close = duration_s * fps / (1.1774 * (1 + config.blink_open_ratio))
    sigma_open = sigma_close * config.blink_open_ratio
    bump = np.zeros(n_frames)
    for p in peaks:
        d = t - p
        sigma = np.where(d < 0, sigma_close, sigma_open)
        bump = np.maximum(bump, np.exp(-0.5 * (d / sigma) ** 2))
    return (baseline + (amplitude - baseline) * bump).astype(np.float32)


def synthesize_motion(
    stats: MotionStats, n_frames: int, fps: float, rng: np.random.Generator,
    audio_energy: np.ndarray | None = None, config: MotionConfig = MOTION,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Natural head motion and blinks for ``n_frames`` at ``fps``.

    Returns ``rotation[T,3]`` (axis-angle, radians), ``translation[T,3]`` (pixels), ``scale[T]`` and
    ``blink[T]`` (eyeBlink value for both eyes). ``audio_energy[T]`` (any non-negative loudness per frame)
    makes the head a little livelier while speaking.
    """
    from scipy.spatial.transform import Rotation

    n = int(n_frames)
    if n < 1 or not fps > 0:
        raise TalkingHeadError(f"cannot synthesise {n_frames} frames at {fps} fps")
    gain = _speech_gain(audio_energy, n, fps, config)
    noise = lambda timescales, stds: np.stack(  # noqa: E731
        [smooth_noise(n, fps, t, rng) * s for t, s in zip(timescales, stds, strict=True)], 1
    )
    rot_dev = noise(stats.rotation_timescale_s, stats.rotation_std) * gain[:, None]
    trans_dev = noise(stats.translation_timescale_s, stats.translation_std) * gain[:, None]
    scale_dev = noise([stats.scale_timescale_s], [stats.scale_std])[:, 0]
    rotation = (Rotation.from_rotvec(stats.rotation_mean) * Rotation.from_rotvec(rot_dev)).as_rotvec()
    translation = np.asarray(stats.translation_mean) + trans_dev
    scale = stats.scale_mean * (1.0 + scale_dev)
    peaks = blink_times(n, fps, stats.blink_rate_per_min, rng, config)
    blink = blink_curve(
        n, fps, peaks, stats.blink_duration_s, stats.blink_amplitude, stats.blink_baseline, config
    )
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return f32(rotation), f32(translation), f32(scale), blink
