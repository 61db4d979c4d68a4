"""Video/audio reading and writing: round trips, resampling, and clear errors for bad inputs."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from talkinghead import media
from talkinghead.errors import TalkingHeadError

SHARED_CLIP = Path("/work/shared/data/talk_woman_8s.mp4")
SR = 16000


def _frames(n: int, w: int, h: int) -> list[np.ndarray]:
    """Frames whose red level encodes the index, so order and content survive lossy coding."""
    out = []
    for i in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = 10 * i
        frame[..., 2] = 200
        out.append(frame)
    return out


def _tone(seconds: float, sr: int = SR, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    """20 frames of odd size 65x49 at 25 fps with 1.0 s of tone (longer than the 0.8 s video)."""
    path = tmp_path / "clip.mp4"
    with media.VideoWriter(path, fps=25, size=(65, 49), audio=_tone(1.0), audio_rate=SR) as writer:
        for frame in _frames(20, 65, 49):
            writer.write(frame)
    return path


def test_written_video_reads_back(clip: Path) -> None:
    info = media.probe_video(clip)
    assert (info.width, info.height) == (66, 50)  # odd sizes padded to even for yuv420p
    assert info.frames == 20 and info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(0.8, abs=0.04)
    assert info.has_audio and info.audio_rate == SR

    frames = media.read_frames(clip)
    assert frames.shape == (20, 50, 66, 3) and frames.dtype == np.uint8
    reds = frames[:, 25, 30, 0].astype(int)
    assert np.all(np.abs(reds - 10 * np.arange(20)) <= 4)  # CRF 20: close to the source
    assert abs(int(frames[3, 25, 30, 2]) - 200) <= 4

    streamed = list(media.iter_frames(clip, start=5, stop=8))
    assert len(streamed) == 3 and np.array_equal(streamed[0], frames[5])


def test_written_audio_is_trimmed_to_the_video(clip: Path) -> None:
    with av.open(str(clip)) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
    audio = media.extract_audio(clip, sr=SR)
    assert audio is not None and audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / SR - 20 / 25) <= 1 / 25  # within one frame
    assert not media.is_silent(audio, SR)
    # The tone survives AAC: dominant frequency is still 440 Hz.
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / SR)[spectrum.argmax()] == pytest.approx(440, abs=5)


def test_short_audio_is_padded_and_no_audio_gives_none(tmp_path: Path) -> None:
    padded = tmp_path / "padded.mp4"
    with media.VideoWriter(padded, fps=25, size=(64, 48), audio=_tone(0.2), audio_rate=SR) as writer:
        for frame in _frames(25, 64, 48):
            writer.write(frame)
    audio = media.extract_audio(padded, sr=8000)
    assert abs(len(audio) / 8000 - 1.0) <= 1 / 25
    assert media.is_silent(audio[int(0.4 * 8000) :], 8000)  # the padding is silence

    silent = tmp_path / "silent.mp4"
    with media.VideoWriter(silent, fps=30, size=(64, 48)) as writer:
        writer.write(_frames(1, 64, 48)[0])
    assert media.extract_audio(silent) is None
    assert not media.probe_video(silent).has_audio


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    with pytest.raises(ZeroDivisionError), media.VideoWriter(path, fps=25, size=(64, 48)) as writer:
        writer.write(_frames(1, 64, 48)[0])
        _ = 1 / 0
    with (
        pytest.raises(ValueError, match="expected"),
        media.VideoWriter(path, fps=25, size=(64, 48)) as writer,
    ):
        writer.write(np.zeros((10, 10, 3), np.uint8))
    with (
        pytest.raises(TalkingHeadError, match="no frames were written"),
        media.VideoWriter(path, 25, (64, 48)),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rate,channels", [(8000, 1), (44100, 2), (22050, 2)])
def test_read_audio_resamples_to_mono(tmp_path: Path, rate: int, channels: int) -> None:
    tone = _tone(0.5, rate, freq=300.0)
    path = tmp_path / f"tone_{rate}.wav"
    soundfile.write(path, np.stack([tone] * channels, axis=1), rate)
    audio = media.read_audio(path, sr=SR)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(0.5 * SR, abs=2)
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_read_audio_from_flac_and_video(tmp_path: Path, clip: Path) -> None:
    flac = tmp_path / "tone.flac"
    soundfile.write(flac, _tone(0.3, 48000), 48000)
    assert len(media.read_audio(flac, sr=SR)) == pytest.approx(0.3 * SR, abs=2)
    from_video = media.read_audio(clip, sr=SR)  # PyAV fallback
    assert abs(len(from_video) / SR - 0.8) <= 1 / 25


def test_is_silent() -> None:
    assert media.is_silent(np.zeros(SR, np.float32), SR)
    quiet = _tone(1.0) * 10 ** (-60 / 20)  # about -63 dBFS RMS
    assert media.is_silent(quiet, SR)
    burst = quiet.copy()
    burst[8000:8400] = _tone(0.025)  # one 25 ms loud syllable is enough
    assert not media.is_silent(burst, SR)


@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "missing": tmp_path / "missing.mp4",
        "empty": tmp_path / "empty.mp4",
        "text": tmp_path / "notes.txt",
        "corrupt": tmp_path / "corrupt.mp4",
        "wav": tmp_path / "sound.wav",
    }
    files["empty"].touch()
    files["text"].write_text("this is not media\n" * 20)
    files["corrupt"].write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    soundfile.write(files["wav"], _tone(0.1), SR)
    return files


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", "does not exist"),
        ("empty", "is empty"),
        ("text", "is not a readable video file"),
        ("corrupt", "is not a readable video file"),
        ("wav", "has no video stream"),
    ],
)
def test_video_errors(bad_files: dict[str, Path], kind: str, message: str) -> None:
    for read in (media.probe_video, media.read_frames):
        with pytest.raises(TalkingHeadError, match=message) as err:
            read(bad_files[kind])
        assert "\n" not in str(err.value) and str(bad_files[kind].name) in str(err.value)


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing", "does not exist"),
        ("empty", "is empty"),
        ("text", "is not a readable audio file"),
        ("corrupt", "is not a readable audio file"),
    ],
)
def test_audio_errors(bad_files: dict[str, Path], kind: str, message: str) -> None:
    with pytest.raises(TalkingHeadError, match=message):
        media.read_audio(bad_files[kind])


def test_zero_length_inputs(tmp_path: Path) -> None:
    wav = tmp_path / "zero.wav"
    soundfile.write(wav, np.zeros(0, np.float32), SR)
    with pytest.raises(TalkingHeadError, match="no audio samples"):
        media.read_audio(wav)
    video_only = tmp_path / "video_only.mp4"
    with media.VideoWriter(video_only, fps=25, size=(64, 48)) as writer:
        writer.write(_frames(1, 64, 48)[0])
    with pytest.raises(TalkingHeadError, match="has no audio stream"):
        media.read_audio(video_only)
    # An AVI keeps a video track that holds no frames (mp4 drops such tracks).
    empty_video = tmp_path / "zero.avi"
    with av.open(str(empty_video), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    with pytest.raises(TalkingHeadError, match="no frames"):
        media.probe_video(empty_video)


def test_write_png(tmp_path: Path) -> None:
    import matplotlib.image

    image = np.zeros((9, 7, 3), np.uint8)
    image[2, 3] = (255, 128, 1)
    path = media.write_png(tmp_path / "x.png", image)
    back = (matplotlib.image.imread(path)[..., :3] * 255).round().astype(np.uint8)
    assert np.array_equal(back, image)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    with pytest.raises(ValueError):
        media.write_png(tmp_path / "y.png", image.astype(np.float32))


@pytest.mark.skipif(not SHARED_CLIP.exists(), reason=f"shared test clip {SHARED_CLIP} is absent")
def test_real_clip() -> None:
    info = media.probe_video(SHARED_CLIP)
    assert (info.width, info.height, info.frames) == (512, 512, 200)
    assert info.fps == pytest.approx(25.0) and info.has_audio
    first = list(media.iter_frames(SHARED_CLIP, stop=2))
    assert len(first) == 2 and first[0].shape == (512, 512, 3) and first[0].dtype == np.uint8
    audio = media.extract_audio(SHARED_CLIP, sr=SR)
    assert audio is not None and abs(len(audio) / SR - info.duration) <= 1 / info.fps
    assert not media.is_silent(audio, SR)
