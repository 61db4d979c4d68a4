"""``talkinghead animate``: keyframes, or any installed driver plugin."""

from __future__ import annotations

from pathlib import Path

import click

from talkinghead.cli import user_errors
from talkinghead.commands.driving import drive, render_options


def _parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-O")
        options[key] = value
    return options


@click.command("animate")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--driver", default="keyframes", show_default=True,
              help="Driver plugin that reads SOURCE (see `talkinghead plugins`).")
@click.option("-O", "--option", "driver_options", multiple=True, metavar="KEY=VALUE",
              help="An option for the driver plugin (repeatable).")
@render_options
@user_errors
def command(source: Path, driver: str, driver_options: tuple[str, ...], **render) -> None:
    """Animate the avatar from SOURCE: a keyframe file (YAML/JSON) or whatever --driver reads.

    See examples/keyframes.yaml for the keyframe format: times, named ARKit coefficients, head pose
    in degrees, easing, and automatic blinks.
    """
    drive(driver, source, options=_parse_options(driver_options), **render)
