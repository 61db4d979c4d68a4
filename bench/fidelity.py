"""Does stage 2 improve expression fidelity on parameters beyond the video's range?

Run: ``python -m bench.fidelity [--clip talk_woman_8s.mp4] [--resolution 128] [--stage1-steps 1200]
[--stage2-steps 400] [--frames 96] [--out runs/bench/fidelity] [--retrain]``
(writes ``bench/fidelity.md`` and ``bench/fidelity.png``).

Two avatars of one clip differ only in stage 2: ``stage1`` is trained for the stage-1 steps alone;
``stage12`` resumes from ``stage1``'s final checkpoint (same weights, optimiser and RNG state) and runs
the stage-2 steps, so any difference is stage 2's doing. Both then render the same out-of-range
parameters, drawn with the training sampler (``AuxSampler``) under a seed training never used. The
rendered frames are re-tracked with MediaPipe and scored against the driving parameters in two ways:
landmark distance to the posed driving mesh, and coefficients fitted on the re-tracked landmarks
against the driving coefficients. A fit on the driving mesh itself (perfect landmarks) shows how well
the fitter can recover coefficients at all; the held-out tail of the video, in range, is a control.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.common import DATA, RESULTS, machine, require_data

if TYPE_CHECKING:
    from talkinghead.avatar import Avatar
    from talkinghead.morphable.model import MorphableModel
    from talkinghead.params import ParamSequence
    from talkinghead.training.pipeline import TrainOptions

ROOT = RESULTS.parent
AUX_SEED = 12345  # sampler seed for the test parameters; training draws from seed-derived streams
MARGIN = 0.1  # a driving coefficient counts as out of range above the video's 99th percentile + this
CORR_NAMES = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight")
ARMS = {"stage1": "stage 1 only", "stage12": "stage 1 + 2"}
# MediaPipe eye contours (the same loops generator/guide.py closes for the eye masks)
EYES = np.array(sorted({33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7,
                        263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249}))  # fmt: skip


@dataclass(frozen=True)
class Setup:
    """Everything both avatars share; only ``stage2_steps`` differs between them."""

    resolution: int = 128
    stage1_steps: int = 1200
    stage2_steps: int = 400
    seed: int = 0
    holdout: float = 0.2
    batch_size: int = 8


# ------------------------------------------------------------------------------------------ training
def _options(setup: Setup, stage2_steps: int, quiet: bool, resume: bool) -> TrainOptions:
    from talkinghead.training.loop import TrainConfig
    from talkinghead.training.pipeline import TrainOptions

    train = TrainConfig(
        stage1_steps=setup.stage1_steps, stage2_steps=stage2_steps, batch_size=setup.batch_size
    )
    return TrainOptions(resolution=setup.resolution, holdout=setup.holdout, quiet=quiet, seed=setup.seed,
                        resume=resume, train=train)  # fmt: skip


def _reusable(avatar_dir: Path, clip: Path, setup: Setup, stage2_steps: int) -> bool:
    """Whether ``avatar_dir`` is a finished avatar of ``clip`` trained with exactly this setup."""
    try:
        info = json.loads((avatar_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    t = info.get("training", {})
    n_train = t.get("frames", 0) - int(round(t.get("frames", 0) * setup.holdout))
    return (
        t.get("video") == str(clip.resolve()) and info.get("resolution") == setup.resolution
        and t.get("stage1_steps") == setup.stage1_steps and t.get("stage2_steps") == stage2_steps
        and t.get("batch_size") == setup.batch_size and t.get("seed") == setup.seed
        and t.get("steps_done") == setup.stage1_steps + stage2_steps and t.get("holdout", [None])[0] == n_train
    )  # fmt: skip


def _fresh(avatar_dir: Path) -> Path:
    """Remove an old avatar and its work folder; returns the work folder."""
    from talkinghead.training.pipeline import work_dir_for

    work = work_dir_for(avatar_dir)
    shutil.rmtree(avatar_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return work


def _seed_stage2(stage1: Path, work: Path) -> None:
    """Give the stage-2 run stage 1's tracking and final checkpoint, so it resumes where stage 1 ended."""
    from talkinghead.training.pipeline import work_dir_for

    src = work_dir_for(stage1)
    work.mkdir(parents=True)
    for name in ("track.npz", "track_model.safetensors"):
        shutil.copy2(src / name, work / name)
    shutil.copytree(src / "checkpoints", work / "checkpoints")


def train_pair(
    clip: Path, out_dir: Path, setup: Setup, quiet: bool, retrain: bool
) -> tuple[dict[str, Path], bool]:
    """Both avatars, trained (or reused when already trained with this setup), and whether any was trained."""
    from talkinghead.training.pipeline import train_avatar

    out_dir.mkdir(parents=True, exist_ok=True)
    a, b = out_dir / "stage1", out_dir / "stage12"
    if retrain or not _reusable(a, clip, setup, 0):
        _fresh(a)
        _log(quiet, f"training {a} ({setup.stage1_steps} stage-1 steps)")
        train_avatar(clip, a, _options(setup, 0, quiet, resume=False))
        retrain = True  # stage 1 changed: the stage-2 avatar must start again from it
    if retrain or not _reusable(b, clip, setup, setup.stage2_steps):
        retrain = True
        work = _fresh(b)
        _seed_stage2(a, work)
        _log(
            quiet,
            f"training {b} (resuming {a} at step {setup.stage1_steps}, {setup.stage2_steps} stage-2 steps)",
        )
        train_avatar(clip, b, _options(setup, setup.stage2_steps, quiet, resume=True))
    return {"stage1": a, "stage12": b}, retrain


def training_seconds(dirs: dict[str, Path]) -> dict[str, float]:
    """Wall time of each avatar's training, tracking included; stage 1 + 2 counts its stage-1 part too."""
    sec = {
        k: float(json.loads((d / "config.json").read_text())["training"]["seconds"]) for k, d in dirs.items()
    }
    return {"stage1": sec["stage1"], "stage12": sec["stage1"] + sec["stage12"]}


# ------------------------------------------------------------------------------------------ parameters
def out_of_range_params(
    real: ParamSequence, frames: int, seed: int = AUX_SEED
) -> tuple[ParamSequence, np.ndarray]:
    """``frames`` frames of sampler sequences (concatenated) and, per frame, the real frame it is anchored to.

    The anchor (whose position the sequence keeps) also gives the background the head is pasted on.
    """
    from talkinghead.training.stage2 import AuxConfig, AuxSampler

    sampler, rng = AuxSampler(real, AuxConfig()), np.random.default_rng(seed)
    parts, anchors = [], []
    while sum(len(p) for p in parts) < frames:
        seq, anchor = sampler.sample(rng)
        parts.append(seq)
        anchors.append(np.full(len(seq), anchor))

    def cat(field: str) -> np.ndarray:
        return np.concatenate([getattr(p, field) for p in parts])[:frames]

    gaze = None if real.gaze is None else cat("gaze")
    seq = dataclasses.replace(
        real, expression=cat("expression"), rotation=cat("rotation"), translation=cat("translation"),
        scale=cat("scale"), valid=cat("valid"), gaze=gaze, metadata={},
    )  # fmt: skip
    return seq, np.concatenate(anchors)[:frames]


def range_report(real: ParamSequence, driving: ParamSequence) -> dict[str, Any]:
    """How far the test parameters go beyond what the training part of the video shows."""
    p99, top = np.percentile(real.expression, 99, 0), real.expression.max(0)
    beyond = driving.expression > p99 + MARGIN
    lo, hi = real.rotation.min(0), real.rotation.max(0)
    rot_out = np.maximum(driving.rotation - hi, lo - driving.rotation).max(1)
    return {
        "frames": len(driving),
        "frames_beyond_p99": float(beyond.any(1).mean()),
        "frames_beyond_max": float((driving.expression > top + MARGIN).any(1).mean()),
        "entries_beyond_p99": int(beyond.sum()),
        "coefficients_beyond_p99": int(beyond.any(0).sum()),
        "mean_excess": float((driving.expression - p99)[beyond].mean()) if beyond.any() else 0.0,
        "frames_rotation_beyond": float((rot_out > 0).mean()),
        "max_rotation_beyond_deg": float(np.degrees(max(rot_out.max(), 0.0))),
    }


def pushed_mask(real: ParamSequence, driving: ParamSequence) -> np.ndarray:
    """``[T,K]``: the coefficients the sampler pushed beyond the video's range in each frame."""
    return driving.expression > np.percentile(real.expression, 99, 0) + MARGIN


# ------------------------------------------------------------------------------------------ rendering
def frames_at(video: Path, indices: np.ndarray) -> dict[int, np.ndarray]:
    """The video's frames at ``indices`` (read in one pass)."""
    from talkinghead.media import iter_frames

    wanted = set(int(i) for i in indices)
    return {i: f for i, f in enumerate(iter_frames(video, 0, max(wanted) + 1)) if i in wanted}


def render(
    avatar: Avatar, params: ParamSequence, boxes: np.ndarray, backgrounds: list[np.ndarray]
) -> list[np.ndarray]:
    """Full frames: the generator's whole RGB crop pasted opaque (feathered border only).

    Opaque, not through the generated alpha, so no pixel of the real frame's own face (in range, and
    what the tracker would happily lock on to) can show through a half-transparent generated one.
    """
    from talkinghead.training.crop import paste_crop

    gen = avatar.generate(params, boxes)
    opaque = np.ones((avatar.resolution, avatar.resolution), np.float32)
    return [
        paste_crop(bg, rgb, opaque, box) for (rgb, _), bg, box in zip(gen, backgrounds, boxes, strict=True)
    ]


def mesh(model: MorphableModel, params: ParamSequence) -> np.ndarray:
    """The driving mesh ``[T,478,3]`` in frame pixels: what the rendered face should look like."""
    import torch

    with torch.no_grad():
        return model.vertices(params.expression, params.rotation, params.translation, params.scale).numpy()


# ------------------------------------------------------------------------------------------ scoring
def landmark_errors(tracked: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Detection rate and mean 2D landmark distance (fraction of IOD): all face points, mouth, eyes."""
    from talkinghead.evaluation import MOUTH
    from talkinghead.morphable.alignment import inter_ocular

    ok = np.isfinite(tracked).all((1, 2))
    out = {
        "detected": float(ok.mean()),
        "per_frame": {k: np.full(len(tracked), np.nan) for k in ("lmd", "mouth")},
    }
    if not ok.any():
        return out | {"lmd": np.nan, "mouth": np.nan, "eyes": np.nan}
    dist = np.linalg.norm(tracked[ok, :, :2] - target[ok, :, :2], axis=-1) / inter_ocular(target[ok])[:, None]
    out["per_frame"]["lmd"][ok] = dist[:, :468].mean(1)
    out["per_frame"]["mouth"][ok] = dist[:, MOUTH].mean(1)
    return out | {"lmd": float(dist[:, :468].mean()), "mouth": float(dist[:, MOUTH].mean()),
                  "eyes": float(dist[:, EYES].mean())}  # fmt: skip


def fit_coefficients(model: MorphableModel, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expression coefficients ``[T,K]`` fitted on landmarks (lost frames interpolated) and which were found."""
    from talkinghead.morphable.fitting import Fitter, interpolate_missing

    filled, ok = interpolate_missing(landmarks)
    if ok.sum() < 3:
        return np.full((len(landmarks), model.n_coefficients), np.nan, np.float32), ok
    return Fitter(model).fit(filled).expression, ok


def coefficient_errors(
    fit: np.ndarray, ok: np.ndarray, driving: ParamSequence, pushed: np.ndarray, mesh_fit: np.ndarray
) -> dict[str, Any]:
    """Fitted against driving coefficients, over the frames where a face was found.

    ``mae_pushed`` / ``bias_pushed``: over the out-of-range entries (a negative bias: the face shows
    less of the expression than asked for). ``mae_pushed_mesh``: the same entries against the fit of
    the driving mesh itself, which takes out what the fitter cannot recover even from perfect points.
    """
    from talkinghead.audio.train import pearson

    nan = {k: np.nan for k in ("mae_pushed", "bias_pushed", "mae_pushed_mesh", "mae_all")}
    if ok.sum() < 3:
        return nan | {"corr": dict.fromkeys(CORR_NAMES, np.nan)}
    fit, drv, sel, ref = fit[ok], driving.expression[ok], pushed[ok], mesh_fit[ok]
    err = fit - drv
    names = list(driving.coefficient_names)
    pushed_scores = nan if not sel.any() else {
        "mae_pushed": float(np.abs(err[sel]).mean()), "bias_pushed": float(err[sel].mean()),
        "mae_pushed_mesh": float(np.abs(fit - ref)[sel].mean()),
    }  # fmt: skip
    return pushed_scores | {
        "mae_all": float(np.abs(err).mean()),
        "corr": {n: pearson(fit[:, names.index(n)], drv[:, names.index(n)]) for n in CORR_NAMES},
    }


def per_coefficient(
    real: ParamSequence, driving: ParamSequence, pushed: np.ndarray, fits: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """For each pushed coefficient: mean driving value and mean fitted value of each source, on its pushed frames.

    Shows which expressions a render under-expresses, next to what the fitter gets from the mesh itself.
    """
    names, p99 = driving.coefficient_names, np.percentile(real.expression, 99, 0)
    out = []
    for j in np.nonzero(pushed.any(0))[0]:
        sel = pushed[:, j]
        out.append({"name": names[j], "frames": int(sel.sum()), "p99": float(p99[j]),
                    "driving": float(driving.expression[sel, j].mean()),
                    **{k: float(np.nanmean(f[sel, j])) for k, f in fits.items()}})  # fmt: skip
    return out


def paired_difference(
    a: np.ndarray, b: np.ndarray, block: int = 8, draws: int = 2000
) -> tuple[float, float, float]:
    """Mean of ``b - a`` over frames both have, with a 95 % block-bootstrap interval.

    Blocks of ``block`` frames (one keyframe interval) keep neighbouring, correlated frames together.
    """
    d = b - a
    d = d[np.isfinite(d)]
    if len(d) < block:
        return float(np.mean(d)) if len(d) else np.nan, np.nan, np.nan
    blocks = [d[i : i + block].mean() for i in range(0, len(d) - block + 1, block)]
    rng = np.random.default_rng(0)
    means = rng.choice(blocks, (draws, len(blocks))).mean(1)
    return float(np.mean(d)), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# ------------------------------------------------------------------------------------------ reporting
def _f(x: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x * scale:.{digits}f}"


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.{digits}f} %"


def _diff(d: list[float]) -> str:
    return f"{_f(d[0], 100)} ({_f(d[1], 100)} to {_f(d[2], 100)})"


def markdown(r: dict[str, Any]) -> str:
    s, rg, rows = r["setup"], r["range"], r["rows"]
    corr_head = " | ".join(f"r {n}" for n in CORR_NAMES)
    lines = [
        "## Stage 2 against stage 1 on out-of-range parameters", "",
        f"Machine: {r['machine']}. Command: `{r['command']}` ({r['seconds']:.0f} s"
        + (" in all, training included" if r["trained"] else "; the avatars were reused from an earlier run")
        + ").", "",
        f"Clip `{r['clip']}`, {s['resolution']} px, batch {s['batch_size']}, seed {s['seed']}, first "
        f"{100 * (1 - s['holdout']):.0f} % of the frames trained on. *stage 1 only*: {s['stage1_steps']} steps; "
        f"*stage 1 + 2*: the same run resumed from its final checkpoint for {s['stage2_steps']} stage-2 steps "
        "(identical stage 1, so the difference is stage 2 alone; note that half of each stage-2 batch replays "
        "real frames, so *stage 1 + 2* has also seen more real-frame steps).", "",
        f"Test parameters: {rg['frames']} frames of `AuxSampler` sequences (default `AuxConfig`, rng seed "
        f"{AUX_SEED}); the generator's whole RGB crop is pasted opaque on the training frame each sequence is "
        "anchored to (its alpha is not used, so the real face underneath cannot show through). "
        f"{100 * rg['frames_beyond_p99']:.0f} % of the frames push some coefficient more than {MARGIN} above the "
        f"video's 99th percentile ({100 * rg['frames_beyond_max']:.0f} % beyond its maximum + {MARGIN}); "
        f"{rg['entries_beyond_p99']} such entries over {rg['coefficients_beyond_p99']} coefficients, on average "
        f"{rg['mean_excess']:.2f} above the 99th percentile. {100 * rg['frames_rotation_beyond']:.0f} % of the "
        f"frames turn the head beyond the video's range (at most {rg['max_rotation_beyond_deg']:.1f} deg).", "",
        "Rendered frames are re-tracked with MediaPipe. LMD: mean 2D distance to the posed driving mesh in % "
        "of the inter-ocular distance (468 face points; lip contours; eye contours). Coefficients are fitted "
        "on the re-tracked landmarks (`Fitter(avatar.model)`); MAE and bias over the pushed (out-of-range) "
        "entries against the driving values and against the fit of the driving mesh (*vs mesh fit*: what the "
        "fitter itself cannot recover taken out), MAE over all coefficients, Pearson r over frames. The *driving "
        "mesh* row fits the driving mesh itself: the best any render can score on the coefficient columns.", "",
        f"| avatar | face found | LMD % | mouth % | eyes % | MAE pushed | bias pushed | MAE pushed vs mesh fit "
        f"| MAE all | {corr_head} | training s |",
        "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(CORR_NAMES),
    ]  # fmt: skip
    for key, label in (*ARMS.items(), ("oracle", "driving mesh")):
        x = rows[key]
        corr = " | ".join(_f(x["corr"][n]) for n in CORR_NAMES)
        secs = f"{r['train_seconds'][key]:.0f}" if key in r["train_seconds"] else ""
        lines.append(
            f"| {label} | {_pct(x.get('detected'), 0)} | {_f(x.get('lmd'), 100)} | {_f(x.get('mouth'), 100)} "
            f"| {_f(x.get('eyes'), 100)} | {_f(x['mae_pushed'], 1, 3)} | {_f(x['bias_pushed'], 1, 3)} "
            f"| {_f(x['mae_pushed_mesh'], 1, 3)} | {_f(x['mae_all'], 1, 3)} | {corr} | {secs} |"
        )
    d, c = r["difference"], r["control"]
    lines += [
        "",
        "Paired per-frame LMD difference, stage 1 + 2 minus stage 1, in % IOD (negative = stage 2 better; 95 % "
        f"block-bootstrap interval, blocks of 8 frames): all points {_diff(d['lmd'])}, mouth {_diff(d['mouth'])}.",
        "",
        f"Control, in range: the held-out tail ({c['frames']} frames, its own tracked parameters, pasted opaque on "
        "the real frames). "
        "The *real frames* row is MediaPipe on the video itself against its fitted mesh: the floor of this measure.",
        "",
        "| avatar | face found | LMD % | mouth % | eyes % |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for key, label in (("real", "real frames"), *ARMS.items()):
        x = c["rows"][key]
        lines.append(f"| {label} | {_pct(x['detected'], 0)} | {_f(x['lmd'], 100)} | {_f(x['mouth'], 100)} "
                     f"| {_f(x['eyes'], 100)} |")  # fmt: skip
    lines += [
        "",
        "Per pushed coefficient: mean value on the frames where it is pushed, as driven, as fitted on the driving "
        "mesh, and as fitted on each avatar's re-tracked render, with the video's 99th percentile.",
        "",
        "| coefficient | frames | video p99 | driving | fit on mesh | stage 1 only | stage 1 + 2 |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {c['name']} | {c['frames']} | {c['p99']:.2f} | {c['driving']:.2f} | {_f(c['oracle'])} "
              f"| {_f(c['stage1'])} | {_f(c['stage12'])} |" for c in r["per_coefficient"]]  # fmt: skip
    lines += ["", f"Training s: wall time including tracking (stage 1 + 2 includes its stage-1 run). "
              f"Sample renders: `{r['samples']}`.", "", "![stage 2 against stage 1](fidelity.png)", ""]  # fmt: skip
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> Path:
    """Three panels of bars: landmark error, coefficient error, coefficient correlation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["rows"]
    panels = [
        ("Landmark error (% IOD)", ["lmd", "mouth", "eyes"], ["all", "mouth", "eyes"], 100.0, list(ARMS)),
        ("Coefficient error", ["mae_pushed", "mae_pushed_mesh", "mae_all"],
         ["MAE pushed", "pushed vs\nmesh fit", "MAE all"], 1.0, [*ARMS, "oracle"]),
        ("Correlation with driving", CORR_NAMES, [n.replace("eyeBlink", "blink").replace("mouthSmile", "smile")
                                                  for n in CORR_NAMES], 1.0, [*ARMS, "oracle"]),
    ]  # fmt: skip
    labels = {**ARMS, "oracle": "driving mesh"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=110, gridspec_kw={"width_ratios": [3, 2, 5]})
    for ax, (title, keys, ticks, scale, arms) in zip(axes, panels, strict=True):
        width = 0.8 / len(arms)
        x = np.arange(len(keys))
        for i, arm in enumerate(arms):
            vals = [
                scale * (rows[arm]["corr"][k] if k in CORR_NAMES else rows[arm].get(k, np.nan)) for k in keys
            ]
            bars = ax.bar(
                x + (i - (len(arms) - 1) / 2) * width, np.nan_to_num(vals), width, label=labels[arm]
            )
            ax.bar_label(bars, labels=[_f(v) for v in vals], fontsize=6)
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_title(title, fontsize=9)
    axes[2].set_ylim(top=1.25)  # room for the legend above the correlation bars
    axes[2].legend(fontsize=7, loc="upper center", ncol=3)
    fig.suptitle(
        f"Stage 2 against stage 1, {r['range']['frames']} out-of-range frames ({r['clip']})", fontsize=10
    )
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def sample_sheet(
    renders: dict[str, list[np.ndarray]], target: np.ndarray, boxes: np.ndarray, path: Path
) -> Path:
    """A few frames, one column per avatar, head crops with the driving lips and eyes in green."""
    import cv2

    from talkinghead.evaluation import MOUTH
    from talkinghead.media import write_png
    from talkinghead.training.crop import crop_image

    size = 192
    rows = []
    for i in np.linspace(0, len(target) - 1, 4).astype(int):
        tiles = []
        for frames in renders.values():
            tile = np.ascontiguousarray(crop_image(frames[i], boxes[i], size))
            for x, y in (target[i, np.concatenate([MOUTH, EYES]), :2] - boxes[i, :2]) * size / boxes[i, 2]:
                cv2.circle(tile, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
            tiles.append(tile)
        rows.append(np.concatenate(tiles, 1))
    return write_png(path, np.concatenate(rows, 0))


# ------------------------------------------------------------------------------------------ the run
def _log(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def _command(clip: Path, out_dir: Path, setup: Setup, frames: int) -> str:
    defaults = Setup()
    parts = ["python -m bench.fidelity"]
    if clip.name != "talk_woman_8s.mp4":
        parts.append(f"--clip {clip.name}")
    for flag, value, default in (("--resolution", setup.resolution, defaults.resolution),
                                 ("--stage1-steps", setup.stage1_steps, defaults.stage1_steps),
                                 ("--stage2-steps", setup.stage2_steps, defaults.stage2_steps),
                                 ("--frames", frames, 96), ("--seed", setup.seed, 0)):  # fmt: skip
        if value != default:
            parts.append(f"{flag} {value}")
    try:
        shown = out_dir.resolve().relative_to(ROOT)
    except ValueError:
        shown = out_dir
    if str(shown) != "runs/bench/fidelity":
        parts.append(f"--out {shown}")
    return " ".join(parts)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items() if k != "per_frame"}
    if isinstance(x, np.floating | float):
        return float(x)
    return x


def run(clip: Path, out_dir: Path, resolution: int = 128, stage1_steps: int = 1200, stage2_steps: int = 400,
        frames: int = 96, seed: int = 0, quiet: bool = False, retrain: bool = False) -> dict:  # fmt: skip
    """Train (or reuse) both avatars, score them; writes bench/fidelity.md and .png and returns the numbers.

    The returned dict has ``markdown`` and ``plot`` (relative to ``bench/``) for ``python -m bench``.
    """
    import torch

    from talkinghead.avatar import Avatar
    from talkinghead.evaluation import track_landmarks
    from talkinghead.media import iter_frames

    require_data()
    torch.set_num_threads(1)
    started = time.perf_counter()
    clip, out_dir = Path(clip), Path(out_dir)
    setup = Setup(resolution, stage1_steps, stage2_steps, seed)
    dirs, trained = train_pair(clip, out_dir, setup, quiet, retrain)
    avatars = {k: Avatar.load(d) for k, d in dirs.items()}
    ref = avatars["stage1"]
    start, stop = ref.info["training"]["holdout"]
    real = ref.training_params.slice(0, start)

    # out of range: sampler parameters, pasted on each sequence's anchor frame
    driving, anchors = out_of_range_params(real, frames)
    pushed = pushed_mask(real, driving)
    boxes = ref.boxes_for(driving)
    bgs = frames_at(clip, anchors)
    target = mesh(ref.model, driving)
    mesh_fit, found = fit_coefficients(ref.model, target)
    renders, rows, fits = {}, {}, {"oracle": mesh_fit}
    for key, avatar in avatars.items():
        _log(quiet, f"rendering and re-tracking {ARMS[key]} ({frames} frames)")
        renders[key] = render(avatar, driving, boxes, [bgs[int(a)] for a in anchors])
        tracked = track_landmarks(renders[key])
        fit, ok = fit_coefficients(avatar.model, tracked)
        fits[key] = np.where(ok[:, None], fit, np.nan)
        rows[key] = landmark_errors(tracked, target) | coefficient_errors(fit, ok, driving, pushed, mesh_fit)
    rows["oracle"] = coefficient_errors(mesh_fit, found, driving, pushed, mesh_fit)

    # in range: the held-out tail, on its own real frames
    held = ref.training_params.slice(start, stop)
    held_boxes = ref.training_boxes[start:stop]
    real_frames = list(iter_frames(clip, start, stop))
    held_target = mesh(ref.model, held)
    control = {"real": landmark_errors(track_landmarks(real_frames), held_target)}
    for key, avatar in avatars.items():
        control[key] = landmark_errors(
            track_landmarks(render(avatar, held, held_boxes, real_frames)), held_target
        )

    samples = sample_sheet(renders, target, boxes, out_dir / "samples.png")
    result = {
        "clip": clip.name, "setup": dataclasses.asdict(setup), "machine": machine(),
        "command": _command(clip, out_dir, setup, frames), "range": range_report(real, driving),
        "rows": rows, "train_seconds": training_seconds(dirs),
        "difference": {k: paired_difference(rows["stage1"]["per_frame"][k], rows["stage12"]["per_frame"][k])
                       for k in ("lmd", "mouth")},
        "control": {"frames": int(stop - start), "rows": control},
        "per_coefficient": per_coefficient(real, driving, pushed, fits),
        "samples": str(samples.relative_to(ROOT)) if samples.is_relative_to(ROOT) else str(samples),
        "seconds": time.perf_counter() - started, "trained": trained, "plot": "fidelity.png",
    }  # fmt: skip
    result = _jsonable(result)
    result["markdown"] = markdown(result)
    (RESULTS / "fidelity.md").write_text(result["markdown"])
    plot(result, RESULTS / "fidelity.png")
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="talk_woman_8s.mp4", help="file name in ../shared/data")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--stage1-steps", type=int, default=1200)
    ap.add_argument("--stage2-steps", type=int, default=400)
    ap.add_argument("--frames", type=int, default=96, help="out-of-range test frames")
    ap.add_argument("--seed", type=int, default=0, help="training seed (both avatars)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "fidelity"), help="where the avatars go")
    ap.add_argument("--retrain", action="store_true", help="train again even if the avatars exist")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    result = run(DATA / args.clip, Path(args.out), args.resolution, args.stage1_steps, args.stage2_steps,
                 args.frames, args.seed, args.quiet, args.retrain)  # fmt: skip
    print(result["markdown"])


if __name__ == "__main__":
    main()
