"""The ``talkinghead`` command line: one command per user task.

Every command lives in ``talkinghead/commands/`` and is added here. User mistakes raise
TalkingHeadError, which becomes one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from talkinghead import __version__
from talkinghead.errors import TalkingHeadError

# command name -> module in talkinghead.commands that defines `command`
COMMANDS = {
    "plugins": "plugins_cmd",
    "morphable": "morphable_cmd",
    "track": "track_cmd",
    "train": "train_cmd",
    "render": "render_cmd",
    "evaluate": "evaluate_cmd",
    "train-audio": "train_audio_cmd",
    "speak": "speak_cmd",
    "drive": "drive_cmd",
    "animate": "animate_cmd",
}


class LazyGroup(click.Group):
    """Import a command's module only when it runs, so ``--help`` and small commands start fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(f"talkinghead.commands.{COMMANDS[name]}").command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="talkinghead")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors and the paths of the files written.")
@click.option("--device", default="cpu", show_default=True, help="Torch device: cpu, cuda, cuda:1, mps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed, for repeatable results.")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, device: str, seed: int) -> None:
    """Turn one ordinary video of a person into a talking head you can drive.

    \b
    Typical use:
      talkinghead speak speech.wav -o out.mp4            # the bundled demo avatar speaks
      talkinghead train me.mp4 --out avatars/me           # learn your own avatar
      talkinghead speak speech.wav --avatar avatars/me -o me.mp4
      talkinghead drive other.mp4 --tracker mediapipe --avatar avatars/me -o me.mp4
      talkinghead animate examples/keyframes.yaml --avatar avatars/me -o me.mp4
    """
    ctx.obj = Settings(quiet=quiet, device=device, seed=seed)
    os.environ.setdefault("GLOG_minloglevel", "2")  # silence MediaPipe's C++ logging
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle torch threads sleep: 5-10x faster on a busy CPU
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("absl").setLevel(logging.ERROR)


class Settings:
    """Global options every command can read through ``click.get_current_context().obj``."""

    def __init__(self, quiet: bool = False, device: str = "cpu", seed: int = 0) -> None:
        self.quiet = quiet
        self.device = device
        self.seed = seed

    def echo(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)

    def torch_device(self) -> Any:
        import torch

        try:
            device = torch.device(self.device)
        except RuntimeError as exc:
            raise TalkingHeadError(f"unknown device {self.device!r}: {exc}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise TalkingHeadError(f"device {self.device!r} asked for, but no CUDA GPU is available")
        return device

    def seed_everything(self) -> None:
        import random

        import numpy as np
        import torch

        random.seed(self.seed)
        np.random.seed(self.seed)
        torch.manual_seed(self.seed)


def settings() -> Settings:
    ctx = click.get_current_context(silent=True)
    return ctx.obj if ctx is not None and isinstance(ctx.obj, Settings) else Settings()


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn TalkingHeadError (and a few OS errors) into click's one-line error and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TalkingHeadError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted; nothing half-written was left behind") from None
        except MemoryError:
            raise click.ClickException("out of memory; try a smaller --resolution") from None
        except OSError as exc:
            if exc.errno == 28:
                raise click.ClickException(f"disk full while writing {exc.filename or ''}".strip()) from None
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".strip()) from None

    return wrapper


def main() -> None:
    cli.main(prog_name="talkinghead")


if __name__ == "__main__":
    sys.exit(main())
