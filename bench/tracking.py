"""Tracking + fitting on every shared clip: landmark error (rigid vs full), speed, semantics.

Run: ``python -m bench.tracking`` (writes ``bench/tracking.md``).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from bench.common import CLIPS, DATA, RESULTS, machine, require_data
from talkinghead.morphable.alignment import inter_ocular, similarity_fit
from talkinghead.morphable.fitting import Fitter
from talkinghead.tracking.pipeline import track_video


def mean_shape_rigid_error(landmarks: np.ndarray) -> float:
    """Reference rigid baseline: best similarity fit of the subject's mean shape, all points."""
    from talkinghead.morphable.alignment import align_sequence, to_model_space

    mean = to_model_space(np.nanmean(align_sequence(landmarks, to_model_space(landmarks[0])), 0))
    rot, trans, scale = similarity_fit(torch.as_tensor(mean).double(), torch.as_tensor(landmarks).double())
    pred = (
        scale[:, None, None] * torch.einsum("bij,nj->bni", rot, torch.as_tensor(mean).double())
        + trans[:, None]
    )
    err = np.linalg.norm(pred.numpy()[..., :2] - landmarks[..., :2], axis=-1).mean(-1) / inter_ocular(
        landmarks
    )
    return float(err.mean())


def semantic_checks(result) -> dict[str, float]:
    """Correlate coefficients with model-free measurements on the real landmarks."""
    lm, seq = result.landmarks, result.params
    iod = inter_ocular(lm)
    eye_open = {
        "Right": np.linalg.norm(lm[:, 159, :2] - lm[:, 145, :2], axis=1) / iod,
        "Left": np.linalg.norm(lm[:, 386, :2] - lm[:, 374, :2], axis=1) / iod,
    }
    mouth_width = np.linalg.norm(lm[:, 61, :2] - lm[:, 291, :2], axis=1) / iod
    lip_gap = np.linalg.norm(lm[:, 13, :2] - lm[:, 14, :2], axis=1) / iod
    out = {}
    for side, aperture in eye_open.items():
        blink = seq.coefficient(f"eyeBlink{side}")
        out[f"corr(eyeBlink{side}, -eye aperture)"] = float(np.corrcoef(blink, -aperture)[0, 1])
        closed = aperture < np.quantile(aperture, 0.03)
        out[f"eyeBlink{side} on closed-eye frames / median"] = (
            float(blink[closed].mean()),
            float(np.median(blink)),
        )
    smile = (seq.coefficient("mouthSmileLeft") + seq.coefficient("mouthSmileRight")) / 2
    out["corr(mouthSmile, mouth width)"] = float(np.corrcoef(smile, mouth_width)[0, 1])
    out["corr(jawOpen, lip gap)"] = float(np.corrcoef(seq.coefficient("jawOpen"), lip_gap)[0, 1])
    return out


def run() -> list[dict]:
    """Track and fit every clip; writes bench/tracking.md and returns one record per clip."""
    require_data()
    rows, details, records = [], [], []
    for clip in CLIPS:
        t0 = time.perf_counter()
        result = track_video(DATA / clip, quiet=True)
        wall = time.perf_counter() - t0
        lm = result.landmarks[result.params.valid]
        fitter = Fitter(result.model)
        full = fitter.fit(lm)
        pose_only = fitter.fit(lm, fixed=frozenset(result.model.names))
        e_full = float(fitter.reprojection_error(lm, full).mean())
        e_rigid_neutral = float(fitter.reprojection_error(lm, pose_only).mean())
        e_rigid_mean = mean_shape_rigid_error(lm)
        t = result.timings
        records.append({"clip": clip, "frames": len(result.params), "lost": result.lost,
                        "tracking_fps": t["frames"] / t["track_s"], "track_fit_fps": t["frames"] / wall,
                        "full_error": e_full, "rigid_error": e_rigid_mean})  # fmt: skip
        rows.append(
            f"| {clip} | {len(result.params)} | {result.lost} | {e_rigid_mean * 100:.2f} | {e_rigid_neutral * 100:.2f} "
            f"| {e_full * 100:.2f} | {e_full / e_rigid_mean:.2f} | {t['frames'] / t['track_s']:.0f} "
            f"| {t['frames'] / wall:.0f} |"
        )
        details.append(f"- {clip}: " + "; ".join(
            f"{k} = {v:.2f}" if isinstance(v, float) else f"{k} = {v[0]:.2f} vs {v[1]:.2f}"
            for k, v in semantic_checks(result).items()
        ))  # fmt: skip
        print(rows[-1], file=sys.stderr)
    text = "\n".join([
        "## Tracking and fitting", "",
        f"Machine: {machine()}. Command: `python -m bench.tracking`.",
        "Errors are mean 2D landmark distances over all 478 points, in % of the inter-ocular distance (IOD).",
        "Rigid (mean shape): best similarity fit of the subject's mean shape; rigid (neutral): pose only on the",
        "model's resting neutral; full: pose + 52 personalised blendshapes + pose correctives.", "",
        "| clip | frames | lost | rigid, mean shape % | rigid, neutral % | full fit % | full / rigid | tracking fps "
        "| track+fit fps (incl. personalisation) |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        "Semantic checks (coefficients against model-free landmark measurements):", *details, "",
    ])  # fmt: skip
    (RESULTS / "tracking.md").write_text(text)
    print(text)
    return records


if __name__ == "__main__":
    run()
