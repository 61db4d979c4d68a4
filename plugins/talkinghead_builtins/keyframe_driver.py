"""Keyframe driver: a YAML/JSON file of timed ARKit coefficients, head poses and easings."""

from __future__ import annotations

from pathlib import Path

from talkinghead.drivers import DriverContext, DriverOutput


class KeyframeDriver:
    name = "keyframes"
    description = "a keyframes.yaml/.json: times, named ARKit coefficients, head pose, easing, auto blinks"

    def emit(self, source: Path, context: DriverContext) -> DriverOutput:
        from talkinghead.audio.motion import MotionStats
        from talkinghead.keyframes import keyframes_to_params

        rot, trans, scale = context.rest_pose()
        motion = None if context.avatar.motion is None else MotionStats.from_dict(context.avatar.motion)
        params = keyframes_to_params(
            source, context.avatar.model_id, context.avatar.names, context.avatar.frame_size, trans, scale,
            context.rng, base_rotation=rot, motion=motion,
        )  # fmt: skip
        rest = context.rest_expression()
        params = params.with_arrays(expression=(params.expression + rest).clip(0, 1))
        params.metadata.update({"driver": self.name, "source": Path(source).name})
        return DriverOutput(params)
