"""Speech to expression: audio features, the audio-to-expression model, its training, and head motion.

Read in data-flow order: ``features`` (audio -> per-frame features), ``model`` (features -> mouth
coefficients), ``train`` (fit the model to a training video, predict for new speech), ``motion`` (the
subject's own head motion and blinks, re-synthesised for speech).
"""

from talkinghead.audio.features import (
    FEATURE_KINDS,
    LogMelFeatures,
    Wav2Vec2Features,
    log_mel,
    make_features,
    n_video_frames,
    normalize_loudness,
    voice_activity,
)
from talkinghead.audio.model import (
    MOUTH_NAMES,
    AudioToExpression,
    AudioToExpressionConfig,
    is_mouth_name,
    scatter_coefficients,
)
from talkinghead.audio.motion import MotionStats, synthesize_motion
from talkinghead.audio.train import (
    AudioTrainConfig,
    evaluate_jaw_correlation,
    mouth_aperture,
    predict,
    train_audio_model,
)

__all__ = [
    "FEATURE_KINDS", "MOUTH_NAMES", "AudioToExpression", "AudioToExpressionConfig", "AudioTrainConfig",
    "LogMelFeatures", "MotionStats", "Wav2Vec2Features", "evaluate_jaw_correlation", "is_mouth_name",
    "log_mel", "make_features", "mouth_aperture", "n_video_frames", "normalize_loudness", "predict",
    "scatter_coefficients", "synthesize_motion", "train_audio_model", "voice_activity",
]  # fmt: skip
