"""The synthetic talking subject: renderer, visemes, espeak-ng speech, and that MediaPipe can track it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.synthetic import (
    FaceRenderer,
    RenderConfig,
    animate,
    espeak_available,
    mouth_track,
    synthesize,
)
from talkinghead.synthetic.face_renderer import EYES, INNER_LIPS, still_params
from talkinghead.synthetic.speech import Phoneme
from talkinghead.synthetic.visemes import blink_track, viseme

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
needs_espeak = pytest.mark.skipif(
    not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)"
)


@pytest.fixture(scope="module")
def renderer() -> FaceRenderer:
    return FaceRenderer(config=RenderConfig(size=(256, 256)))


def _box(renderer: FaceRenderer, ids, expression: np.ndarray, pad: float = 0.0) -> tuple[slice, slice]:
    """Pixel box around landmarks ``ids`` of the posed face (output pixels)."""
    rot, trans, scale = renderer.default_pose()
    with torch.no_grad():
        v = renderer.model.vertices(torch.from_numpy(expression), torch.from_numpy(rot),
                                    torch.from_numpy(trans), torch.tensor(scale)).numpy()  # fmt: skip
    pts = v[list(ids), :2]
    lo = np.floor(pts.min(0) - pad).astype(int)
    hi = np.ceil(pts.max(0) + pad).astype(int)
    return slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _dark(image: np.ndarray, level: float = 55) -> int:
    """Pixels darker than any skin or lip shade: mouth interior, pupils, lash lines."""
    return int((image.astype(np.float32).mean(-1) < level).sum())


# ------------------------------------------------------------------------------------------- renderer
def test_render_shape_and_dtype(renderer):
    frame = renderer.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert frame.std() > 20  # a picture, not a flat fill


def test_render_sequence_matches_single_frames(renderer):
    expression = np.stack([renderer.expression(), renderer.expression(jawOpen=0.5, mouthSmileLeft=0.4)])
    frames = list(renderer.render_sequence(still_params(renderer, expression)))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[1], renderer.render(expression[1]))
    assert np.abs(frames[0].astype(int) - frames[1]).max() > 50


def test_open_mouth_shows_a_dark_interior(renderer):
    open_expr = renderer.expression(jawOpen=0.6)
    box = _box(renderer, INNER_LIPS, open_expr, pad=2)
    closed = renderer.render(renderer.expression())[box]
    opened = renderer.render(open_expr)[box]
    assert _dark(opened) > 40
    assert _dark(opened) > 5 * max(_dark(closed), 1)


def test_blink_closes_the_eyes(renderer):
    box = _box(renderer, EYES[0], renderer.expression(), pad=2)
    open_eye = renderer.render()[box]
    shut_eye = renderer.render(renderer.expression(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))[box]
    bright = lambda img: int((img.astype(np.float32).mean(-1) > 215).sum())  # noqa: E731  (sclera)
    assert np.abs(open_eye.astype(int) - shut_eye).mean() > 8
    assert _dark(shut_eye) < _dark(open_eye)  # iris and pupil hidden
    assert bright(shut_eye) < bright(open_eye) / 3


def test_mediapipe_tracks_the_rendered_face():
    """The training pipeline runs MediaPipe on the synthetic video: it must find the face and its mouth."""
    pytest.importorskip("mediapipe")
    from talkinghead_builtins.mediapipe_tracker import MediaPipeTracker

    renderer = FaceRenderer()  # the demo video's own size
    rot, trans, scale = renderer.default_pose()
    with torch.no_grad():
        truth = renderer.model.vertices(torch.zeros(52), torch.from_numpy(rot), torch.from_numpy(trans),
                                        torch.tensor(scale)).numpy()  # fmt: skip
    with MediaPipeTracker(static=True) as tracker:
        neutral = tracker(renderer.render())
        opened = tracker(renderer.render(renderer.expression(jawOpen=0.6)))
    assert neutral is not None, "MediaPipe found no face in the rendered neutral frame"
    assert opened is not None, "MediaPipe found no face in the rendered open-mouth frame"
    error = np.linalg.norm(neutral[:468, :2] - truth[:468, :2], axis=1).mean() / scale
    assert error < 0.1  # mean landmark error under a tenth of the eye distance
    gap = lambda lm: np.linalg.norm(lm[13, :2] - lm[14, :2]) / scale  # noqa: E731
    assert gap(opened) > gap(neutral) + 0.1


# -------------------------------------------------------------------------------------------- visemes
def test_visemes_silence_is_closed_and_open_vowel_is_open():
    phonemes = [Phoneme("_", 0.0, 0.5), Phoneme("A:", 0.5, 0.8), Phoneme("_", 0.8, 1.6)]
    jaw = mouth_track(phonemes, n_frames=40, fps=25.0)[:, ARKIT_NAMES.index("jawOpen")]
    assert np.abs(jaw[:8]).max() < 0.02 and np.abs(jaw[-8:]).max() < 0.02
    assert jaw[16] > 0.3  # 0.65 s: the middle of the vowel


def test_visemes_close_the_lips_for_m_between_vowels():
    phonemes = [Phoneme("a", 0.0, 0.2), Phoneme("m", 0.2, 0.28), Phoneme("a", 0.28, 0.48)]
    track = mouth_track(phonemes, n_frames=12, fps=25.0)
    jaw = track[:, ARKIT_NAMES.index("jawOpen")]
    assert jaw[6] < 0.15 < jaw[2]  # 0.24-0.28 s: inside the /m/
    assert track[6, ARKIT_NAMES.index("mouthPressLeft")] > 0.2


def test_viseme_lookup_falls_back_on_variants():
    assert viseme("@2") == viseme("@")
    assert viseme("_:") == viseme("_")
    assert len(viseme("aI")) == 2  # a diphthong glides between two shapes


def test_blinks_come_every_two_to_five_seconds():
    blink = blink_track(25 * 30, 25.0, np.random.default_rng(3))
    closed = np.flatnonzero((blink[1:] > 0.9) & (blink[:-1] <= 0.9)) / 25.0
    gaps = np.diff(closed)
    assert 5 <= len(closed) <= 16
    assert gaps.min() >= 1.9 and gaps.max() <= 5.1


# ------------------------------------------------------------------------------------------- espeak-ng
@needs_espeak
def test_synthesize_gives_16k_audio_with_phoneme_timings():
    speech = synthesize("Hello there. How are you?")
    assert speech.sample_rate == 16000 and speech.audio.dtype == np.float32
    assert 1.0 < speech.duration < 4.0
    assert np.abs(speech.audio).max() > 0.1
    starts = np.array([p.start for p in speech.phonemes])
    ends = np.array([p.end for p in speech.phonemes])
    assert starts[0] == 0.0 and abs(ends[-1] - speech.duration) < 0.02
    assert np.all(ends > starts) and np.allclose(starts[1:], ends[:-1], atol=1e-3)  # they tile the clip
    symbols = [p.symbol for p in speech.phonemes]
    assert {"h", "D"} <= set(symbols) and symbols.count("_") >= 3  # lead-in, sentence gap, tail


@needs_espeak
def test_animate_speech_is_deterministic_and_quiet_in_pauses(renderer):
    speech = synthesize("Good morning.")
    _, trans, scale = renderer.default_pose()
    a = animate(speech, trans, scale, renderer.size, seed=1)
    b = animate(speech, trans, scale, renderer.size, seed=1)
    assert len(a) == int(np.ceil(speech.duration * 25))
    np.testing.assert_array_equal(a.expression, b.expression)
    jaw = a.coefficient("jawOpen")
    assert jaw[:3].max() < 0.05 and jaw.max() > 0.3


@needs_espeak
def test_make_demo_video_writes_a_short_clip(tmp_path):
    from talkinghead.media import probe_video
    from talkinghead.params import ParamSequence

    spec = importlib.util.spec_from_file_location("make_demo_video", EXAMPLES / "make_demo_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, params = tmp_path / "demo.mp4", tmp_path / "demo.npz"
    assert (
        module.main([str(out), "--duration", "2", "--size", "128", "--params", str(params), "--quiet"]) == 0
    )
    info = probe_video(out)
    assert (info.width, info.height) == (128, 128) and info.has_audio and info.duration > 1.5
    assert len(ParamSequence.load(params)) == info.frames


def test_bundled_hello_wav():
    path = EXAMPLES / "hello.wav"
    info = soundfile.info(str(path))
    assert info.samplerate == 16000 and info.channels == 1 and 4.0 < info.duration < 6.5
