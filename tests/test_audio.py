"""Audio to expression: frame-aligned features, the network and its files, training, silence, head motion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _synthetic import expressions_for, synth_speech
from scipy.ndimage import minimum_filter1d

from talkinghead.audio import features as feat
from talkinghead.audio.model import (
    MOUTH_NAMES,
    AudioToExpression,
    AudioToExpressionConfig,
    scatter_coefficients,
)
from talkinghead.audio.motion import MotionStats, blink_curve, detect_blinks, smooth_noise, synthesize_motion
from talkinghead.audio.train import (
    AudioTrainConfig,
    evaluate_jaw_correlation,
    predict,
    train_audio_model,
)
from talkinghead.errors import TalkingHeadError
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence

SR, FPS = 16000, 25
JAW = ARKIT_NAMES.index("jawOpen")


@pytest.fixture(scope="module")
def trained() -> tuple[AudioToExpression, dict]:
    audio, env = synth_speech(16.0, seed=0)
    return train_audio_model(audio, SR, expressions_for(env), ARKIT_NAMES, FPS, steps=250, quiet=True, seed=0)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised wav2vec2 small enough to run in milliseconds, saved like a real one."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=32,
    )  # fmt: skip
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w2v") / "tiny"
    Wav2Vec2Model(config).save_pretrained(path)
    return path


# --------------------------------------------------------------------------- features
@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100])
@pytest.mark.parametrize("fps", [25, 29.97, 30])
def test_log_mel_has_one_row_per_video_frame(sr: int, fps: float) -> None:
    for seconds in (0.5, 1.0, 2.37):
        audio = np.random.default_rng(0).normal(0, 0.05, int(seconds * sr)).astype(np.float32)
        mel = feat.log_mel(audio, sr, fps, n_mels=40)
        assert mel.shape == (round(len(audio) / sr * fps), 40)
        assert mel.dtype == np.float32 and np.all(np.isfinite(mel))


@pytest.mark.parametrize("sr, fps", [(16000, 25), (44100, 29.97)])
def test_log_mel_rows_line_up_with_frames(sr: int, fps: float) -> None:
    audio = np.zeros(3 * sr, np.float32)
    start, stop = int(1.0 * sr), int(1.4 * sr)
    audio[start:stop] = 0.5 * np.sin(2 * np.pi * 300 * np.arange(stop - start) / sr)
    energy = feat.log_mel(audio, sr, fps).max(1)
    inside = np.arange(int(np.ceil(1.0 * fps)) + 1, int(1.4 * fps) - 1)  # frames wholly inside the tone
    outside = np.r_[0 : int(1.0 * fps) - 1, int(np.ceil(1.4 * fps)) + 2 : len(energy)]
    assert energy[inside].min() > energy[outside].max() + 10


def test_features_reject_bad_audio() -> None:
    with pytest.raises(TalkingHeadError, match="empty"):
        feat.log_mel(np.zeros(10, np.float32), SR, FPS)
    with pytest.raises(TalkingHeadError, match="NaN"):
        feat.log_mel(np.full(SR, np.nan, np.float32), SR, FPS)
    with pytest.raises(TalkingHeadError, match="unknown audio feature kind"):
        feat.make_features("mfcc")
    with pytest.raises(TalkingHeadError, match="need the weights"):
        feat.make_features("wav2vec2")


def test_loudness_normalisation_removes_recording_gain() -> None:
    audio, env = synth_speech(3.0, seed=1)
    quiet = feat.log_mel(feat.normalize_loudness(audio * 0.1, SR), SR, FPS)
    loud = feat.log_mel(feat.normalize_loudness(audio, SR), SR, FPS)
    raw_quiet = feat.log_mel(audio * 0.1, SR, FPS)
    speech = env > 0.3
    assert np.abs(raw_quiet - loud)[speech].mean() > 3  # 20 dB apart without normalisation
    assert np.abs(quiet - loud)[speech].mean() < 0.05
    extractor = feat.make_features("logmel")  # what training and prediction use: normalises by itself
    assert np.abs(extractor(audio * 0.1, SR, FPS) - loud)[speech].mean() < 0.05
    assert np.array_equal(feat.normalize_loudness(np.zeros(SR, np.float32), SR), np.zeros(SR))
    hiss = np.random.default_rng(0).normal(0, 1e-4, SR).astype(np.float32)  # -80 dBFS
    assert np.abs(feat.normalize_loudness(hiss, SR)).std() < 1e-4 * 10.5  # lifted by at most 20 dB


def test_voice_activity_marks_speech_not_silence_or_steady_noise() -> None:
    audio, env = synth_speech(6.0, seed=2)
    audio[2 * SR : int(3.5 * SR)] = np.random.default_rng(1).normal(0, 1e-4, int(1.5 * SR))  # a pause
    env[2 * FPS : int(3.5 * FPS)] = 0
    vad = feat.voice_activity(audio, SR, FPS)
    assert vad.shape == env.shape
    # the mask stays open for the hangover, then ramps closed: look past both
    margin = int(np.ceil((feat.LEVEL.hangover_s + feat.LEVEL.closing_s) * FPS)) + 1
    pauses = minimum_filter1d((env == 0).astype(int), 2 * margin + 1) == 1
    assert pauses[2 * FPS : int(3.5 * FPS)].sum() > 15
    assert vad[env > 0.5].min() > 0.95 and vad[pauses].max() < 0.05
    assert feat.voice_activity(np.zeros(SR, np.float32), SR, FPS).max() < 0.01
    noise = np.random.default_rng(0).normal(0, 0.03, 2 * SR).astype(np.float32)
    assert feat.voice_activity(noise, SR, FPS).mean() < 0.1


def test_a_voice_is_told_apart_from_noise() -> None:
    """A soundtrack of fan or room noise is loud enough to pass the silence check but holds no voice:
    training must refuse it rather than learn lip motion from it."""
    from talkinghead.audio.avatar_audio import NoSpeechError, check_voice

    speech, _ = synth_speech(6.0, seed=4)
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.normal(size=6 * SR)).astype(np.float32)
    assert feat.pitched_fraction(speech, SR) > 0.3
    assert check_voice(speech, SR, "speech.wav") > 0.3
    assert feat.pitched_fraction(noise, SR) < 0.1
    with pytest.raises(NoSpeechError, match="no voice"):
        check_voice(noise, SR, "noise.wav")
    assert feat.pitched_fraction(np.zeros(SR, np.float32), SR) == 0.0


def test_wav2vec2_features_from_a_local_folder(tiny_wav2vec2: Path) -> None:
    extractor = feat.make_features("wav2vec2", wav2vec2=tiny_wav2vec2)
    assert extractor.kind == "wav2vec2" and extractor.dim == 32
    audio = np.random.default_rng(0).normal(0, 0.1, int(1.3 * 22050)).astype(np.float32)
    out = extractor(audio, 22050, 25)
    assert out.shape == (round(1.3 * 25), 32) and np.all(np.isfinite(out))
    assert np.array_equal(out, extractor(audio, 22050, 25))
    small_chunks = feat.Wav2Vec2Settings(chunk_s=0.5, context_s=0.25)
    chunked = feat.Wav2Vec2Features(tiny_wav2vec2, settings=small_chunks)
    assert chunked(audio, 22050, 30).shape == (round(1.3 * 30), 32)


def test_wav2vec2_missing_weights_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match="does not exist"):
        feat.Wav2Vec2Features(tmp_path / "nowhere")
    with pytest.raises(TalkingHeadError, match="not on disk or in the local model cache"):
        feat.Wav2Vec2Features("no-such-org/no-such-wav2vec2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TalkingHeadError, match="not on disk"):
        feat.Wav2Vec2Features(tmp_path / "empty")


# --------------------------------------------------------------------------- model
def _random_model(**overrides) -> AudioToExpression:
    torch.manual_seed(1)
    model = AudioToExpression(AudioToExpressionConfig(feature_dim=12, hidden=16, **overrides))
    rng = np.random.default_rng(0)
    k = model.config.n_out
    model.set_statistics(rng.normal(2, 3, (50, 12)), rng.uniform(0, 1, (50, k)), np.full(k, 0.05))
    return model.eval()


def test_mouth_names_cover_speech_and_nothing_else() -> None:
    speech = {"jawOpen", "jawForward", "jawLeft", "jawRight", "cheekPuff", "mouthClose", "mouthSmileLeft"}
    assert speech <= set(MOUTH_NAMES)
    assert not {"eyeBlinkLeft", "browInnerUp", "noseSneerLeft", "tongueOut"} & set(MOUTH_NAMES)


def test_model_window_is_limited_to_the_context() -> None:
    model = _random_model(context_s=0.3, layers=4)
    reach = model.config.context_frames
    assert reach == 8 and sum(model.config.dilations()) == reach
    x = torch.randn(1, 60, 12)
    base = model(x)[0, 30]
    far, near = x.clone(), x.clone()
    far[0, 30 + reach + 1] += 5.0
    near[0, 30 + reach] += 5.0
    assert torch.equal(model(far)[0, 30], base)
    assert not torch.allclose(model(near)[0, 30], base)


def test_model_save_load_round_trip(tmp_path: Path) -> None:
    model = _random_model()
    model.save_pretrained(tmp_path / "audio")
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == ["config.json", "model.safetensors"]
    loaded = AudioToExpression.from_pretrained(tmp_path / "audio")
    assert loaded.config == model.config
    x = torch.randn(2, 40, 12)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert torch.equal(loaded.rest, model.rest)


def test_model_load_errors(tmp_path: Path) -> None:
    target = _random_model().save_pretrained(tmp_path / "audio")
    header = json.loads((target / "config.json").read_text())
    header["version"] = 99
    (target / "config.json").write_text(json.dumps(header))
    with pytest.raises(TalkingHeadError, match="format version 99"):
        AudioToExpression.from_pretrained(target)
    header["version"], header["config"]["hidden"] = 1, 64
    (target / "config.json").write_text(json.dumps(header))
    with pytest.raises(TalkingHeadError, match="does not match its config.json"):
        AudioToExpression.from_pretrained(target)
    (target / "config.json").write_text("{not json")
    with pytest.raises(TalkingHeadError, match="not valid JSON"):
        AudioToExpression.from_pretrained(target)
    (target / "model.safetensors").unlink()
    with pytest.raises(TalkingHeadError, match="lacks model.safetensors"):
        AudioToExpression.from_pretrained(target)
    with pytest.raises(TalkingHeadError, match="lacks config.json"):
        AudioToExpression.from_pretrained(tmp_path / "missing")


def test_scatter_coefficients_places_mouth_into_full_set() -> None:
    base = np.linspace(0, 1, len(ARKIT_NAMES)).astype(np.float32)
    full = scatter_coefficients(np.full((3, 2), 0.5), ("jawOpen", "mouthClose"), ARKIT_NAMES, base)
    assert full.shape == (3, 52) and np.all(full[:, JAW] == 0.5)
    assert full[0, ARKIT_NAMES.index("eyeBlinkLeft")] == base[ARKIT_NAMES.index("eyeBlinkLeft")]
    with pytest.raises(TalkingHeadError, match="not in the target model"):
        scatter_coefficients(np.zeros((1, 1)), ("jawWiggle",), ARKIT_NAMES)


# --------------------------------------------------------------------------- training
def test_training_learns_jaw_from_the_envelope(trained) -> None:
    model, metrics = trained
    assert model.names == MOUTH_NAMES and "eyeBlinkLeft" not in model.names
    assert metrics["train_jaw_correlation"] > 0.9 and metrics["rest_source"] == "silence"
    audio, env = synth_speech(6.0, seed=7)  # unseen speech
    pred = predict(model, audio, SR)
    assert pred.shape == (len(env), len(MOUTH_NAMES))
    scores = evaluate_jaw_correlation(pred, expressions_for(env), model.names, ARKIT_NAMES)
    assert scores["jawOpen"] > 0.8 and scores["aperture"] > 0.8


@pytest.mark.parametrize("level", [0.0, 1e-4, 3e-3])
def test_silence_keeps_the_mouth_at_rest(trained, level: float) -> None:
    model, _ = trained
    j = model.names.index("jawOpen")
    rest = float(model.rest[j])
    assert rest < 0.05  # the synthetic subject's jaw is closed in pauses
    audio = np.random.default_rng(3).normal(0, level, 2 * SR).astype(np.float32)
    assert np.abs(predict(model, audio, SR)[:, j] - rest).max() < 0.02
    if level < 1e-3:  # the network itself learned silence, not only the gate
        assert np.abs(predict(model, audio, SR, gate=False)[:, j] - rest).max() < 0.1


def test_pause_inside_speech_closes_the_mouth(trained) -> None:
    model, _ = trained
    audio, env = synth_speech(4.0, seed=11)
    audio[int(1.5 * SR) : int(2.5 * SR)] = 0
    jaw = predict(model, audio, SR)[:, model.names.index("jawOpen")]
    assert jaw[int(1.7 * FPS) : int(2.3 * FPS)].max() < 0.03


def test_trained_model_survives_save_and_load(trained, tmp_path: Path) -> None:
    model, _ = trained
    audio, _ = synth_speech(2.0, seed=5)
    loaded = AudioToExpression.from_pretrained(model.save_pretrained(tmp_path / "a2e"))
    assert np.array_equal(predict(model, audio, SR), predict(loaded, audio, SR))


def test_training_is_deterministic_and_checks_inputs() -> None:
    audio, env = synth_speech(3.0, seed=4)
    expr = expressions_for(env)
    fast = AudioTrainConfig(hidden=16, batch_size=4)
    a, _ = train_audio_model(audio, SR, expr, ARKIT_NAMES, FPS, steps=5, quiet=True, seed=3, config=fast)
    b, _ = train_audio_model(audio, SR, expr, ARKIT_NAMES, FPS, steps=5, quiet=True, seed=3, config=fast)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    with pytest.raises(TalkingHeadError, match="same video"):
        train_audio_model(audio, SR, expr[:40], ARKIT_NAMES, FPS, steps=1, quiet=True)
    with pytest.raises(TalkingHeadError, match="no mouth"):
        train_audio_model(audio, SR, expr[:, :5], ARKIT_NAMES[:5], FPS, steps=1, quiet=True)
    with pytest.raises(TalkingHeadError, match="no speech"):
        train_audio_model(np.zeros_like(audio), SR, expr, ARKIT_NAMES, FPS, steps=1, quiet=True)


def test_wav2vec2_training_path_end_to_end(tiny_wav2vec2: Path, tmp_path: Path) -> None:
    audio, env = synth_speech(3.0, seed=6)
    model, metrics = train_audio_model(
        audio, SR, expressions_for(env), ARKIT_NAMES, FPS, feature_kind="wav2vec2", steps=3, quiet=True,
        wav2vec2=tiny_wav2vec2, config=AudioTrainConfig(hidden=16, batch_size=2),
    )  # fmt: skip
    assert metrics["feature_kind"] == "wav2vec2" and model.config.feature_dim == 32
    loaded = AudioToExpression.from_pretrained(model.save_pretrained(tmp_path / "a2e"))
    assert loaded.config.wav2vec2 == str(tiny_wav2vec2)
    assert predict(loaded, audio[: SR // 2], SR).shape == (round(0.5 * FPS), len(MOUTH_NAMES))


def test_jaw_correlation_metric() -> None:
    target = expressions_for(np.abs(np.sin(np.linspace(0, 9, 100))).astype(np.float32))
    assert evaluate_jaw_correlation(target, target, ARKIT_NAMES)["jawOpen"] == pytest.approx(1.0)
    flipped = target.copy()
    flipped[:, JAW] = 1 - flipped[:, JAW]
    assert evaluate_jaw_correlation(flipped, target, ARKIT_NAMES)["jawOpen"] == pytest.approx(-1.0)
    assert np.isnan(evaluate_jaw_correlation(np.zeros_like(target), target, ARKIT_NAMES)["jawOpen"])


# --------------------------------------------------------------------------- motion
def _tracked_sequence(seconds: float = 60.0, blinks: bool = True) -> ParamSequence:
    rng = np.random.default_rng(0)
    n = int(seconds * FPS)
    axes = [(0.8, 0.05), (1.2, 0.1), (0.5, 0.02)]  # (timescale s, std rad) for pitch, yaw, roll
    rot = np.stack([smooth_noise(n, FPS, ts, rng) * sd for ts, sd in axes], 1)
    rot += [0.05, -0.1, 0.0]
    expr = np.zeros((n, len(ARKIT_NAMES)), np.float32)
    peaks = np.arange(int(1.5 * FPS), n - 10, 4 * FPS) if blinks else np.zeros(0, int)  # 15 per minute
    blink = blink_curve(n, FPS, peaks, 0.2, 0.9, 0.1)
    expr[:, ARKIT_NAMES.index("eyeBlinkLeft")] = blink + rng.normal(0, 0.02, n)
    expr[:, ARKIT_NAMES.index("eyeBlinkRight")] = blink
    trans = np.array([256.0, 240.0, 0.0]) + np.stack([smooth_noise(n, FPS, 1.0, rng) * 3] * 3, 1)
    return ParamSequence(
        fps=FPS, model_id="test", coefficient_names=ARKIT_NAMES, expression=expr, rotation=rot,
        translation=trans, scale=np.full(n, 120.0), valid=np.ones(n, bool),
    )  # fmt: skip


def test_motion_stats_measure_the_subject() -> None:
    stats = MotionStats.from_params(_tracked_sequence())
    assert stats.blinks_detected == 15
    assert stats.blink_rate_per_min == pytest.approx(15, abs=1)
    assert stats.blink_duration_s == pytest.approx(0.2, abs=0.03)
    assert stats.blink_amplitude == pytest.approx(0.9, abs=0.05)
    assert np.allclose(stats.rotation_std, [0.05, 0.1, 0.02], rtol=0.05)
    assert np.allclose(stats.rotation_timescale_s, [0.8, 1.2, 0.5], rtol=0.35)
    assert np.allclose(stats.translation_mean[:2], [256, 240], atol=1)
    assert stats.scale_mean == pytest.approx(120)


def test_motion_stats_json_round_trip_and_errors() -> None:
    stats = MotionStats.from_params(_tracked_sequence(20))
    data = json.loads(json.dumps(stats.to_dict()))
    assert MotionStats.from_dict(data) == stats
    with pytest.raises(TalkingHeadError, match="version"):
        MotionStats.from_dict({**data, "version": 7})
    with pytest.raises(TalkingHeadError, match="lack 'rotation_std'"):
        MotionStats.from_dict({k: v for k, v in data.items() if k != "rotation_std"})
    with pytest.raises(TalkingHeadError, match="malformed"):
        MotionStats.from_dict({**data, "rotation_std": [1, 2]})


def test_short_clip_without_blinks_still_blinks() -> None:
    stats = MotionStats.from_params(_tracked_sequence(8, blinks=False))
    assert stats.blinks_detected == 0 and 5 < stats.blink_rate_per_min < 20


def test_synthesized_motion_matches_the_stats() -> None:
    stats = MotionStats.from_params(_tracked_sequence())
    n = 600 * FPS
    rot, trans, scale, blink = synthesize_motion(stats, n, FPS, np.random.default_rng(1))
    assert rot.shape == (n, 3) and trans.shape == (n, 3) and scale.shape == (n,) and blink.shape == (n,)
    peaks, widths, heights = detect_blinks(blink, FPS)
    assert len(peaks) / 10 == pytest.approx(stats.blink_rate_per_min, rel=0.12)
    assert np.median(widths) == pytest.approx(stats.blink_duration_s, rel=0.3)
    assert np.median(heights) == pytest.approx(stats.blink_amplitude, abs=0.05)
    dev = rot - np.asarray(stats.rotation_mean)
    assert np.allclose(dev.std(0), stats.rotation_std, rtol=0.1)
    assert np.abs(np.diff(dev, axis=0)).mean() < 0.1 * dev.std()  # smooth, not jittery
    assert np.allclose(trans.mean(0)[:2], stats.translation_mean[:2], atol=0.5)
    again = synthesize_motion(stats, n, FPS, np.random.default_rng(1))
    assert np.array_equal(again[0], rot)


def test_speech_makes_the_head_livelier() -> None:
    stats = MotionStats.from_params(_tracked_sequence(20))
    n = 60 * FPS
    energy = np.zeros(n)
    energy[n // 2 :] = 1.0
    rot, *_ = synthesize_motion(stats, n, FPS, np.random.default_rng(2), audio_energy=energy)
    dev = rot - np.asarray(stats.rotation_mean)
    assert dev[n // 2 + FPS :].std() > 1.3 * dev[: n // 2 - FPS].std()
    with pytest.raises(TalkingHeadError, match="one value per frame"):
        synthesize_motion(stats, n, FPS, np.random.default_rng(2), audio_energy=energy[:10])
