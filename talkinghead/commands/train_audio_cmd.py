"""``talkinghead train-audio``: (re)train an avatar's speech-to-lips model."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import settings, user_errors


@click.command("train-audio")
@click.argument("avatar", type=click.Path(file_okay=False, path_type=Path))
@click.option("--audio-features", type=click.Choice(["logmel", "wav2vec2"]), default="logmel", show_default=True)
@click.option("--wav2vec2", default=None, help="Local folder or cached name of wav2vec2 weights (never downloaded).")
@click.option("--steps", type=int, default=None, help="Training steps (default: the model's config).")
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The avatar's training video, if it moved since `train`.")
@user_errors
def command(avatar: Path, audio_features: str, wav2vec2: str | None, steps: int | None, video: Path | None) -> None:
    """Train AVATAR's audio-to-expression model on its training video's own speech.

    Only the training frames are used; the held-out tail scores the lip sync (correlation of the
    predicted and the fitted jawOpen), which is printed.
    """
    from talkinghead.audio.avatar_audio import audio_component, train_avatar_audio

    s = settings()
    s.seed_everything()
    metrics = train_avatar_audio(avatar, features=audio_features, wav2vec2=wav2vec2, steps=steps, video=video,
                                 device=str(s.torch_device()), quiet=s.quiet, seed=s.seed)  # fmt: skip
    if "holdout" in metrics:
        h = metrics["holdout"]
        s.echo(f"held-out lip sync: jawOpen correlation {h['jawOpen']:.2f}, mouth aperture {h['aperture']:.2f}")
    click.echo(str(avatar / audio_component(audio_features)))
