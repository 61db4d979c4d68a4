"""Audio driver: speech -> mouth coefficients (the avatar's audio model) + the subject's own head motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.drivers import DriverContext, DriverOutput
from talkinghead.errors import TalkingHeadError

SAMPLE_RATE = 16000  # every feature extractor works at 16 kHz; any input rate is resampled to it


def audio_model_dir(avatar, features: str) -> Path:
    from talkinghead.audio.avatar_audio import audio_component

    name = audio_component(features)
    if avatar.directory is None or not (avatar.directory / name / "config.json").is_file():
        hint = "talkinghead train-audio AVATAR" + ("" if features == "logmel" else f" --audio-features {features}")
        raise TalkingHeadError(f"this avatar has no {features} audio model ({name}/); make one with `{hint}`")
    return avatar.directory / name


class AudioDriver:
    name = "audio"
    description = "speech (wav/flac/ogg/mp3, any rate) -> lips via the avatar's audio model, natural head motion"

    def emit(self, source: Path, context: DriverContext) -> DriverOutput:
        from talkinghead import media
        from talkinghead.audio.features import voice_activity
        from talkinghead.audio.model import AudioToExpression, scatter_coefficients
        from talkinghead.audio.motion import MotionStats, synthesize_motion
        from talkinghead.audio.train import predict

        features = context.options.get("features", "logmel")
        audio = media.read_audio(source, SAMPLE_RATE)
        if media.is_silent(audio, SAMPLE_RATE):
            raise TalkingHeadError(f"{source} is silent: there is no speech to animate")
        model = AudioToExpression.from_pretrained(audio_model_dir(context.avatar, features), context.device)
        fps = context.fps
        mouth = predict(model, audio, SAMPLE_RATE, wav2vec2=context.options.get("wav2vec2"), fps=fps)
        activity = voice_activity(audio, SAMPLE_RATE, fps)[: len(mouth)]
        seq = context.blank(len(mouth))
        expression = scatter_coefficients(mouth, model.names, seq.coefficient_names, context.rest_expression())
        if context.avatar.motion is None:
            raise TalkingHeadError("this avatar has no motion statistics (motion.json); retrain it")
        stats = MotionStats.from_dict(context.avatar.motion)
        rotation, translation, scale, blink = synthesize_motion(stats, len(mouth), fps, context.rng, activity)
        for side in ("Left", "Right"):
            k = seq.coefficient_names.index(f"eyeBlink{side}")
            expression[:, k] = np.maximum(expression[:, k], blink)
        params = seq.with_arrays(expression=expression, rotation=rotation, translation=translation, scale=scale)
        params.metadata.update({"driver": self.name, "source": Path(source).name, "features": features})
        return DriverOutput(params, audio, SAMPLE_RATE)
