"""The driver API: anything that turns a source (audio, video, keyframes, ...) into a ParamSequence.

A driver is a class registered in the ``talkinghead.drivers`` entry-point group::

    class MyDriver:
        name = "mine"                      # what users type: talkinghead animate --driver mine
        description = "one line for `talkinghead plugins`"

        def emit(self, source: Path, context: DriverContext) -> DriverOutput | ParamSequence: ...

``context`` gives the avatar (its morphable model, fps, frame size, resting pose and motion
statistics), the user's ``-O key=value`` options, a seeded random generator and the device.
``context.blank(n_frames)`` returns a ParamSequence at the avatar's resting pose to start from.
Every driver's output is checked, smoothed and rendered the same way; the generator never knows
which driver made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from talkinghead import plugins
from talkinghead.errors import TalkingHeadError
from talkinghead.params import ParamSequence


@dataclass
class DriverOutput:
    params: ParamSequence
    audio: np.ndarray | None = None  # float32 mono, muxed into the video
    audio_rate: int = 16000


@dataclass
class DriverContext:
    avatar: Any  # talkinghead.avatar.Avatar
    options: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    @property
    def fps(self) -> float:
        return self.avatar.fps

    def rest_pose(self) -> tuple[np.ndarray, np.ndarray, float]:
        """The avatar's typical head pose in its own frame: median rotation, translation, scale."""
        seq = self.avatar.training_params
        return np.median(seq.rotation, 0), np.median(seq.translation, 0), float(np.median(seq.scale))

    def rest_expression(self) -> np.ndarray:
        """The avatar's resting coefficients (low percentile: what its face does when doing nothing)."""
        return np.quantile(self.avatar.training_params.expression, 0.1, axis=0).astype(np.float32)

    def blank(self, n_frames: int, fps: float | None = None) -> ParamSequence:
        rot, trans, scale = self.rest_pose()
        n = int(n_frames)
        return ParamSequence(
            fps=fps or self.fps, model_id=self.avatar.model_id, coefficient_names=self.avatar.names,
            expression=np.tile(self.rest_expression(), (n, 1)), rotation=np.tile(rot, (n, 1)),
            translation=np.tile(trans, (n, 1)), scale=np.full(n, scale), valid=np.ones(n, bool),
            frame_size=self.avatar.frame_size,
        )  # fmt: skip


@runtime_checkable
class Driver(Protocol):
    name: str
    description: str

    def emit(self, source: Path, context: DriverContext) -> DriverOutput | ParamSequence: ...


def run_driver(name: str, source: Path, context: DriverContext) -> DriverOutput:
    """Load driver ``name``, run it, and check what it produced; a plugin crash is one clear line."""
    driver_cls = plugins.load("driver", name)
    try:
        output = driver_cls().emit(Path(source), context)
    except TalkingHeadError:
        raise
    except Exception as exc:  # a third-party bug must not print a traceback at the user
        message = str(exc).splitlines()[0] if str(exc) else ""
        raise TalkingHeadError(f"driver {name!r} failed: {type(exc).__name__}: {message}") from None
    if isinstance(output, ParamSequence):
        output = DriverOutput(output)
    if not isinstance(output, DriverOutput):
        raise TalkingHeadError(f"driver {name!r} returned {type(output).__name__}, not a ParamSequence")
    output.params.check_model(context.avatar.model_id, context.avatar.names)
    if len(output.params) == 0:
        raise TalkingHeadError(f"driver {name!r} produced no frames")
    output.params.metadata.setdefault("driver", name)
    return output
