"""``talkinghead render``: turn a parameter file (any driver's output) into a video of an avatar."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import settings, user_errors


@click.command("render")
@click.argument("params", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--avatar",
    "-a",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Avatar folder made by `talkinghead train`.",
)
@click.option(
    "--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output mp4."
)
@click.option(
    "--audio",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Sound track to mux in (trimmed or padded to the video).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Fine-tune on these parameters before rendering: slower, better on unusual expressions.",
)
@click.option(
    "--finetune-steps",
    type=click.IntRange(min=0),
    default=None,
    help="Fine-tuning steps in --offline mode [default: 300].",
)
@user_errors
def command(params: Path, avatar: Path, out: Path, audio: Path | None, offline: bool,
            finetune_steps: int | None) -> None:  # fmt: skip
    """Render PARAMS (a .npz parameter sequence) with an avatar."""
    from talkinghead.avatar import Avatar
    from talkinghead.media import read_audio
    from talkinghead.params import ParamSequence

    s = settings()
    s.seed_everything()
    seq = ParamSequence.load(params)
    bundle = Avatar.load(avatar, s.torch_device())
    bundle.check(seq)
    sound = read_audio(audio, 16000) if audio is not None else None
    path = bundle.render(seq, out, audio=sound, audio_rate=16000, quiet=s.quiet, offline=offline,
                         finetune_steps=finetune_steps, seed=s.seed)  # fmt: skip
    click.echo(str(path))
