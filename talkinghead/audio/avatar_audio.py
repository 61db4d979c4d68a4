"""Train an avatar's audio-to-expression model on its own training video, and score it on the holdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkinghead.errors import TalkingHeadError

if TYPE_CHECKING:
    import numpy as np

    from talkinghead.audio.model import AudioToExpression
    from talkinghead.audio.train import AudioTrainConfig
    from talkinghead.params import ParamSequence

SAMPLE_RATE = 16000


class NoSpeechError(TalkingHeadError):
    """The training video has no sound, or only silence: nothing to learn lip motion from."""


def audio_component(features: str) -> str:
    """Bundle sub-folder of the audio model for ``features`` (``audio`` for the default log-mel)."""
    return "audio" if features == "logmel" else f"audio-{features}"


MIN_PITCHED_FRACTION = 0.1  # speech is pitched in ~40-70 % of its frames; noise in under 5 %


def check_voice(audio: np.ndarray, sr: int, source: str | Path) -> float:
    """Raise NoSpeechError unless ``audio`` holds a voice; returns its pitched fraction."""
    from talkinghead.audio.features import pitched_fraction

    pitched = pitched_fraction(audio, sr)
    if pitched < MIN_PITCHED_FRACTION:
        raise NoSpeechError(
            f"{source} has sound but no voice in it (a pitch is heard in {100 * pitched:.0f} % of frames, "
            f"speech has {100 * MIN_PITCHED_FRACTION:.0f} % or more): nothing to learn lip motion from"
        )
    return pitched


def train_avatar_audio(
    avatar_dir: str | Path, *, features: str = "logmel", wav2vec2: str | None = None, steps: int | None = None,
    video: str | Path | None = None, device: str = "cpu", quiet: bool = False, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Fit the model on the training frames only; report the lip-sync correlation on the held-out tail."""
    from talkinghead import media
    from talkinghead.avatar import Avatar
    from talkinghead.params import ParamSequence

    avatar_dir = Path(avatar_dir)
    try:
        info = json.loads((avatar_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TalkingHeadError(f"{avatar_dir} is not an avatar: {exc}") from None
    training = info.get("training", {})
    video = Path(video or training.get("video", ""))
    if not video.is_file():
        raise TalkingHeadError(f"the training video {video} is not there; pass --video")
    seq = ParamSequence.load(avatar_dir / "training_params.npz")
    audio = media.extract_audio(video, SAMPLE_RATE)
    if audio is None or media.is_silent(audio, SAMPLE_RATE):
        raise NoSpeechError(f"{video} has no speech to learn lip motion from")
    check_voice(audio, SAMPLE_RATE, video)
    n_train = int(training.get("train_frames", len(seq)))
    model, metrics = train_on_prefix(
        seq, audio, SAMPLE_RATE, n_train, features=features, wav2vec2=wav2vec2, steps=steps, device=device,
        quiet=quiet, seed=seed,
    )  # fmt: skip
    Avatar.add_component(avatar_dir, audio_component(features), model.save_pretrained)
    return metrics


def train_on_prefix(
    seq: ParamSequence, audio: np.ndarray, sr: int, n_train: int, *, features: str = "logmel",
    wav2vec2: str | None = None, steps: int | None = None, device: str = "cpu", quiet: bool = False,
    seed: int = 0, config: AudioTrainConfig | None = None,
) -> tuple[AudioToExpression, dict[str, Any]]:  # fmt: skip
    """Train on the first ``n_train`` frames of ``seq`` (fitted on the video whose audio is ``audio[S]`` at
    ``sr``); when more than 10 frames are left, ``metrics["holdout"]`` scores the model on them."""
    from talkinghead.audio.train import evaluate_jaw_correlation, predict, train_audio_model

    split = int(round(n_train / seq.fps * sr))
    model, metrics = train_audio_model(
        audio[:split], sr, seq.expression[:n_train], seq.coefficient_names, seq.fps,
        feature_kind=features, steps=steps, device=device, quiet=quiet, seed=seed, wav2vec2=wav2vec2,
        valid=seq.valid[:n_train], config=config,
    )  # fmt: skip
    if n_train < len(seq) - 10:  # score on the unseen tail
        pred = predict(model, audio[split:], sr, wav2vec2=wav2vec2, fps=seq.fps)
        target = seq.expression[n_train : n_train + len(pred)]
        metrics["holdout"] = evaluate_jaw_correlation(
            pred[: len(target)], target, model.names, seq.coefficient_names
        )
    return model, metrics
