"""A minimal third-party driver: read a duration, nod to a beat, smile on the downbeat."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.drivers import DriverContext, DriverOutput
from talkinghead.errors import TalkingHeadError


class NodDriver:
    name = "nod"
    description = "example plugin: nods at -O bpm=N for the seconds given in a text file"

    def emit(self, source: Path, context: DriverContext) -> DriverOutput:
        try:
            seconds = float(Path(source).read_text().strip())
            bpm = float(context.options.get("bpm", 100))
        except (OSError, ValueError) as exc:
            raise TalkingHeadError(f"nod driver: cannot read a duration from {source}: {exc}") from None
        if not 0 < seconds <= 600:
            raise TalkingHeadError(f"nod driver: duration must be in (0, 600] seconds, got {seconds}")
        params = context.blank(round(seconds * context.fps))
        t = np.arange(len(params)) / context.fps
        phase = 2 * np.pi * bpm / 60 * t
        rotation = params.rotation.copy()
        rotation[:, 0] += 0.12 * np.maximum(np.sin(phase), 0)  # pitch: nod down on each beat
        expression = params.expression.copy()
        downbeat = (np.sin(phase / 4) > 0.7).astype(np.float32)
        for name in ("mouthSmileLeft", "mouthSmileRight"):
            k = params.coefficient_names.index(name)
            expression[:, k] = np.maximum(expression[:, k], 0.7 * downbeat)
        return DriverOutput(params.with_arrays(rotation=rotation, expression=expression))
