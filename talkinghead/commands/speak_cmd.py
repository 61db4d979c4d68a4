"""``talkinghead speak``: the avatar says what is in a sound file."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import user_errors
from talkinghead.commands.driving import drive, render_options


@click.command("speak")
@click.argument("audio", type=click.Path(dir_okay=False, path_type=Path))
@render_options
@click.option("--audio-features", type=click.Choice(["logmel", "wav2vec2"]), default="logmel", show_default=True,
              help="Speech features; wav2vec2 needs a model trained with `train-audio --audio-features wav2vec2`.")
@click.option("--wav2vec2", default=None, help="Local folder or cached name of wav2vec2 weights (never downloaded).")
@user_errors
def command(audio: Path, audio_features: str, wav2vec2: str | None, **render) -> None:
    """Make the avatar speak AUDIO (wav, flac, ogg, mp3; any sample rate or channel count).

    Lips follow the speech through the avatar's own audio-to-expression model; head motion and
    blinks follow the subject's own habits. The mp4 carries the audio and lasts as long as it.
    """
    drive("audio", audio, options={"features": audio_features, "wav2vec2": wav2vec2}, **render)
