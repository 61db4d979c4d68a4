"""What every driving command shares: avatar choice, smoothing, offline mode, saving the parameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from talkinghead.atomic import check_writable
from talkinghead.cli import settings

SMOOTHING = ("one_euro", "savgol", "none")


def render_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of speak / drive / animate, in the order users read them."""
    options = [
        click.option("--avatar", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Avatar folder from `talkinghead train` (default: the bundled demo avatar)."),
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
                     help="The mp4 to write."),
        click.option("--smooth", type=click.Choice(SMOOTHING), default="one_euro", show_default=True,
                     help="Temporal smoothing of the driver's parameters."),
        click.option("--smooth-strength", type=float, default=1.0, show_default=True,
                     help="Larger is smoother (and laggier)."),
        click.option("--offline", is_flag=True,
                     help="Fine-tune the avatar on these parameters before rendering: slower, better."),
        click.option("--finetune-steps", type=int, default=None, help="Steps of the --offline fine-tune."),
        click.option("--save-params", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Also write the driver's ParamSequence (.npz) to inspect, edit and `render` again."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def drive(
    driver: str, source: Path, *, avatar: Path | None, output: Path, smooth: str, smooth_strength: float,
    offline: bool, finetune_steps: int | None, save_params: Path | None, options: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """Run ``driver`` on ``source`` and render the result with the avatar."""
    from talkinghead.avatar import Avatar
    from talkinghead.drivers import DriverContext, run_driver
    from talkinghead.pretrained import default_avatar_dir
    from talkinghead.smoothing import smooth_params

    s = settings()
    s.seed_everything()
    check_writable(output)
    if save_params is not None:
        check_writable(save_params)
    device = s.torch_device()
    bundle = Avatar.load(avatar or default_avatar_dir(), device)
    context = DriverContext(bundle, dict(options or {}), seed=s.seed, device=str(device), quiet=s.quiet)
    result = run_driver(driver, source, context)
    params = smooth_params(result.params, smooth, smooth_strength) if smooth != "none" else result.params
    if save_params is not None:
        params.save(save_params)
        click.echo(str(save_params))
    lost = int((~params.valid).sum())
    if lost:
        s.echo(f"{lost} of {len(params)} frames had no face in the source and were interpolated")
    bundle.render(params, output, audio=result.audio, audio_rate=result.audio_rate, quiet=s.quiet,
                  offline=offline, finetune_steps=finetune_steps, seed=s.seed)  # fmt: skip
    s.echo(f"{len(params)} frames at {params.fps:g} fps ({params.duration:.1f} s) from the {driver} driver")
    click.echo(str(output))
