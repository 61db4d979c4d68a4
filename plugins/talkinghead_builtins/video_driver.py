"""Video driver: another person's video -> their expressions and head motion on the avatar."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from talkinghead.drivers import DriverContext, DriverOutput
from talkinghead.params import ParamSequence

REST_QUANTILE = 0.1  # a face's "neutral" coefficients: what it shows when it does least
POSE_REFERENCE_FRAMES = 5  # head pose is taken relative to the driver's first frames


def retarget(driver: ParamSequence, context: DriverContext) -> ParamSequence:
    """Expressions relative to the driver's own neutral, head pose relative to its first frames."""
    rest_drv = np.quantile(driver.expression, REST_QUANTILE, axis=0)
    expression = np.clip(driver.expression - rest_drv + context.rest_expression(), 0.0, 1.0)
    rot0, trans0, scale0 = context.rest_pose()
    first = slice(0, min(POSE_REFERENCE_FRAMES, len(driver)))
    ref_rot = Rotation.from_rotvec(driver.rotation[first]).mean()
    ref_trans = driver.translation[first].mean(0)
    ref_scale = float(driver.scale[first].mean())
    relative = Rotation.from_rotvec(driver.rotation) * ref_rot.inv()
    rotation = (relative * Rotation.from_rotvec(rot0)).as_rotvec()
    translation = trans0 + (driver.translation - ref_trans) / ref_scale * scale0
    scale = scale0 * driver.scale / ref_scale
    return context.blank(len(driver), driver.fps).with_arrays(
        expression=expression.astype(np.float32), rotation=rotation.astype(np.float32),
        translation=translation.astype(np.float32), scale=scale.astype(np.float32), valid=driver.valid,
        gaze=driver.gaze,
    )  # fmt: skip


class VideoDriver:
    name = "video"
    description = "a driving video (any person): expressions and head motion transferred via a tracker plugin"

    def emit(self, source: Path, context: DriverContext) -> DriverOutput:
        from talkinghead import media
        from talkinghead.tracking.pipeline import track_video

        tracker = context.options.get("tracker", "mediapipe")
        tracked = track_video(source, tracker=tracker, quiet=context.quiet)
        params = retarget(tracked.params, context)
        params.metadata.update({"driver": self.name, "source": Path(source).name, "tracker": tracker,
                                "lost_frames": tracked.lost})  # fmt: skip
        audio = None
        if context.options.get("audio_from_driving"):
            audio = media.extract_audio(source, 16000)
        return DriverOutput(params, audio, 16000)
