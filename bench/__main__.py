"""Measure everything in one command and write ``bench/results.md`` with plots in ``bench/plots/``.

    python -m bench                                   # every section, CPU (about 20-30 min on 2 cores)
    python -m bench --only render --only training     # some sections; the others keep their last results
    python -m bench --avatar runs/expr256             # also score this avatar's self-reenactment
    python -m bench --device cuda                     # the same on a GPU

Sections: tracking (fps), training (s/step and peak memory at 128 and 256), render (online fps at 128,
256, 512), offline (fine-tune time), quality (self-reenactment against the nearest-neighbour baseline),
lipsync (held-out jawOpen correlation), fidelity (stage 2 against stage 1 on out-of-range parameters).
Results are kept per section in ``bench/results.json`` with the machine they were measured on, so a
partial run (or one on another machine) updates only what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from bench.common import DATA, RESULTS, machine

ROOT = RESULTS.parent
RESULTS_JSON = RESULTS / "results.json"
PLOTS = RESULTS / "plots"
SECTIONS = ("tracking", "training", "render", "offline", "quality", "lipsync", "fidelity")


# ----------------------------------------------------------------------------------------- sections
def bench_tracking(args: argparse.Namespace) -> dict[str, Any]:
    from bench.tracking import run

    return {"clips": run()}


def bench_training(args: argparse.Namespace) -> dict[str, Any]:
    """One process per resolution, so each peak-memory figure is that resolution's alone."""
    rows = []
    for resolution in (128, 256):
        cmd = [sys.executable, "-m", "bench.bench_train", "--resolution", str(resolution), "--steps",
               str(args.train_steps), "--device", args.device, "--json"]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"rows": rows}


def bench_render(args: argparse.Namespace) -> dict[str, Any]:
    from bench.bench_render import measure

    return {"rows": [measure(r, frames=args.render_frames, device=args.device) for r in (128, 256, 512)]}


def bench_offline(args: argparse.Namespace) -> dict[str, Any]:
    """Time of the default offline fine-tune on five seconds of keyframed parameters, with the demo avatar."""
    from talkinghead.avatar import AVATAR, Avatar
    from talkinghead.drivers import DriverContext, run_driver
    from talkinghead.pretrained import default_avatar_dir

    avatar = Avatar.load(default_avatar_dir(), args.device)
    context = DriverContext(avatar, {}, seed=0, device=args.device, quiet=True)
    params = run_driver("keyframes", ROOT / "examples" / "keyframes.yaml", context).params
    boxes = avatar.boxes_for(params)
    steps = AVATAR.finetune_steps
    t0 = time.perf_counter()
    avatar.finetuned(params, boxes, steps, quiet=True)
    seconds = time.perf_counter() - t0
    return {"avatar": "pretrained/demo", "resolution": avatar.resolution, "frames": len(params),
            "steps": steps, "seconds": seconds}  # fmt: skip


def bench_quality(args: argparse.Namespace) -> dict[str, Any]:
    """Self-reenactment on each avatar's held-out tail, against the nearest training frame."""
    from talkinghead.evaluation import evaluate
    from talkinghead.pretrained import DEMO_AVATAR

    candidates = [DEMO_AVATAR, *map(Path, args.avatar)]
    rows = []
    for directory in candidates:
        info = json.loads((directory / "config.json").read_text())
        video = Path(info["training"]["video"])
        video = video if video.is_absolute() else ROOT / video
        if not video.is_file():
            print(f"quality: skipping {directory} (its training video {video} is not here)", file=sys.stderr)
            continue
        report = ROOT / "runs" / "bench" / "quality" / directory.name
        metrics = evaluate(directory, report, video=video, device=args.device, quiet=True)
        rows.append({"avatar": _display(directory), "video": video.name, "resolution": info["resolution"],
                     "train_seconds": info["training"].get("seconds"),
                     "steps": [info["training"].get("stage1_steps"), info["training"].get("stage2_steps")],
                     "metrics": metrics})  # fmt: skip
    return {"rows": rows}


def bench_lipsync(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from bench.common import CLIPS
    from bench.lipsync import run

    demo_video = ROOT / "runs" / "demo" / "demo_subject.mp4"  # synthetic, with exactly matched visemes
    clips = (*CLIPS, str(demo_video)) if demo_video.is_file() else CLIPS
    result = run(clips, quiet=True, write=False)
    rows = [{"clip": c["clip"], "jaw": c["holdout"]["jawOpen"], "aperture": c["holdout"]["aperture"],
             "baseline": c["baseline"]["jawOpen"],
             "folds_jaw": float(np.nanmean(c["folds"]["jawOpen"])) if c.get("folds") else float("nan")}
            for c in result["clips"] if not c.get("no_voice")]  # fmt: skip
    return {"rows": rows, "markdown": result["markdown"], "clips": result["clips"],
            "cross": result["cross"]}  # fmt: skip  (heading cut by _embedded)


def bench_fidelity(args: argparse.Namespace) -> dict[str, Any]:
    from bench.fidelity import run

    return run(DATA / "talk_woman_8s.mp4", ROOT / "runs" / "bench" / "fidelity", quiet=True)


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "tracking": bench_tracking, "training": bench_training, "render": bench_render, "offline": bench_offline,
    "quality": bench_quality, "lipsync": bench_lipsync, "fidelity": bench_fidelity,
}  # fmt: skip


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# -------------------------------------------------------------------------------------------- report
def _plot_bars(path: Path, title: str, labels: list[str], series: dict[str, list[float]], ylabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return f"![{title}](plots/{path.name})"


def _header(name: str, entry: dict[str, Any]) -> list[str]:
    return [f"## {name.capitalize()}", "", f"Measured {entry['date']} on {entry['machine']}. "
            f"Command: `{entry['command']}` ({entry['seconds']:.0f} s).", ""]  # fmt: skip


def _embedded(markdown: str) -> str:
    """A bench script's own report without its title and machine line, which the section header gives."""
    lines = markdown.strip().splitlines()
    while lines and (lines[0].startswith("## ") or lines[0].startswith("Machine:") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


def section_markdown(name: str, entry: dict[str, Any]) -> list[str]:
    data = entry["data"]
    lines = _header(name, entry)
    if name == "tracking":
        clips = data["clips"]
        lines += ["| clip | frames | tracking fps | track + fit fps | full-fit error % IOD | rigid % IOD |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [f"| {c['clip']} | {c['frames']} | {c['tracking_fps']:.0f} | {c['track_fit_fps']:.1f} "
                  f"| {c['full_error'] * 100:.2f} | {c['rigid_error'] * 100:.2f} |" for c in clips]  # fmt: skip
        lines += ["", _plot_bars(PLOTS / "tracking.png", "Tracking speed", [c["clip"].split(".")[0] for c in clips],
                                 {"tracking": [c["tracking_fps"] for c in clips],
                                  "track + fit": [c["track_fit_fps"] for c in clips]}, "frames / s")]  # fmt: skip
    elif name == "training":
        rows = data["rows"]
        lines += ["| resolution | batch | stage 1 s/step | stage 2 s/step | peak memory MB |", "|---|---|---|---|---|"]
        lines += [f"| {r['resolution']} | {r['batch_size']} | {r['stage1_s_per_step']:.3f} "
                  f"| {r['stage2_s_per_step']:.3f} | {r['peak_memory_mb']:.0f} |" for r in rows]  # fmt: skip
        lines += ["", _plot_bars(PLOTS / "training.png", "Training step time", [str(r["resolution"]) for r in rows],
                                 {"stage 1": [r["stage1_s_per_step"] for r in rows],
                                  "stage 2": [r["stage2_s_per_step"] for r in rows]}, "s / step")]  # fmt: skip
    elif name == "render":
        rows = data["rows"]
        lines += ["Online rendering into a 512 x 512 frame: guide, generator, compositing and H.264 encoding.", "",
                  "| resolution | fps | guide ms | generator ms | composite ms | encode ms |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['resolution']} | {r['fps']:.1f} | " + " | ".join(f"{v:.1f}" for v in r["ms_per_frame"].values())
                  + " |" for r in rows]  # fmt: skip
        lines += ["", _plot_bars(PLOTS / "render.png", "Online render speed", [str(r["resolution"]) for r in rows],
                                 {"fps": [r["fps"] for r in rows]}, "frames / s")]  # fmt: skip
    elif name == "offline":
        lines += [f"Offline mode fine-tunes the {data['avatar']} ({data['resolution']} px) for {data['steps']} steps "
                  f"on {data['frames']} frames of keyframed parameters: **{data['seconds']:.0f} s** "
                  f"({data['seconds'] / max(1, data['steps']):.2f} s/step) before rendering."]  # fmt: skip
    elif name == "quality":
        lines += ["Self-reenactment on each avatar's held-out tail (never trained on): face-crop PSNR/SSIM, landmark",
                  "distance of the re-tracked output (% of IOD), jitter (mean landmark acceleration, IOD per frame²);",
                  "the baseline shows the training frame with the nearest parameters.", "",
                  "| avatar | video | res | steps (1+2) | PSNR dB | NN PSNR | gain dB | SSIM | NN SSIM | LMD % IOD "
                  "| NN LMD | jitter | NN jitter | real jitter |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in data["rows"]:
            sc = r["metrics"]["scores"]
            a, b = sc["ours"], sc["nn"]
            lines.append(f"| {r['avatar']} | {r['video']} | {r['resolution']} | {r['steps'][0]}+{r['steps'][1]} "
                         f"| {a['psnr_face']:.2f} | {b['psnr_face']:.2f} | {a['psnr_face'] - b['psnr_face']:+.2f} "
                         f"| {a['ssim_face']:.3f} | {b['ssim_face']:.3f} | {100 * a['lmd']:.2f} | {100 * b['lmd']:.2f} "
                         f"| {a['jitter']:.5f} | {b['jitter']:.5f} | {sc['real']['jitter']:.5f} |")  # fmt: skip
        if data["rows"]:
            rows = data["rows"]
            lines += ["", _plot_bars(PLOTS / "quality.png", "Held-out face PSNR", [r["avatar"].split("/")[-1] for r in rows],
                                     {"avatar": [r["metrics"]["scores"]["ours"]["psnr_face"] for r in rows],
                                      "nearest neighbour": [r["metrics"]["scores"]["nn"]["psnr_face"] for r in rows]},
                                     "dB")]  # fmt: skip
    elif name == "lipsync":
        lines += [_embedded(data.get("markdown", ""))]
        if data.get("rows"):
            rows = data["rows"]
            lines += ["", _plot_bars(PLOTS / "lipsync.png", "Held-out lip sync (jawOpen correlation)",
                                     [Path(r["clip"]).stem for r in rows],
                                     {"audio model, last 20 %": [r["jaw"] for r in rows],
                                      "audio model, 5-fold mean": [r.get("folds_jaw", float("nan")) for r in rows],
                                      "loudness baseline": [r["baseline"] for r in rows]}, "Pearson r")]  # fmt: skip
    elif name == "fidelity":
        lines += [_embedded(data.get("markdown", ""))]  # holds its own plot
    return lines + [""]


def write_report(results: dict[str, Any]) -> Path:
    lines = ["# Benchmarks", "", "Written by `python -m bench` (see bench/__main__.py); each section names the",
             "machine and the command that measured it.", ""]  # fmt: skip
    for name in SECTIONS:
        if name in results:
            lines += section_markdown(name, results[name])
    path = RESULTS / "results.md"
    tmp = path.with_name(".results.md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run this section (repeatable)")
    ap.add_argument("--skip", action="append", choices=SECTIONS, default=[], help="leave this section out")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--avatar", action="append", default=[], help="also score this avatar (quality)")
    ap.add_argument("--train-steps", type=int, default=10, help="timed steps per stage (training)")
    ap.add_argument("--render-frames", type=int, default=64, help="frames per resolution (render)")
    ap.add_argument("--report-only", action="store_true", help="rewrite results.md from results.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    if not DATA.is_dir() and not args.report_only:
        print(f"note: {DATA} is absent; sections that need real footage will fail", file=sys.stderr)
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.is_file() else {}
    todo = [] if args.report_only else [s for s in (args.only or SECTIONS) if s not in args.skip]
    failed = []
    for name in todo:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            data = RUNNERS[name](args)
        except Exception as exc:  # one broken section must not lose the others' numbers
            print(f"[bench] {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        command = "python -m bench --only " + name + (f" --device {args.device}" if args.device != "cpu" else "")
        command += "".join(f" --avatar {a}" for a in args.avatar) if name == "quality" else ""
        results[name] = {"machine": machine(args.device), "date": date.today().isoformat(), "command": command,
                         "seconds": time.perf_counter() - t0, "data": data}  # fmt: skip
        tmp = RESULTS_JSON.with_name(".results.json.tmp")
        tmp.write_text(json.dumps(results, indent=1, default=float))
        tmp.replace(RESULTS_JSON)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print(write_report(results))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
