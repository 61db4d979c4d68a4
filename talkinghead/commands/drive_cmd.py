"""``talkinghead drive``: another person's video drives the avatar."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import user_errors
from talkinghead.commands.driving import drive, render_options


@click.command("drive")
@click.argument("driving", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tracker", default="mediapipe", show_default=True, help="Tracker plugin (see `talkinghead plugins`).")
@click.option("--audio-from-driving", is_flag=True, help="Keep the driving video's sound.")
@render_options
@user_errors
def command(driving: Path, tracker: str, audio_from_driving: bool, **render) -> None:
    """Transfer the expressions and head motion of DRIVING (a video of anyone) to the avatar.

    Expressions are taken relative to the driver's own neutral face, head pose relative to the
    driver's first frames, so a different face shape or position does not leak into the avatar.
    """
    drive("video", driving, options={"tracker": tracker, "audio_from_driving": audio_from_driving}, **render)
