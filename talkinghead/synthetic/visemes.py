"""From timed phonemes to a talking face: mouth shapes (visemes), head motion, blinks and brow raises.

Mouth: every espeak-ng phoneme maps to a viseme, a few ARKit coefficients (``jawOpen``,
``mouthFunnel``, ``mouthPucker``, ``mouthPress*`` for p/b/m, ``mouthRollLower`` for f/v, ...);
diphthongs glide between two. Neighbouring visemes blend by the dominance model of Cohen and
Massaro (1993): each phoneme pulls the mouth towards its target with a weight that is its
*dominance* inside its span and decays exponentially outside it, and the mouth is the
dominance-weighted mean. Lip closures (p, b, m) dominate strongly so they close even when short;
pauses pull the mouth shut.

Around the mouth: slow smooth head motion (low-passed noise) with small nods on stressed syllables,
blinks every 2-5 s, occasional brow raises on stressed syllables, and gaze that drifts a little.
All random choices come from one seeded generator, so a seed gives the same performance every time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.morphable.model import MODEL_ID
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence
from talkinghead.synthetic.speech import Phoneme, Speech

Shape = dict[str, float]


def _sym(**weights: float) -> Shape:
    """A viseme with the Left/Right pairs given once (``mouthSmile=0.2`` sets both sides)."""
    out: Shape = {}
    for name, value in weights.items():
        if name.startswith(("mouthSmile", "mouthStretch", "mouthPress", "mouthLowerDown", "mouthUpperUp")):
            out[name + "Left"] = out[name + "Right"] = value
        else:
            out[name] = value
    return out


# Viseme targets (ARKit weights, 1 = the extreme shape). Jaw openings follow measured speech: open
# vowels ~0.6-0.7 of a full yawn, close vowels and most consonants 0.1-0.2.
REST: Shape = {}
OPEN = _sym(jawOpen=0.7, mouthLowerDown=0.15)  # a, A:, aa
MID = _sym(jawOpen=0.42)  # schwa-like: @, V, a#, 3
FRONT_MID = _sym(jawOpen=0.42, mouthStretch=0.22, mouthSmile=0.12)  # E, e@
FRONT_CLOSE = _sym(jawOpen=0.16, mouthStretch=0.35, mouthSmile=0.28)  # i:, I, i
BACK_OPEN = _sym(jawOpen=0.55, mouthFunnel=0.35, mouthPucker=0.1)  # O:, 0
BACK_MID = _sym(jawOpen=0.38, mouthFunnel=0.45, mouthPucker=0.3)  # o
BACK_CLOSE = _sym(jawOpen=0.14, mouthFunnel=0.3, mouthPucker=0.65)  # u:, U
RHOTIC = _sym(jawOpen=0.3, mouthFunnel=0.3, mouthPucker=0.2)  # 3:, r-coloured
BILABIAL = _sym(jawOpen=0.02, mouthPress=0.4, mouthClose=0.05)  # p b m
LABIODENTAL = _sym(jawOpen=0.08, mouthRollLower=0.55, mouthUpperUp=0.12)  # f v
DENTAL = _sym(jawOpen=0.14, tongueOut=0.2)  # T D
ALVEOLAR = _sym(jawOpen=0.15)  # t d n l
SIBILANT = _sym(jawOpen=0.07, mouthStretch=0.25, mouthSmile=0.1)  # s z
POSTALVEOLAR = _sym(jawOpen=0.12, mouthFunnel=0.5, mouthPucker=0.25)  # S Z tS dZ
VELAR = _sym(jawOpen=0.2)  # k g N x
ROUNDED = _sym(jawOpen=0.08, mouthPucker=0.7, mouthFunnel=0.2)  # w
APPROX_R = _sym(jawOpen=0.12, mouthPucker=0.35, mouthFunnel=0.25)  # r
PALATAL = _sym(jawOpen=0.1, mouthStretch=0.2, mouthSmile=0.12)  # j
GLOTTAL = _sym(jawOpen=0.18)  # h, ?: takes the shape of its neighbours (low dominance)

# espeak-ng English mnemonics -> one target, or two for a diphthong (first half, second half).
VISEMES: dict[str, tuple[Shape, ...]] = {
    "_": (REST,),
    "a": (OPEN,), "A:": (OPEN,), "A@": (OPEN, RHOTIC), "aa": (OPEN,), "A": (OPEN,),
    "aI": (OPEN, FRONT_CLOSE), "aU": (OPEN, BACK_CLOSE), "aI@": (OPEN, MID), "aU@": (OPEN, MID),
    "@": (MID,), "a#": (MID,), "V": (MID,), "3": (MID,), "@L": (MID, ALVEOLAR),
    "3:": (RHOTIC,), "E": (FRONT_MID,), "e@": (FRONT_MID, MID), "eI": (FRONT_MID, FRONT_CLOSE),
    "e": (FRONT_MID,), "i": (FRONT_CLOSE,), "i:": (FRONT_CLOSE,), "I": (FRONT_CLOSE,), "i@": (FRONT_CLOSE, MID),
    "0": (BACK_OPEN,), "O:": (BACK_OPEN,), "O": (BACK_OPEN,), "O@": (BACK_OPEN, RHOTIC),
    "OI": (BACK_OPEN, FRONT_CLOSE), "oU": (BACK_MID, BACK_CLOSE), "o@": (BACK_MID, RHOTIC), "o": (BACK_MID,),
    "u:": (BACK_CLOSE,), "U": (BACK_CLOSE,), "U@": (BACK_CLOSE, MID), "u": (BACK_CLOSE,),
    "p": (BILABIAL,), "b": (BILABIAL,), "m": (BILABIAL,),
    "f": (LABIODENTAL,), "v": (LABIODENTAL,), "T": (DENTAL,), "D": (DENTAL,),
    "t": (ALVEOLAR,), "d": (ALVEOLAR,), "n": (ALVEOLAR,), "l": (ALVEOLAR,), "t#": (ALVEOLAR,),
    "s": (SIBILANT,), "z": (SIBILANT,), "S": (POSTALVEOLAR,), "Z": (POSTALVEOLAR,),
    "tS": (POSTALVEOLAR,), "dZ": (POSTALVEOLAR,), "k": (VELAR,), "g": (VELAR,), "N": (VELAR,), "x": (VELAR,),
    "w": (ROUNDED,), "W": (ROUNDED,), "r": (APPROX_R,), "j": (PALATAL,), "h": (GLOTTAL,), "?": (GLOTTAL,),
}  # fmt: skip
VOWEL_START = "aAeEiIoOuUV@30"

# How strongly each kind of phoneme holds the mouth (Cohen-Massaro dominance, relative to a vowel).
DOMINANCE = {"lips": 6.0, "vowel": 1.0, "consonant": 0.6, "glottal": 0.15, "pause": 1.0}
_LIPS = {"p", "b", "m", "f", "v", "w", "W"}


def viseme(symbol: str) -> tuple[Shape, ...]:
    """Mouth target(s) for one espeak-ng phoneme: an exact match, then the symbol without its
    variant marks (``@2`` -> ``@``, ``I#`` -> ``I``), then by its first letter; unknown -> a half-open mouth."""
    if not symbol or symbol.startswith("_"):
        return VISEMES["_"]
    for key in (symbol, re.sub(r"[0-9#;!-]+$", "", symbol), symbol[:2], symbol[:1]):
        if key in VISEMES:
            return VISEMES[key]
    return (MID,) if symbol[0] in VOWEL_START else (VELAR,)


def is_vowel(symbol: str) -> bool:
    return bool(symbol) and symbol[0] in VOWEL_START and symbol not in ("_",)


def dominance(symbol: str) -> float:
    if not symbol or symbol.startswith("_"):
        return DOMINANCE["pause"]
    if symbol in _LIPS:
        return DOMINANCE["lips"]
    if symbol in ("h", "?"):
        return DOMINANCE["glottal"]
    return DOMINANCE["vowel"] if is_vowel(symbol) else DOMINANCE["consonant"]


@dataclass(frozen=True)
class AnimationConfig:
    fps: float = 25.0
    # Dominance decay outside a phoneme's span: 40 ms lets a vowel shape a neighbouring consonant
    # (anticipatory rounding) without smearing syllables together at ~5 syllables/s.
    coarticulation_s: float = 0.04
    # Each frame averages the mouth over its exposure at this many instants (no flicker from short phonemes).
    subsamples: int = 4
    # Head motion: standard deviations in radians (pitch, yaw, roll) and in IODs (x, y); a calm
    # speaker moves a few degrees. The noise is low-passed at ~0.5 Hz (sigma in seconds).
    head_rotation_std: tuple[float, float, float] = (0.045, 0.07, 0.03)
    head_shift_std_iod: tuple[float, float] = (0.06, 0.04)
    head_smooth_s: float = 0.45
    nod_rad: float = 0.035  # a small downward nod on stressed syllables while speaking
    # Blinks: one every 2-5 s (people blink ~15-20 times a minute), ~0.27 s from open to open:
    # a fast close, a short hold (longer than one 25 fps frame), a slower opening.
    blink_interval_s: tuple[float, float] = (2.0, 5.0)
    blink_close_s: float = 0.08
    blink_closed_s: float = 0.05
    blink_open_s: float = 0.14
    # Brow raises: on this fraction of the stressed syllables, ~0.5 s each.
    brow_raise_fraction: float = 0.4
    brow_raise_s: float = 0.5
    # Stressed syllables: vowels whose duration x loudness is in the top 30 % of the utterance.
    stress_quantile: float = 0.7
    # Speaking style varies per sentence (x jaw amplitude), so the training video covers a range.
    articulation_range: tuple[float, float] = (0.85, 1.3)
    # A slow, slight smile drifting between 0 and this weight; gaze drifting by this much.
    smile_max: float = 0.25
    gaze_std: float = 0.12


CONFIG = AnimationConfig()


def frame_times(n_frames: int, fps: float, subsamples: int = 1) -> np.ndarray:
    """Sample instants ``[n_frames, subsamples]`` spread over each frame's interval (seconds)."""
    offsets = (np.arange(subsamples) + 0.5) / subsamples
    return (np.arange(n_frames)[:, None] + offsets[None]) / fps


def mouth_track(
    phonemes: Sequence[Phoneme], n_frames: int, fps: float, names: Sequence[str] = ARKIT_NAMES,
    config: AnimationConfig = CONFIG, amplitude: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Mouth coefficients ``[n_frames, K]`` for timed phonemes (Cohen-Massaro blending).

    ``amplitude`` (``[len(phonemes)]``, optional) scales each phoneme's jaw opening.
    """
    index = {n: i for i, n in enumerate(names)}
    segments = []  # (start, end, dominance, target [K])
    for p_i, p in enumerate(phonemes):
        shapes = viseme(p.symbol)
        step = (p.end - p.start) / len(shapes)
        for s_i, shape in enumerate(shapes):
            target = np.zeros(len(names), np.float64)
            for name, value in shape.items():
                if name in index:
                    target[index[name]] = value
            if amplitude is not None and "jawOpen" in index:
                target[index["jawOpen"]] *= amplitude[p_i]
            start = p.start + s_i * step
            segments.append((start, start + step, dominance(p.symbol), target))
    t = frame_times(n_frames, fps, config.subsamples).reshape(-1)
    if not segments:
        return np.zeros((n_frames, len(names)), np.float32)
    start = np.array([s[0] for s in segments])
    end = np.array([s[1] for s in segments])
    alpha = np.array([s[2] for s in segments])
    targets = np.stack([s[3] for s in segments])
    outside = np.maximum(start[None] - t[:, None], 0) + np.maximum(t[:, None] - end[None], 0)
    weight = alpha[None] * np.exp(-outside / config.coarticulation_s)  # [S*T, P]
    weight += 1e-12
    mouth = (weight @ targets) / weight.sum(1, keepdims=True)
    return mouth.reshape(n_frames, config.subsamples, -1).mean(1).astype(np.float32)


def stressed_vowels(
    phonemes: Sequence[Phoneme], audio: np.ndarray, sr: int, quantile: float
) -> list[Phoneme]:
    """Vowels that stand out by duration x loudness: a stand-in for lexical stress."""
    vowels = [p for p in phonemes if is_vowel(p.symbol)]
    if not vowels:
        return []
    score = []
    for p in vowels:
        seg = audio[int(p.start * sr) : max(int(p.end * sr), int(p.start * sr) + 1)]
        score.append(
            (p.end - p.start) * float(np.sqrt(np.mean(seg.astype(np.float64) ** 2)) if len(seg) else 0)
        )
    cut = np.quantile(score, quantile)
    return [p for p, s in zip(vowels, score, strict=True) if s >= cut]


def _bumps(centres: Sequence[float], width_s: float, n_frames: int, fps: float) -> np.ndarray:
    """Sum of raised-cosine bumps (peak 1, total width ``width_s``) at the given times, clipped to 1."""
    t = np.arange(n_frames) / fps
    out = np.zeros(n_frames)
    for c in centres:
        x = np.clip(np.abs(t - c) / (width_s / 2), 0, 1)
        out += 0.5 * (1 + np.cos(np.pi * x))
    return np.clip(out, 0, 1)


def blink_track(
    n_frames: int, fps: float, rng: np.random.Generator, config: AnimationConfig = CONFIG
) -> np.ndarray:
    """Eyelid closure ``[n_frames]`` in [0, 1]: a blink every 2-5 s, fast to close, slower to open.

    The lids stay shut for ``blink_closed_s`` (longer than a frame at 25 fps), so every blink shows
    fully closed eyes in at least one frame.
    """
    t = np.arange(n_frames) / fps
    out = np.zeros(n_frames)
    lo, hi = config.blink_interval_s
    close, shut, open_ = config.blink_close_s, config.blink_closed_s, config.blink_open_s
    at = rng.uniform(0.3, hi)
    while n_frames and at < t[-1] + close + shut + open_:
        rel = t - at
        closing = np.clip(rel / close, 0, 1)
        opening = np.clip(1 - (rel - close - shut) / open_, 0, 1)
        out = np.maximum(out, np.where(rel >= 0, np.minimum(closing, opening), 0))
        at += rng.uniform(lo, hi)
    return out


def smooth_noise(
    n_frames: int, channels: int, fps: float, sigma_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Low-passed Gaussian noise ``[n_frames, channels]`` with unit standard deviation per channel."""
    pad = int(4 * sigma_s * fps) + 1
    raw = rng.standard_normal((n_frames + 2 * pad, channels))
    smooth = gaussian_filter1d(raw, sigma_s * fps, axis=0)[pad : pad + n_frames]
    return smooth / (smooth.std(0, keepdims=True) + 1e-9)


def animate(
    speech: Speech,
    base_translation: np.ndarray,
    scale: float,
    frame_size: tuple[int, int],
    seed: int = 0,
    names: Sequence[str] = ARKIT_NAMES,
    config: AnimationConfig = CONFIG,
) -> ParamSequence:
    """A full performance for ``speech``: parameters at ``config.fps`` covering the whole clip.

    The head sits at ``base_translation`` (pixels) with ``scale`` (pixels per model unit) and moves
    around it; ``frame_size`` is the (W, H) of the frames these parameters are meant for.
    """
    rng = np.random.default_rng(seed)
    fps = config.fps
    n = max(int(np.ceil(speech.duration * fps)), 1)
    names = tuple(names)
    index = {name: i for i, name in enumerate(names)}

    # speaking style per sentence (pauses separate sentences)
    amplitude = np.ones(len(speech.phonemes))
    style = rng.uniform(*config.articulation_range)
    for i, p in enumerate(speech.phonemes):
        if p.is_pause and p.end - p.start > 0.25:
            style = rng.uniform(*config.articulation_range)
        amplitude[i] = style
    expression = mouth_track(speech.phonemes, n, fps, names, config, amplitude)

    def add(name: str, values: np.ndarray) -> None:
        if name in index:
            expression[:, index[name]] = np.clip(expression[:, index[name]] + values, 0, 1)

    blink = blink_track(n, fps, rng, config)
    add("eyeBlinkLeft", blink)
    add("eyeBlinkRight", blink)
    stressed = stressed_vowels(speech.phonemes, speech.audio, speech.sample_rate, config.stress_quantile)
    centres = [(p.start + p.end) / 2 for p in stressed]
    raised = [c for c in centres if rng.random() < config.brow_raise_fraction]
    brow = _bumps(raised, config.brow_raise_s, n, fps)
    add("browInnerUp", 0.45 * brow)
    add("browOuterUpLeft", 0.3 * brow)
    add("browOuterUpRight", 0.3 * brow)
    smile = config.smile_max * np.clip(0.5 + 0.5 * smooth_noise(n, 1, fps, 2.0, rng)[:, 0], 0, 1)
    add("mouthSmileLeft", smile)
    add("mouthSmileRight", smile)
    gaze = config.gaze_std * smooth_noise(n, 2, fps, 0.8, rng)
    for side in ("Left", "Right"):  # gaze x: + looks to the subject's left
        add(f"eyeLookOut{side}" if side == "Left" else f"eyeLookIn{side}", np.clip(gaze[:, 0], 0, None))
        add(f"eyeLookIn{side}" if side == "Left" else f"eyeLookOut{side}", np.clip(-gaze[:, 0], 0, None))
        add(f"eyeLookUp{side}", np.clip(-gaze[:, 1], 0, None))
        add(f"eyeLookDown{side}", np.clip(gaze[:, 1], 0, None))

    rotation = smooth_noise(n, 3, fps, config.head_smooth_s, rng) * np.asarray(config.head_rotation_std)
    rotation[:, 0] += config.nod_rad * _bumps(centres, 0.35, n, fps)  # pitch: +x tilts the face down
    shift = smooth_noise(n, 2, fps, config.head_smooth_s * 2, rng) * np.asarray(config.head_shift_std_iod)
    translation = np.tile(np.asarray(base_translation, np.float32), (n, 1))
    translation[:, :2] += shift * scale
    return ParamSequence(
        fps=fps, model_id=MODEL_ID, coefficient_names=names, expression=expression, rotation=rotation,
        translation=translation, scale=np.full(n, scale, np.float32), valid=np.ones(n, bool),
        frame_size=frame_size, metadata={"source": "talkinghead.synthetic", "seed": int(seed)},
    )  # fmt: skip
