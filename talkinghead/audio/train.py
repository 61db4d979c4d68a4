"""Train the audio-to-expression model on the training video's own audio and fitted expressions.

Random windows of the clip, L1 on the coefficients plus a velocity term (frame-to-frame differences)
so the mouth moves as smoothly as the real one. Silence is taught explicitly: spans of synthetic
silence (digital zero and quiet noise) are spliced into windows with the subject's closed-mouth pose
as their target, and at prediction time an energy-based voice-activity mask pulls the output to that pose.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from talkinghead.audio.features import (
    FeatureExtractor,
    make_features,
    n_video_frames,
    voice_activity,
)
from talkinghead.audio.model import AudioToExpression, AudioToExpressionConfig, cpu_compute, is_mouth_name
from talkinghead.errors import TalkingHeadError


@dataclass(frozen=True)
class AudioTrainConfig:
    steps: int = 600  # ~15 s on a laptop CPU; the loss has flattened by then on a 30 s clip
    window_s: float = 2.0  # a few syllables each, so a 30 s clip gives many different windows
    batch_size: int = 16
    lr: float = 2e-3  # AdamW, cosine-decayed to 5 % over the run
    weight_decay: float = 5e-2  # with the dropout and noise below: a few seconds of speech overfit easily
    velocity_weight: float = 2.0  # velocities are ~5x smaller than values; this keeps both terms alive
    silence_prob: float = 0.3  # windows given a span of silence whose target is the rest pose
    silence_span_s: tuple[float, float] = (0.3, 1.5)
    silence_dbfs: tuple[float, float] = (-100.0, -45.0)  # range of synthetic room-noise levels
    feature_noise: float = 0.15  # Gaussian noise in normalised feature units
    gain_jitter_db: float = 6.0  # log-mel only: recordings differ in level even after normalisation
    grad_clip: float = 1.0
    n_mels: int = 80  # log-mel bands (feature_kind "logmel")
    hidden: int = 64  # 128 fits the training part as well (r 0.99) and generalises worse (bench/lipsync.py)
    layers: int = 4
    context_s: float = 0.3
    dropout: float = 0.3
    rest_erosion_s: float = 0.1  # only frames this deep inside a pause show the resting mouth
    min_voiced_fraction: float = 0.05  # less speech than this and there is nothing to learn from
    cpu_threads: int | None = 1  # torch threads while training on a CPU; see model.cpu_compute


def _check_inputs(
    audio: np.ndarray, sr: float, expression: np.ndarray, names: tuple[str, ...], fps: float
) -> tuple[np.ndarray, np.ndarray]:
    audio = np.asarray(audio, np.float32)
    expression = np.asarray(expression, np.float32)
    if audio.ndim != 1 or len(audio) == 0:
        raise TalkingHeadError(f"training audio must be non-empty mono samples [S], got shape {audio.shape}")
    if expression.ndim != 2 or expression.shape[1] != len(names):
        raise TalkingHeadError(
            f"expressions must be [T, {len(names)}] to match the {len(names)} names, got {expression.shape}"
        )
    if not np.all(np.isfinite(expression)):
        raise TalkingHeadError("training expressions hold NaN or infinite values")
    n_audio = n_video_frames(len(audio), sr, fps)
    if abs(n_audio - len(expression)) > max(2, 0.05 * len(expression)):
        raise TalkingHeadError(
            f"audio lasts {len(audio) / sr:.2f} s but the expressions cover {len(expression) / fps:.2f} s; "
            "they must come from the same video"
        )
    return audio, expression


def rest_pose(targets: np.ndarray, activity: np.ndarray, names: tuple[str, ...], fps: float,
              erosion_s: float = AudioTrainConfig.rest_erosion_s) -> tuple[np.ndarray, str]:  # fmt: skip
    """The subject's closed-mouth coefficients ``[K]`` and where they came from.

    The median over frames well inside pauses when the clip has enough of them; otherwise the median over
    the 10 % of frames with the least open jaw (someone who talks without pause still closes the mouth).
    """
    from scipy.ndimage import binary_erosion

    silent = activity < 0.5
    reach = int(round(erosion_s * fps))
    if reach > 0:
        silent = binary_erosion(silent, structure=np.ones(2 * reach + 1, bool), border_value=1)
    if silent.sum() >= max(5, 0.03 * len(targets)):
        return np.median(targets[silent], axis=0), "silence"
    if "jawOpen" in names:
        jaw = targets[:, names.index("jawOpen")]
        closed = jaw <= np.percentile(jaw, 10)
        return np.median(targets[closed], axis=0), "least_open_jaw"
    return np.percentile(targets, 10, axis=0), "low_percentile"


def _silence_audio(
    n_samples: int, sr: float, rng: np.random.Generator, levels: tuple[float, float]
) -> np.ndarray:
    """Synthetic silence: half-second stretches of digital zero or white noise at random quiet levels."""
    out = np.zeros(n_samples, np.float32)
    piece = max(1, int(sr * 0.5))
    for start in range(0, n_samples, piece):
        if rng.random() < 0.2:
            continue  # digital silence
        level = 10 ** (rng.uniform(*levels) / 20)
        out[start : start + piece] = rng.normal(0.0, level, min(piece, n_samples - start))
    return out


def _fit_length(rows: np.ndarray, n: int) -> np.ndarray:
    """Cut or edge-pad ``rows[T', ...]`` to ``n`` frames: a video's audio track may end a frame early."""
    if len(rows) < n:
        rows = np.concatenate([rows, np.repeat(rows[-1:], n - len(rows), axis=0)])
    return rows[:n]


def _features(extractor: FeatureExtractor, audio: np.ndarray, sr: float, fps: float, n: int) -> np.ndarray:
    return _fit_length(extractor(audio, sr, fps), n)


def _weights_source(source: str | os.PathLike | None) -> str | None:
    """A folder as an absolute path (the model must find it from any working directory); a hub name as is."""
    if source is None:
        return None
    path = Path(source).expanduser()
    return str(path.resolve()) if path.is_dir() else str(source)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two series; NaN when either is constant."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if len(a) != len(b):
        raise TalkingHeadError(f"cannot correlate series of {len(a)} and {len(b)} frames")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 1e-12 else float("nan")


_APERTURE = {"jawOpen": 1.0, "mouthClose": -1.0, "mouthLowerDownLeft": 0.25, "mouthLowerDownRight": 0.25,
             "mouthUpperUpLeft": 0.25, "mouthUpperUpRight": 0.25, "mouthFunnel": 0.25}  # fmt: skip


def mouth_aperture(expression: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """How far the lips are apart, ``[T]``: jawOpen less mouthClose, plus the lip raisers and lowerers."""
    expression = np.asarray(expression, np.float32)
    out = np.zeros(len(expression), np.float32)
    for name, weight in _APERTURE.items():
        if name in names:
            out += weight * expression[:, names.index(name)]
    return out


def evaluate_jaw_correlation(
    pred: np.ndarray, target: np.ndarray, names: tuple[str, ...], target_names: tuple[str, ...] | None = None
) -> dict[str, float]:
    """Pearson correlations between predicted and real mouth motion: ``{"jawOpen", "aperture"}``.

    ``pred[T, K]`` is named by ``names``; ``target[T, K']`` by ``target_names`` (default: the same names).
    NaN where a series is constant or the name is absent.
    """
    names = tuple(names)
    target_names = names if target_names is None else tuple(target_names)
    n = min(len(pred), len(target))
    pred, target = np.asarray(pred)[:n], np.asarray(target)[:n]
    jaw = float("nan")
    if "jawOpen" in names and "jawOpen" in target_names:
        jaw = pearson(pred[:, names.index("jawOpen")], target[:, target_names.index("jawOpen")])
    aperture = pearson(mouth_aperture(pred, names), mouth_aperture(target, target_names))
    return {"jawOpen": jaw, "aperture": aperture}


def train_audio_model(
    audio: np.ndarray,
    sr: float,
    expression: np.ndarray,
    names: tuple[str, ...],
    fps: float,
    feature_kind: str = "logmel",
    steps: int | None = None,
    device: str | torch.device = "cpu",
    quiet: bool = False,
    seed: int = 0,
    wav2vec2: str | os.PathLike | None = None,
    valid: np.ndarray | None = None,
    config: AudioTrainConfig | None = None,
) -> tuple[AudioToExpression, dict[str, Any]]:
    """Fit an AudioToExpression model to one clip.

    ``audio[S]`` at ``sr`` Hz and ``expression[T, K_all]`` (named ``names``) at ``fps`` come from the same
    video; only the mouth, jaw and cheekPuff coefficients are learned. ``valid[T]`` (optional) drops frames
    whose expressions were interpolated. Returns the model (eval mode, on ``device``) and metrics:
    final loss, the training-set jawOpen/aperture correlation, the rest pose and where it came from.
    """
    cfg = config or AudioTrainConfig()
    steps = cfg.steps if steps is None else int(steps)
    names = tuple(names)
    audio, expression = _check_inputs(audio, sr, expression, names, fps)
    out_names = tuple(n for n in names if is_mouth_name(n))
    if not out_names:
        raise TalkingHeadError(
            "the expressions have no mouth, jaw or cheekPuff coefficient to learn from speech"
        )
    device = torch.device(device)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)

    extractor = make_features(feature_kind, n_mels=cfg.n_mels, wav2vec2=wav2vec2, device=str(device))
    n = len(expression)
    feats = _features(extractor, audio, sr, fps, n)
    activity = _fit_length(voice_activity(audio, sr, fps), n)
    if activity.mean() < cfg.min_voiced_fraction:
        raise TalkingHeadError(
            "the training audio holds (almost) no speech; cannot learn mouth motion from it"
        )
    silent_feats = _features(extractor, _silence_audio(len(audio), sr, rng, cfg.silence_dbfs), sr, fps, n)
    targets = expression[:, [names.index(k) for k in out_names]]
    mask = np.ones(n, bool) if valid is None else np.asarray(valid, bool)[:n]
    if len(mask) != n or mask.sum() < 2:
        raise TalkingHeadError("valid must be a [T] mask with at least two valid frames")
    rest, rest_source = rest_pose(targets[mask], activity[mask], out_names, fps, cfg.rest_erosion_s)

    model_cfg = AudioToExpressionConfig(
        coefficient_names=out_names, feature_kind=extractor.kind, feature_dim=extractor.dim, fps=float(fps),
        hidden=cfg.hidden, layers=cfg.layers, context_s=cfg.context_s, dropout=cfg.dropout,
        wav2vec2=_weights_source(wav2vec2) if feature_kind == "wav2vec2" else None,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]), cpu_compute(cfg.cpu_threads):
        torch.manual_seed(seed)
        model = AudioToExpression(model_cfg).to(device)
        model.set_statistics(feats, targets, rest, mask)
        losses = _fit(model, feats, silent_feats, targets, rest, mask, steps, cfg, rng, device, quiet)
    model.eval()
    pred = predict_features(model, feats, activity)
    fit = evaluate_jaw_correlation(pred[mask], targets[mask], out_names)
    metrics = {
        "steps": steps,
        "frames": n,
        "feature_kind": extractor.kind,
        "final_loss": float(np.mean(losses[-20:])) if losses else float("nan"),
        "train_jaw_correlation": fit["jawOpen"],
        "train_aperture_correlation": fit["aperture"],
        "voiced_fraction": float(activity.mean()),
        "rest_source": rest_source,
        "rest": {k: float(v) for k, v in zip(out_names, rest, strict=True)},
        "seconds": time.perf_counter() - started,
    }
    return model, metrics


def _fit(
    model: AudioToExpression, feats: np.ndarray, silent_feats: np.ndarray, targets: np.ndarray,
    rest: np.ndarray, mask: np.ndarray, steps: int, cfg: AudioTrainConfig, rng: np.random.Generator,
    device: torch.device, quiet: bool,
) -> list[float]:  # fmt: skip
    n = len(feats)
    as_t = lambda a: torch.as_tensor(np.asarray(a, np.float32), device=device)  # noqa: E731
    with torch.no_grad():
        x_all = model.normalize_features(as_t(feats))
        s_all = model.normalize_features(as_t(silent_feats))
    y_all, w_all, rest_t = as_t(targets), as_t(mask), as_t(rest)
    # the log-mel shift that a gain change of 1 dB causes, in normalised units
    db_shift = (np.log(10) / 10) / model.feature_std if model.config.feature_kind == "logmel" else None
    width = min(n, max(4, int(round(cfg.window_s * model.config.fps))))
    span_lo = max(1, int(cfg.silence_span_s[0] * model.config.fps))
    span_hi = max(span_lo + 1, min(width, int(cfg.silence_span_s[1] * model.config.fps)))

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps), eta_min=cfg.lr * 0.05)
    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc="audio model", unit="step", disable=quiet, leave=False)
    for step in bar:
        starts = rng.integers(0, n - width + 1, cfg.batch_size)
        idx = torch.as_tensor(starts[:, None] + np.arange(width), device=device)
        x, s, y, w = x_all[idx], s_all[idx], y_all[idx], w_all[idx]
        silence = np.zeros((cfg.batch_size, width), bool)
        for b in np.flatnonzero(rng.random(cfg.batch_size) < cfg.silence_prob):
            length = int(rng.integers(span_lo, span_hi + 1))
            at = int(rng.integers(0, width - min(length, width) + 1))
            silence[b, at : at + length] = True
        sil = torch.as_tensor(silence, device=device)
        x = torch.where(sil[..., None], s, x)
        y = torch.where(sil[..., None], rest_t, y)
        w = torch.where(sil, torch.ones_like(w), w)
        if db_shift is not None:
            gain = torch.as_tensor(
                rng.uniform(-1, 1, (cfg.batch_size, 1, 1)) * cfg.gain_jitter_db, device=device
            )
            x = x + gain.float() * db_shift
        x = x + cfg.feature_noise * torch.randn_like(x)

        pred = model.forward_normalized(x)
        per_frame = (pred - y).abs().mean(-1)
        value_loss = (per_frame * w).sum() / w.sum().clamp_min(1)
        pair_w = w[:, 1:] * w[:, :-1]
        vel = ((pred[:, 1:] - pred[:, :-1]) - (y[:, 1:] - y[:, :-1])).abs().mean(-1)
        velocity_loss = (vel * pair_w).sum() / pair_w.sum().clamp_min(1)
        loss = value_loss + cfg.velocity_weight * velocity_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % 10 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}")
    bar.close()
    return losses


def predict_features(
    model: AudioToExpression, features: np.ndarray, activity: np.ndarray | None, threads: int | None = 1
) -> np.ndarray:
    """Model on precomputed ``features[T, F]``, gated by ``activity[T]`` (None: ungated) -> ``[T, K]``."""
    model.eval()
    dev = next(model.parameters()).device
    with torch.inference_mode(), cpu_compute(threads):
        x = torch.as_tensor(np.asarray(features, np.float32), device=dev)[None]
        out = model(x)[0]
        act = torch.ones(len(out), device=dev) if activity is None else torch.as_tensor(activity, device=dev)
        out = model.gate(out, act.float())
    return out.cpu().numpy().astype(np.float32)


def predict(
    model: AudioToExpression,
    audio: np.ndarray,
    sr: float,
    *,
    device: str | torch.device | None = None,
    wav2vec2: str | os.PathLike | None = None,
    gate: bool = True,
    fps: float | None = None,
) -> np.ndarray:
    """Mouth coefficients for new speech: ``audio[S]`` at ``sr`` -> ``[T, K_mouth]`` at ``fps``.

    ``T = round(S / sr * fps)``; columns follow ``model.names``. ``fps`` defaults to the model's own
    (the avatar's video rate). With ``gate`` (default) silent frames are pulled to the subject's resting
    mouth. ``wav2vec2`` overrides where the model's wav2vec2 weights are. The extractor is rebuilt from
    the model's config, so a model trained with other mel settings is fed what it learned from.
    """
    cfg = model.config
    fps = float(fps or cfg.fps)
    if device is not None:
        model = model.to(device)
    dev = next(model.parameters()).device
    source = wav2vec2 if wav2vec2 is not None else cfg.wav2vec2
    extractor = make_features(
        cfg.feature_kind, n_mels=cfg.feature_dim, wav2vec2=source, device=str(dev), layer=cfg.wav2vec2_layer
    )
    if extractor.dim != cfg.feature_dim:
        raise TalkingHeadError(
            f"the wav2vec2 weights give {extractor.dim} features, the audio model expects {cfg.feature_dim}"
        )
    audio = np.asarray(audio, np.float32)
    feats = extractor(audio, sr, fps)
    activity = voice_activity(audio, sr, fps) if gate else None
    return predict_features(model, feats, activity)
