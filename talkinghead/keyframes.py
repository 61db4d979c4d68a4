"""Keyframe animation: a YAML or JSON file of timed expressions and head poses -> ParamSequence.

Schema (every field but ``keys`` optional)::

    fps: 25                # frames per second of the result
    duration: 4.0          # seconds; default: the last key's time
    blinks: auto           # auto: natural blinks on top of the keys | none
    keys:
      - time: 0.0                                   # seconds, increasing
        expression: {jawOpen: 0.0, mouthSmileLeft: 0.2}   # ARKit names, values in [0, 1]
        pose: {yaw: 0, pitch: 0, roll: 0}           # degrees, within +-60, relative to the avatar's pose
        easing: ease_in_out                         # how to travel to the NEXT key
      - time: 1.0
        expression: {jawOpen: 0.6}

A coefficient or angle a key does not mention keeps the previous key's value (0 before any key).
``easing`` on a key shapes the segment that starts at it (as in CSS): ``linear``, ``ease_in``,
``ease_out``, ``ease_in_out`` (default) or ``step`` (hold, then jump at the next key).
Angles: ``pitch`` turns about the image x axis (positive: chin down), ``yaw`` about the vertical axis
(positive: the face turns toward image left, the subject's right), ``roll`` about the viewing axis
(positive: the head tips clockwise on screen).
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.params import ParamSequence


@dataclass(frozen=True)
class KeyframeConfig:
    default_fps: float = 25.0  # the common video rate; the demo avatar's rate
    max_angle_deg: float = 60.0  # beyond this a frontal portrait has no face left to show
    max_fps: float = 240.0
    max_duration_s: float = 3600.0  # an hour of keyframes is surely a typo
    default_easing: str = "ease_in_out"  # faces accelerate and settle; linear looks robotic


KEYFRAMES = KeyframeConfig()
POSE_AXES = ("pitch", "yaw", "roll")
TOP_LEVEL = ("fps", "duration", "blinks", "keys")
KEY_FIELDS = ("time", "expression", "pose", "easing")
BLINK_NAMES = ("eyeBlinkLeft", "eyeBlinkRight")

EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda u: u,
    "ease_in": lambda u: u * u,
    "ease_out": lambda u: 1 - (1 - u) ** 2,
    "ease_in_out": lambda u: u * u * (3 - 2 * u),
    "step": lambda u: np.zeros_like(u),
}


@dataclass
class Keyframe:
    time: float
    expression: dict[str, float] = field(default_factory=dict)
    pose: dict[str, float] = field(default_factory=dict)  # degrees
    easing: str = KEYFRAMES.default_easing


@dataclass
class KeyframeScript:
    """A validated keyframe file."""

    fps: float
    duration: float
    blinks: str  # "auto" | "none"
    keys: list[Keyframe]
    source: str = "<dict>"

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.duration * self.fps)))


# --------------------------------------------------------------------------- parsing
def _read(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise TalkingHeadError(f"keyframe file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TalkingHeadError(f"cannot read keyframe file {path}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TalkingHeadError(
                f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TalkingHeadError(f"{path} is not valid YAML: {problem}{where}") from None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TalkingHeadError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise TalkingHeadError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TalkingHeadError(
            f"{what} must be a mapping (name: value), got {type(value).__name__} {value!r}"
        )
    return value


def _unknown_name(name: str, valid: tuple[str, ...], where: str) -> TalkingHeadError:
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return TalkingHeadError(f"{where}: unknown coefficient {name!r}{hint}; valid names: {', '.join(valid)}")


def parse_keyframes(
    source: str | os.PathLike | dict[str, Any], names: tuple[str, ...], config: KeyframeConfig = KEYFRAMES
) -> KeyframeScript:
    """Read and validate a keyframe file (YAML, or JSON by its ``.json`` suffix) or an already-loaded dict.

    ``names`` are the coefficient names the target model knows. Every problem is one TalkingHeadError
    naming the key index and field.
    """
    if isinstance(source, dict):
        data, label = source, "keyframes"
    else:
        path = Path(source)
        data, label = _read(path), str(path)
    if data is None:
        raise TalkingHeadError(f"{label} is empty")
    if not isinstance(data, dict):
        raise TalkingHeadError(f"{label} must be a mapping with a 'keys' list, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(TOP_LEVEL))
    if unknown:
        raise TalkingHeadError(
            f"{label}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(TOP_LEVEL)}"
        )

    fps = _number(data.get("fps", config.default_fps), f"{label}: fps")
    if not 0 < fps <= config.max_fps:
        raise TalkingHeadError(f"{label}: fps must be in (0, {config.max_fps:g}], got {fps:g}")
    blinks = data.get("blinks", "auto")
    if blinks is True:  # YAML reads "on"/"yes" as true
        blinks = "auto"
    if blinks is False or blinks is None:
        blinks = "none"
    if blinks not in ("auto", "none"):
        raise TalkingHeadError(f"{label}: blinks must be 'auto' or 'none', got {blinks!r}")

    raw_keys = data.get("keys")
    if raw_keys is None or raw_keys == []:
        raise TalkingHeadError(f"{label}: 'keys' is missing or empty; give at least one key")
    if not isinstance(raw_keys, list):
        raise TalkingHeadError(f"{label}: 'keys' must be a list of keys, got {type(raw_keys).__name__}")
    keys = [_parse_key(raw, i, label, names, config) for i, raw in enumerate(raw_keys)]
    for i in range(1, len(keys)):
        if keys[i].time <= keys[i - 1].time:
            raise TalkingHeadError(
                f"{label}: key {i}: time {keys[i].time:g} s is not after key {i - 1} "
                f"({keys[i - 1].time:g} s); keys must be in increasing time order"
            )

    if "duration" in data and data["duration"] is not None:
        duration = _number(data["duration"], f"{label}: duration")
        if duration <= 0:
            raise TalkingHeadError(f"{label}: duration must be positive, got {duration:g}")
        if duration < keys[-1].time:
            raise TalkingHeadError(
                f"{label}: duration {duration:g} s ends before the last key ({keys[-1].time:g} s)"
            )
    else:
        duration = keys[-1].time if keys[-1].time > 0 else 1.0 / fps
    if duration > config.max_duration_s:
        raise TalkingHeadError(f"{label}: duration {duration:g} s is longer than {config.max_duration_s:g} s")
    return KeyframeScript(fps=fps, duration=duration, blinks=blinks, keys=keys, source=label)


def _parse_key(raw: Any, i: int, label: str, names: tuple[str, ...], config: KeyframeConfig) -> Keyframe:
    where = f"{label}: key {i}"
    if not isinstance(raw, dict):
        raise TalkingHeadError(f"{where} must be a mapping with 'time', got {type(raw).__name__} {raw!r}")
    unknown = sorted(set(map(str, raw)) - set(KEY_FIELDS))
    if unknown:
        raise TalkingHeadError(
            f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(KEY_FIELDS)}"
        )
    if "time" not in raw:
        raise TalkingHeadError(f"{where}: 'time' is missing")
    time = _number(raw["time"], f"{where}: time")
    if time < 0:
        raise TalkingHeadError(f"{where}: time must not be negative, got {time:g}")

    expression: dict[str, float] = {}
    for name, value in _mapping(raw.get("expression") or {}, f"{where}: expression").items():
        if name not in names:
            raise _unknown_name(name, names, f"{where}: expression")
        v = _number(value, f"{where}: expression {name}")
        if not 0.0 <= v <= 1.0:
            raise TalkingHeadError(f"{where}: expression {name} = {v:g} is outside [0, 1]")
        expression[name] = v

    pose: dict[str, float] = {}
    for axis, value in _mapping(raw.get("pose") or {}, f"{where}: pose").items():
        if axis not in POSE_AXES:
            raise TalkingHeadError(
                f"{where}: pose: unknown angle {axis!r}; use {', '.join(POSE_AXES)} (degrees)"
            )
        v = _number(value, f"{where}: pose {axis}")
        if abs(v) > config.max_angle_deg:
            raise TalkingHeadError(
                f"{where}: pose {axis} = {v:g} degrees is outside +-{config.max_angle_deg:g} degrees"
            )
        pose[axis] = v

    easing = raw.get("easing", config.default_easing)
    if easing not in EASINGS:
        raise TalkingHeadError(f"{where}: easing {easing!r} is unknown; use {', '.join(EASINGS)}")
    return Keyframe(time=time, expression=expression, pose=pose, easing=easing)


# --------------------------------------------------------------------------- sampling
def _filled(keys: list[Keyframe], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Per-key values, unspecified ones carried forward: ``expr[keys, K]``, ``pose[keys, 3]`` (degrees)."""
    expr = np.zeros((len(keys), len(names)))
    pose = np.zeros((len(keys), 3))
    index = {n: j for j, n in enumerate(names)}
    for i, key in enumerate(keys):
        if i:
            expr[i], pose[i] = expr[i - 1], pose[i - 1]
        for name, v in key.expression.items():
            expr[i, index[name]] = v
        for axis, v in key.pose.items():
            pose[i, POSE_AXES.index(axis)] = v
    return expr, pose


def sample_keyframes(script: KeyframeScript, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate to frame times ``t / fps``: ``expression[T, K]`` and ``pose[T, 3]`` in degrees."""
    times = np.arange(script.n_frames) / script.fps
    key_t = np.array([k.time for k in script.keys])
    key_expr, key_pose = _filled(script.keys, names)
    values = np.concatenate([key_expr, key_pose], 1)
    seg = np.clip(np.searchsorted(key_t, times, side="right") - 1, 0, len(key_t) - 1)
    out = values[seg].copy()  # before the first key and after the last: hold
    inside = (times >= key_t[0]) & (seg < len(key_t) - 1)
    for i in np.unique(seg[inside]):
        sel = inside & (seg == i)
        u = (times[sel] - key_t[i]) / (key_t[i + 1] - key_t[i])
        w = EASINGS[script.keys[i].easing](u)[:, None]
        out[sel] = values[i] * (1 - w) + values[i + 1] * w
    return out[:, : len(names)].astype(np.float32), out[:, len(names) :].astype(np.float32)


def pose_to_rotation(pose_deg: np.ndarray, base_rotation: np.ndarray | None = None) -> np.ndarray:
    """Pitch/yaw/roll degrees ``[T, 3]`` -> axis-angle ``[T, 3]``, in the head's frame after ``base``.

    The key rotation is ``Ry(yaw) Rx(pitch) Rz(roll)`` about the model axes (x right, y down, z away).
    """
    from scipy.spatial.transform import Rotation

    pitch, yaw, roll = np.radians(np.asarray(pose_deg, np.float64)).T
    key = Rotation.from_euler("YXZ", np.stack([yaw, pitch, roll], 1))
    if base_rotation is not None:
        key = Rotation.from_rotvec(np.asarray(base_rotation, np.float64)) * key
    return key.as_rotvec().astype(np.float32)


def keyframes_to_params(
    source: str | os.PathLike | dict[str, Any],
    model_id: str,
    names: tuple[str, ...],
    frame_size: tuple[int, int],
    base_translation: np.ndarray,
    base_scale: float,
    rng: np.random.Generator,
    base_rotation: np.ndarray | None = None,
    motion: Any = None,
) -> ParamSequence:
    """Turn a keyframe file (or dict) into a ParamSequence for a model with coefficients ``names``.

    Head position and size stay at ``base_translation[3]`` (pixels) and ``base_scale``; key poses turn the
    head relative to ``base_rotation[3]`` (axis-angle, default frontal). With ``blinks: auto`` natural
    blinks (the subject's own rate and shape when ``motion``, a MotionStats, is given) are added on top of
    any keyed eyeBlink values, so a keyed wink stays a wink.
    """
    from talkinghead.audio.motion import MOTION, blink_curve, blink_times

    names = tuple(names)
    script = parse_keyframes(source, names)
    expression, pose = sample_keyframes(script, names)
    n = len(expression)
    if script.blinks == "auto" and any(b in names for b in BLINK_NAMES):
        if motion is not None:
            rate, dur, amp = motion.blink_rate_per_min, motion.blink_duration_s, motion.blink_amplitude
        else:
            rate, dur, amp = (
                MOTION.prior_blink_rate,
                MOTION.default_blink_duration_s,
                MOTION.default_blink_amplitude,
            )
        curve = blink_curve(n, script.fps, blink_times(n, script.fps, rate, rng), dur, amp, 0.0)
        for b in BLINK_NAMES:
            if b in names:
                j = names.index(b)
                expression[:, j] = np.maximum(expression[:, j], curve)
    base_translation = np.asarray(base_translation, np.float32).reshape(-1)
    if base_translation.shape == (2,):
        base_translation = np.append(base_translation, 0.0)
    if base_translation.shape != (3,):
        raise TalkingHeadError(f"base translation must have 2 or 3 values, got {base_translation.shape}")
    return ParamSequence(
        fps=script.fps,
        model_id=model_id,
        coefficient_names=names,
        expression=np.clip(expression, 0.0, 1.0),
        rotation=pose_to_rotation(pose, base_rotation),
        translation=np.tile(base_translation, (n, 1)),
        scale=np.full(n, float(base_scale), np.float32),
        valid=np.ones(n, bool),
        frame_size=frame_size,
        metadata={"driver": "keyframes", "source": script.source, "blinks": script.blinks},
    )
