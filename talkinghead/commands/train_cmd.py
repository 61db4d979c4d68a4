"""``talkinghead train``: learn a personal avatar from one video of a person."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import Settings, settings, user_errors


@click.command("train")
@click.argument("video", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Avatar folder to write (replaced atomically when training ends).",
)
@click.option(
    "--resolution",
    type=click.Choice(["128", "256", "512"]),
    default="256",
    show_default=True,
    help="Generator crop size: 128 is fast, 256 the default, 512 for a GPU.",
)
@click.option(
    "--steps",
    "--stage1-steps",
    "steps",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Stage 1 steps (reconstruction of the video's frames).",
)
@click.option(
    "--stage2-steps",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Stage 2 steps (unseen expressions and poses from the morphable prior); 0 skips it.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=2),
    default=8,
    show_default=True,
    help="Frames per step (taken as consecutive pairs).",
)
@click.option(
    "--holdout",
    type=click.FloatRange(0, 0.9, max_open=True),
    default=0.2,
    show_default=True,
    help="Fraction of the video's end kept unseen for `talkinghead evaluate`.",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in <out>.training/.")
@click.option(
    "--preview-every",
    type=click.IntRange(min=1),
    default=250,
    show_default=True,
    help="Write a preview image (ground truth | prediction | guide) every N steps.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Save a resumable checkpoint every N steps.",
)
@click.option("--tracker", default="mediapipe", show_default=True, help="Face tracker plugin.")
@click.option(
    "--audio/--no-audio",
    default=True,
    show_default=True,
    help="Also train the speech-to-lips model on the video's own sound (skipped if it has no speech).",
)
@user_errors
def command(
    video: Path, out: Path, resolution: str, steps: int, stage2_steps: int, batch_size: int, holdout: float,
    resume: bool, preview_every: int, checkpoint_every: int, tracker: str, audio: bool,
) -> None:  # fmt: skip
    """Train an avatar from VIDEO (one person, face visible, 2 s at the very least; minutes are better).

    Previews, checkpoints and the loss plot go to <out>.training/; the avatar goes to --out.
    """
    from talkinghead.training.loop import TrainConfig
    from talkinghead.training.pipeline import TrainOptions, train_avatar, work_dir_for

    s = settings()
    s.seed_everything()
    device = s.torch_device()
    config = TrainConfig(stage1_steps=steps, stage2_steps=stage2_steps, batch_size=batch_size,
                         preview_every=preview_every, checkpoint_every=checkpoint_every)  # fmt: skip
    options = TrainOptions(resolution=int(resolution), holdout=holdout, tracker=tracker, resume=resume,
                           device=str(device), seed=s.seed, quiet=s.quiet, train=config)  # fmt: skip
    path = train_avatar(video, out, options)
    s.echo(f"previews and loss plot: {work_dir_for(out)}")
    if audio:
        _train_audio(path, video, s)
    click.echo(str(path))


def _train_audio(avatar: Path, video: Path, s: Settings) -> None:
    """Give the new avatar a voice model so `speak` works at once; a mute video only earns a note."""
    from talkinghead.audio.avatar_audio import NoSpeechError, train_avatar_audio

    try:
        metrics = train_avatar_audio(avatar, video=video, device=str(s.torch_device()), quiet=s.quiet, seed=s.seed)
    except NoSpeechError as exc:
        click.echo(f"note: no audio model trained ({exc}); `talkinghead speak` needs one", err=True)
        return
    if "holdout" in metrics:
        h = metrics["holdout"]
        s.echo(f"held-out lip sync: jawOpen correlation {h['jawOpen']:.2f}, mouth aperture {h['aperture']:.2f}")
