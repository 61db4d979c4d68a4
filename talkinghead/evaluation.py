"""Self-reenactment evaluation: render the video's held-out tail from its own tracked parameters.

Scores (each for the avatar and for the nearest-neighbour baseline, in the same run):
- PSNR and SSIM on the face crop (a tight box around the fitted face) and on the generator's head crop;
- LMD: landmark distance between MediaPipe landmarks tracked on the output and on the real frames,
  over all points and over the mouth, normalised by the inter-ocular distance (IOD);
- jitter: mean landmark acceleration per frame (in IOD), against the real video's own.
The baseline retrieves, for each held-out frame, the training frame with the closest parameters
(expression and rotation) and pastes its head crop in place, aligned on the head's position and
size: what a generator must beat to earn its keep.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from talkinghead.errors import TalkingHeadError
from talkinghead.training.crop import crop_image, paste_crop

_OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
_INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
MOUTH = np.array(sorted(_OUTER_LIPS + _INNER_LIPS))  # MediaPipe lip contours


@dataclass(frozen=True)
class EvalConfig:
    max_frames: int = 300  # held-out frames scored (from the start of the hold-out): a few minutes on a CPU
    face_size: int = 128  # face crops are compared at this size, whatever the avatar's resolution
    face_margin: float = 1.1  # the face box is the fitted face's extent times this
    sample_rows: int = 4  # frames in the side-by-side picture


# --------------------------------------------------------------------------------------------- metrics
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from talkinghead.training.losses import ssim_map

    ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
    return float(ssim_map(ta, tb).mean())


def landmark_scores(real: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """LMD (all points, mouth) in IOD units over frames where both were tracked, and jitter of each."""
    from talkinghead.morphable.alignment import inter_ocular

    ok = np.isfinite(real).all((1, 2)) & np.isfinite(test).all((1, 2))
    if not ok.any():
        return {"lmd": float("nan"), "mouth_lmd": float("nan"), "jitter": float("nan"), "tracked": 0}
    iod = inter_ocular(real[ok])[:, None]
    dist = np.linalg.norm(real[ok][..., :2] - test[ok][..., :2], axis=-1) / iod
    return {
        "lmd": float(dist[:, :468].mean()),
        "mouth_lmd": float(dist[:, MOUTH].mean()),
        "jitter": jitter(test, real),
        "tracked": int(ok.sum()),
    }


def jitter(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean landmark acceleration (IOD per frame^2) over runs of consecutive tracked frames."""
    from talkinghead.morphable.alignment import inter_ocular

    ok = np.isfinite(points).all((1, 2)) & np.isfinite(reference).all((1, 2))
    three = ok[2:] & ok[1:-1] & ok[:-2]
    if not three.any():
        return float("nan")
    acc = points[2:, :468, :2] - 2 * points[1:-1, :468, :2] + points[:-2, :468, :2]
    iod = inter_ocular(reference[1:-1])
    val = np.linalg.norm(acc, axis=-1).mean(1) / np.maximum(iod, 1e-6)
    return float(val[three].mean())


# -------------------------------------------------------------------------------------------- tracking
def track_landmarks(frames: list[np.ndarray], name: str = "mediapipe", quiet: bool = True) -> np.ndarray:
    """``[T,478,3]`` pixel landmarks per frame (NaN where no face), through the tracker plugin."""
    from talkinghead.plugins import load

    tracker_cls = load("tracker", name)
    tracker = tracker_cls()
    out = np.full((len(frames), 478, 3), np.nan, np.float32)
    try:
        for i, frame in enumerate(tqdm(frames, desc="tracking", unit="frame", disable=quiet)):
            found = tracker(frame)
            if found is not None:
                out[i] = np.asarray(found, np.float32)[:478]
    finally:
        close = getattr(tracker, "close", None)
        if close is not None:
            close()
    return out


# ------------------------------------------------------------------------------------------ evaluation
def face_box(vertices: np.ndarray, margin: float) -> np.ndarray:
    """Square box ``(x0, y0, size)`` around the fitted face points ``[N,2+]``."""
    lo, hi = vertices[:468, :2].min(0), vertices[:468, :2].max(0)
    side = float((hi - lo).max()) * margin
    c = (lo + hi) / 2
    return np.array([round(c[0] - side / 2), round(c[1] - side / 2), round(side)], np.int64)


def evaluate(
    avatar_dir: str | os.PathLike,
    report_dir: str | os.PathLike,
    video: str | os.PathLike | None = None,
    config: EvalConfig = EvalConfig(),
    device: str = "cpu",
    quiet: bool = False,
    tracker: str = "mediapipe",
    landmarks: Any = None,
) -> dict[str, Any]:
    """Score the avatar on its video's held-out tail; writes report.md, metrics.json, side_by_side.png
    and comparison.mp4 into ``report_dir`` and returns the metrics. ``landmarks`` replaces the tracker
    (a function ``frames -> [T,478,3]``), for tests."""
    from talkinghead.avatar import Avatar
    from talkinghead.media import VideoWriter, iter_frames, probe_video, write_png
    from talkinghead.training.stage2 import AuxConfig, match_features, nearest_frames

    avatar = Avatar.load(avatar_dir, device)
    training = avatar.info.get("training", {})
    video = Path(video or training.get("video", ""))
    if not video.is_file():
        raise TalkingHeadError(f"the training video {video} is not there; pass --video with its new location")
    start, stop = training.get("holdout", [0, 0])
    if stop - start < 3:
        raise TalkingHeadError(
            "this avatar was trained without a hold-out (--holdout 0); nothing to evaluate on"
        )
    info = probe_video(video)
    if (
        abs(info.frames - training.get("frames", info.frames)) > 1
        or (info.width, info.height) != avatar.frame_size
    ):
        raise TalkingHeadError(
            f"{video} is not the video this avatar was trained on (frame count or size differ)"
        )
    stop = min(stop, start + config.max_frames)
    seq = avatar.training_params
    held = seq.slice(start, stop)
    boxes = avatar.training_boxes[start:stop]
    report = Path(report_dir)
    report.mkdir(parents=True, exist_ok=True)

    # nearest-neighbour baseline: closest training frame in parameter space
    names = avatar.names
    bank = match_features(seq.slice(0, start), names, AuxConfig())
    nn_idx = nearest_frames(match_features(held, names, AuxConfig()), bank)
    res = avatar.resolution
    # the retrieved face is cut out where its head is (translation, scale) and pasted where the
    # held-out head is, so the baseline is not penalised for the head having moved
    users: dict[int, list[int]] = {}
    for i, j in enumerate(nn_idx.tolist()):
        users.setdefault(j, []).append(i)
    nn_crops: dict[int, np.ndarray] = {}
    for j, frame in enumerate(iter_frames(video, 0, start)):
        for i in users.get(j, ()):
            ratio = seq.scale[j] / held.scale[i]
            x0, y0, side = boxes[i]
            src = np.array([round(seq.translation[j, 0] + (x0 - held.translation[i, 0]) * ratio),
                            round(seq.translation[j, 1] + (y0 - held.translation[i, 1]) * ratio),
                            round(side * ratio)], np.int64)  # fmt: skip
            nn_crops[i] = crop_image(frame, src, res)

    real = list(iter_frames(video, start, stop))
    ours, nn = [], []
    generated = avatar.generate(held, boxes)
    pairs = tqdm(
        zip(generated, real, strict=False), total=len(real), desc="rendering", unit="frame", disable=quiet
    )
    for i, ((rgb, alpha), frame) in enumerate(pairs):
        ours.append(paste_crop(frame, rgb, alpha, boxes[i]))
        crop = nn_crops[i].astype(np.float32) / 255
        nn.append(paste_crop(frame, crop, np.ones(crop.shape[:2], np.float32), boxes[i]))

    with torch.no_grad():
        verts = avatar.model.vertices(held.expression, held.rotation, held.translation, held.scale).numpy()
    scores: dict[str, dict[str, float]] = {}
    crops = {"real": [], "ours": [], "nn": []}
    for name, frames in (("ours", ours), ("nn", nn)):
        p_face, s_face, p_head, s_head = [], [], [], []
        for i, (out, gt) in enumerate(zip(frames, real, strict=True)):
            fb = face_box(verts[i], config.face_margin)
            a, b = crop_image(out, fb, config.face_size), crop_image(gt, fb, config.face_size)
            p_face.append(psnr(a, b))
            s_face.append(ssim(a, b))
            ha, hb = crop_image(out, boxes[i], res), crop_image(gt, boxes[i], res)
            p_head.append(psnr(ha, hb))
            s_head.append(ssim(ha, hb))
            crops[name].append(ha)
            if name == "ours":
                crops["real"].append(hb)
        scores[name] = {"psnr_face": float(np.mean(p_face)), "ssim_face": float(np.mean(s_face)),
                        "psnr_head": float(np.mean(p_head)), "ssim_head": float(np.mean(s_head))}  # fmt: skip

    track = landmarks or (lambda frames: track_landmarks(frames, tracker, quiet))
    real_lm = track(real)
    for name, frames in (("ours", ours), ("nn", nn)):
        scores[name].update(landmark_scores(real_lm, track(frames)))
    scores["real"] = {
        "jitter": jitter(real_lm, real_lm),
        "tracked": int(np.isfinite(real_lm).all((1, 2)).sum()),
    }

    metrics = {
        "avatar": str(avatar_dir), "video": str(video), "frames": [int(start), int(stop)],
        "resolution": res, "scores": scores,
    }  # fmt: skip
    from talkinghead.atomic import write_text_atomic

    write_text_atomic(report / "metrics.json", json.dumps(metrics, indent=2))
    rows = np.linspace(0, len(real) - 1, min(config.sample_rows, len(real))).astype(int)
    picture = np.concatenate(
        [np.concatenate([crops[k][i] for k in ("real", "ours", "nn")], 1) for i in rows], 0
    )
    write_png(report / "side_by_side.png", picture)
    with VideoWriter(report / "comparison.mp4", avatar.fps, (3 * res, res), quiet=True) as writer:
        for i in range(len(real)):
            writer.write(np.concatenate([crops[k][i] for k in ("real", "ours", "nn")], 1))
    write_text_atomic(report / "report.md", _markdown(metrics))
    return metrics


def _markdown(metrics: dict[str, Any]) -> str:
    s = metrics["scores"]
    start, stop = metrics["frames"]

    def f(v: float, digits: int = 3) -> str:
        return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"

    lines = [
        "# Self-reenactment report",
        "",
        f"Avatar `{metrics['avatar']}`, video `{metrics['video']}`, held-out frames {start}-{stop - 1} "
        f"({stop - start} frames, never seen in training), generator resolution {metrics['resolution']}.",
        "",
        "| metric | avatar | nearest-neighbour baseline | better |",
        "|---|---|---|---|",
    ]
    rows = [("PSNR face (dB)", "psnr_face", 2, True), ("SSIM face", "ssim_face", 4, True),
            ("PSNR head crop (dB)", "psnr_head", 2, True), ("SSIM head crop", "ssim_head", 4, True),
            ("LMD (IOD)", "lmd", 4, False), ("mouth LMD (IOD)", "mouth_lmd", 4, False),
            ("jitter (IOD/frame^2)", "jitter", 5, False)]  # fmt: skip
    for label, key, digits, higher in rows:
        a, b = s["ours"].get(key), s["nn"].get(key)
        better = ""
        if a is not None and b is not None and np.isfinite(a) and np.isfinite(b):
            better = "avatar" if (a > b) == higher else "baseline"
        lines.append(f"| {label} | {f(a, digits)} | {f(b, digits)} | {better} |")
    lines += [
        "",
        f"Real video's own landmark jitter: {f(s['real']['jitter'], 5)} IOD/frame^2 "
        f"(landmarks found in {s['real']['tracked']} of {stop - start} real frames, "
        f"{s['ours'].get('tracked', 0)} avatar frames, {s['nn'].get('tracked', 0)} baseline frames).",
        "",
        "LMD: mean distance between MediaPipe landmarks on the output and on the real frame, in units of",
        "the inter-ocular distance. Jitter: mean landmark acceleration; close to the real video's is best.",
        "",
        "![ground truth | avatar | nearest neighbour](side_by_side.png)",
        "",
        "`comparison.mp4`: the same three columns over the whole held-out part.",
        "",
    ]
    return "\n".join(lines)
