"""``talkinghead track``: video -> per-frame morphable-model parameters (+ a preview)."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.atomic import check_writable
from talkinghead.cli import settings, user_errors


@click.command("track")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ParamSequence file to write (.npz).")
@click.option("--preview", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write an mp4 with the fitted mesh drawn over the video.")
@click.option("--tracker", default="mediapipe", show_default=True, help="Tracker plugin (see `talkinghead plugins`).")
@click.option("--no-personalize", is_flag=True, help="Keep the authored blendshapes (skip per-subject refinement).")
@user_errors
def command(video: Path, output: Path, preview: Path | None, tracker: str, no_personalize: bool) -> None:
    """Track a face through VIDEO and fit the morphable model to every frame.

    Frames stream through the tracker (memory does not grow with the video). Frames where the face
    is lost are interpolated from their neighbours, marked invalid and counted.
    """
    from talkinghead.morphable.personalize import PersonalizeConfig
    from talkinghead.tracking.pipeline import track_video

    s = settings()
    s.seed_everything()
    check_writable(output)
    if preview is not None:
        check_writable(preview)
    personalize = PersonalizeConfig(rounds=0) if no_personalize else None
    result = track_video(video, tracker=tracker, quiet=s.quiet, preview=preview, personalize=personalize)
    result.params.save(output)
    t = result.timings
    total = t["track_s"] + t["personalize_s"] + t["fit_s"]
    s.echo(
        f"{len(result.params)} frames, {result.lost} without a face (interpolated); "
        f"landmark error {result.params.metadata['reprojection_error_iod'] * 100:.2f} % IOD; "
        f"{t['frames'] / total:.0f} fps (tracking {t['frames'] / t['track_s']:.0f} fps)"
    )
    click.echo(str(output))
    if preview is not None:
        click.echo(str(preview))
