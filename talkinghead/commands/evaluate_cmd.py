"""``talkinghead evaluate``: score an avatar on the held-out end of its own video."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import settings, user_errors


@click.command("evaluate")
@click.argument("avatar", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    "report",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Report folder [default: <avatar>.report].",
)
@click.option(
    "--video",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The training video, if it moved since training.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=3),
    default=300,
    show_default=True,
    help="Score at most this many held-out frames.",
)
@click.option(
    "--tracker", default="mediapipe", show_default=True, help="Tracker plugin for the landmark metrics."
)
@user_errors
def command(avatar: Path, report: Path | None, video: Path | None, max_frames: int, tracker: str) -> None:
    """Self-reenactment: render the held-out frames from their tracked parameters and compare.

    Writes report.md (PSNR, SSIM, landmark distance, jitter; avatar vs. nearest-neighbour baseline),
    metrics.json, side_by_side.png and comparison.mp4.
    """
    from talkinghead.evaluation import EvalConfig, evaluate

    s = settings()
    report = report or avatar.parent / f"{avatar.name}.report"
    metrics = evaluate(avatar, report, video=video, config=EvalConfig(max_frames=max_frames),
                       device=str(s.torch_device()), quiet=s.quiet, tracker=tracker)  # fmt: skip
    ours, nn = metrics["scores"]["ours"], metrics["scores"]["nn"]
    s.echo(
        f"avatar: PSNR {ours['psnr_face']:.2f} dB, SSIM {ours['ssim_face']:.3f}, LMD {ours['lmd']:.4f}; "
        f"nearest neighbour: PSNR {nn['psnr_face']:.2f} dB, SSIM {nn['ssim_face']:.3f}, LMD {nn['lmd']:.4f}"
    )
    click.echo(str(report / "report.md"))
