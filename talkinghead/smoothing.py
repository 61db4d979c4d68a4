"""Temporal smoothing of parameter sequences: tracking jitter out, real motion (speech, blinks) kept.

Two filters, both plain functions over ``[T, C]`` arrays with an explicit frame rate:

- :func:`one_euro` is causal (each output depends only on the past), so it suits online driving;
  it adapts its cutoff to the signal's speed: slow drift is smoothed hard, fast motion passes.
- :func:`savgol` is a symmetric Savitzky-Golay filter: zero lag, for offline use.

:func:`smooth_params` applies them to a :class:`~talkinghead.params.ParamSequence` with separate
settings per channel group (mouth, blinks, brows, pose, gaze), held in :class:`SmoothingConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.signal

from talkinghead.errors import TalkingHeadError
from talkinghead.params import ParamSequence

METHODS = ("one_euro", "savgol", "none")


@dataclass(frozen=True)
class OneEuro:
    """One-euro settings. Cutoffs in Hz; ``beta`` in Hz per (channel unit per second)."""

    min_cutoff: float
    beta: float
    d_cutoff: float = 1.0  # Hz; the original paper's default for the speed estimate


@dataclass(frozen=True)
class Savgol:
    """Savitzky-Golay settings: window length in seconds (0 disables) and polynomial order."""

    window_s: float
    order: int = 2  # quadratic keeps peaks (mouth openings) where a moving average flattens them


@dataclass(frozen=True)
class GroupSettings:
    one_euro: OneEuro
    savgol: Savgol


@dataclass(frozen=True)
class SmoothingConfig:
    """Per-group settings. Expression units are blendshape weights (0..1); translation and scale are
    first divided by the sequence's median scale (face size in pixels) so one setting fits every
    resolution; rotation is axis-angle radians; gaze is iris-offset units.
    """

    # Mouth and jaw carry speech: syllables last ~100-200 ms, so lag must stay within a frame.
    # A high beta opens the filter as soon as the lips move; at rest the 1.5 Hz cutoff removes jitter.
    mouth: GroupSettings = GroupSettings(OneEuro(min_cutoff=1.5, beta=3.0), Savgol(window_s=0.2))
    # Blinks close and open within ~100-150 ms (3-4 frames at 25 fps); smoothing them like the rest
    # makes them vanish, so this group is barely touched (savgol disabled, one-euro nearly open).
    blink: GroupSettings = GroupSettings(OneEuro(min_cutoff=8.0, beta=5.0), Savgol(window_s=0.0))
    # Brows, cheeks, nose, squint, wide-eye move slowly and their tracked values jitter the most.
    slow: GroupSettings = GroupSettings(OneEuro(min_cutoff=0.8, beta=1.0), Savgol(window_s=0.3))
    # Gaze (and eyeLook* coefficients): saccades are fast jumps, fixations still: adaptive, little lag.
    gaze: GroupSettings = GroupSettings(OneEuro(min_cutoff=1.0, beta=2.0), Savgol(window_s=0.2))
    # Head rotation: small angular jitter is very visible on a rendered head; turns are slow (< 2 rad/s).
    rotation: GroupSettings = GroupSettings(OneEuro(min_cutoff=0.7, beta=4.0), Savgol(window_s=0.3))
    # Translation in face-size units (inter-ocular distances): nods move ~0.1-1 unit/s.
    translation: GroupSettings = GroupSettings(OneEuro(min_cutoff=0.7, beta=2.0), Savgol(window_s=0.3))
    # Scale (distance to camera) changes slowly; its jitter reads as a pumping face, so smooth hard.
    scale: GroupSettings = GroupSettings(OneEuro(min_cutoff=0.4, beta=1.0), Savgol(window_s=0.5))
    # Which expression names go to which group (first matching prefix wins; the rest are "slow").
    expression_groups: tuple[tuple[str, tuple[str, ...]], ...] = field(
        default=(
            ("blink", ("eyeBlink",)),
            ("gaze", ("eyeLook",)),
            ("mouth", ("jaw", "mouth", "tongue")),
        )
    )

    def expression_group(self, name: str) -> str:
        for group, prefixes in self.expression_groups:
            if name.startswith(prefixes):
                return group
        return "slow"


DEFAULT_CONFIG = SmoothingConfig()


def _as_2d(x: np.ndarray) -> tuple[np.ndarray, bool]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x[:, None], True
    if x.ndim != 2:
        raise ValueError(f"expected an array [T] or [T, C], got shape {x.shape}")
    return x, False


def _check_fps(fps: float) -> None:
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    """Smoothing factor of a first-order low-pass with ``cutoff`` Hz sampled at ``fps``."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau * fps)


def one_euro(
    x: np.ndarray,
    fps: float,
    min_cutoff: float | np.ndarray = 1.0,
    beta: float | np.ndarray = 0.0,
    d_cutoff: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Causal one-euro filter (Casiez et al., CHI 2012), vectorised over channels.

    Parameters
    ----------
    x : np.ndarray [shape=(T, C) or (T,)]
        Signal sampled at ``fps``.
    fps : float > 0
        Samples per second.
    min_cutoff : float or np.ndarray [shape=(C,)]
        Cutoff in Hz when the signal is still: lower removes more jitter.
    beta : float or np.ndarray [shape=(C,)]
        Cutoff increase in Hz per (unit / second) of estimated speed: higher means less lag on fast moves.
    d_cutoff : float or np.ndarray [shape=(C,)]
        Cutoff in Hz of the speed estimate.

    Returns
    -------
    np.ndarray [shape like ``x``, dtype float64]
        The filtered signal; ``out[t]`` depends only on ``x[:t+1]``.
    """
    _check_fps(fps)
    x2, flat = _as_2d(x)
    out = np.empty_like(x2)
    if len(x2):
        min_cutoff = np.broadcast_to(np.asarray(min_cutoff, np.float64), x2.shape[1:])
        beta = np.broadcast_to(np.asarray(beta, np.float64), x2.shape[1:])
        a_d = _alpha(np.broadcast_to(np.asarray(d_cutoff, np.float64), x2.shape[1:]), fps)
        prev = x2[0].copy()
        speed = np.zeros_like(prev)
        out[0] = prev
        for t in range(1, len(x2)):
            raw_speed = (x2[t] - prev) * fps
            speed = a_d * raw_speed + (1.0 - a_d) * speed
            a = _alpha(min_cutoff + beta * np.abs(speed), fps)
            prev = a * x2[t] + (1.0 - a) * prev
            out[t] = prev
    return out[:, 0] if flat else out


def savgol(x: np.ndarray, fps: float, window_s: float = 0.3, order: int = 2) -> np.ndarray:
    """Zero-lag Savitzky-Golay smoothing along time (offline: uses future frames).

    Parameters
    ----------
    x : np.ndarray [shape=(T, C) or (T,)]
        Signal sampled at ``fps``.
    fps : float > 0
        Samples per second.
    window_s : float >= 0
        Window length in seconds; rounded to an odd number of frames and clipped to ``T``.
        Windows too short to hold the polynomial leave the signal unchanged.
    order : int >= 0
        Polynomial order fitted in each window.

    Returns
    -------
    np.ndarray [shape like ``x``, dtype float64]
    """
    _check_fps(fps)
    x2, flat = _as_2d(x)
    window = int(round(window_s * fps))
    window = min(window, len(x2))
    if window % 2 == 0:
        window -= 1
    if window <= order or window < 3:
        out = x2.copy()
    else:
        out = scipy.signal.savgol_filter(x2, window, order, axis=0, mode="interp")
    return out[:, 0] if flat else out


def _filter(
    x: np.ndarray, fps: float, method: str, settings: Sequence[GroupSettings], strength: float
) -> np.ndarray:
    """Filter ``x[T, C]`` where channel ``c`` uses ``settings[c]``; ``strength`` scales the smoothing."""
    if method == "one_euro":
        # Dividing every cutoff by strength lowers the whole adaptive cutoff curve proportionally.
        min_cutoff = np.array([s.one_euro.min_cutoff for s in settings]) / strength
        beta = np.array([s.one_euro.beta for s in settings]) / strength
        d_cutoff = np.array([s.one_euro.d_cutoff for s in settings])
        return one_euro(x, fps, min_cutoff, beta, d_cutoff)
    out = np.asarray(x, np.float64).copy()
    for key in sorted({(s.savgol.window_s, s.savgol.order) for s in settings}):
        cols = [c for c, s in enumerate(settings) if (s.savgol.window_s, s.savgol.order) == key]
        out[:, cols] = savgol(out[:, cols], fps, key[0] * strength, key[1])
    return out


def smooth_params(
    seq: ParamSequence,
    method: str = "one_euro",
    strength: float = 1.0,
    config: SmoothingConfig = DEFAULT_CONFIG,
) -> ParamSequence:
    """Return a smoothed copy of ``seq`` (same length, names, fps, validity flags).

    Parameters
    ----------
    seq : ParamSequence
        The sequence to smooth; it is not modified.
    method : {"one_euro", "savgol", "none"}
        ``one_euro`` is causal (online use); ``savgol`` is zero-lag but looks ahead (offline);
        ``none`` returns an unchanged copy.
    strength : float >= 0
        Multiplies the amount of smoothing of every group (0 = none, 2 = twice the default).
    config : SmoothingConfig
        Per-group settings.

    Rotation is smoothed as axis-angle vectors directly, which is accurate for the small head rotations
    of a portrait (well below pi, no wrap-around).
    """
    if method not in METHODS:
        raise TalkingHeadError(f"unknown smoothing method {method!r}; choose one of {', '.join(METHODS)}")
    if not (np.isfinite(strength) and strength >= 0):
        raise TalkingHeadError(f"smoothing strength must be a number >= 0, got {strength!r}")
    if method == "none" or strength == 0 or len(seq) < 2:
        return seq.with_arrays()

    fps = float(seq.fps)
    # Face size in pixels: translation and scale are smoothed in face units so settings fit any resolution.
    face = float(np.median(seq.scale)) if np.median(seq.scale) > 0 else 1.0

    expr_settings = [getattr(config, config.expression_group(n)) for n in seq.coefficient_names]
    blocks: list[tuple[np.ndarray, list[GroupSettings]]] = [
        (seq.expression, expr_settings),
        (seq.rotation, [config.rotation] * 3),
        (seq.translation / face, [config.translation] * 3),
        (seq.scale[:, None] / face, [config.scale]),
    ]
    if seq.gaze is not None:
        blocks.append((seq.gaze, [config.gaze] * 4))
    stacked = np.concatenate([b for b, _ in blocks], axis=1)
    settings = [s for _, group in blocks for s in group]
    smoothed = _filter(stacked, fps, method, settings, strength)

    parts = np.split(smoothed, np.cumsum([b.shape[1] for b, _ in blocks])[:-1], axis=1)
    # Savitzky-Golay can overshoot at sharp corners; keep each coefficient within the range it had.
    expression = np.clip(parts[0], seq.expression.min(axis=0), seq.expression.max(axis=0))
    arrays = {
        "expression": expression,
        "rotation": parts[1],
        "translation": parts[2] * face,
        "scale": parts[3][:, 0] * face,
    }
    if seq.gaze is not None:
        arrays["gaze"] = parts[4]
    out = seq.with_arrays(**{k: v.astype(np.float32) for k, v in arrays.items()})
    out.metadata["smoothing"] = {"method": method, "strength": float(strength)}
    return out
