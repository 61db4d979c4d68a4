"""``talkinghead plugins``: what drivers and trackers are installed, and from where."""

from __future__ import annotations

import click

from talkinghead.cli import user_errors
from talkinghead.plugins import discover


@click.command("plugins")
@user_errors
def command() -> None:
    """List installed drivers and trackers with the distribution that provides each.

    A plugin that fails to import is listed as BROKEN with its error; the others still work.
    """
    for kind in ("tracker", "driver"):
        plugins = discover(kind)
        click.echo(f"{kind}s:")
        if not plugins:
            click.echo("  (none)")
        for name, info in sorted(plugins.items()):
            status = "ok" if info.ok else f"BROKEN ({info.error})"
            click.echo(f"  {name:<14} {info.distribution} {info.version:<10} {info.target}  [{status}]")
