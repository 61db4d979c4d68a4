"""Video and audio in and out: PyAV for video, soundfile + librosa for audio, atomic writes.

Every read failure a user can cause (missing, empty, corrupt or wrong kind of file) becomes a one-line
:class:`~talkinghead.errors.TalkingHeadError`; no ffmpeg binary is needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import librosa
import numpy as np
import soundfile
from tqdm import tqdm

from talkinghead.atomic import atomic_path
from talkinghead.errors import TalkingHeadError


@dataclass(frozen=True)
class MediaConfig:
    # -50 dBFS RMS is below room tone of a typical phone/laptop recording (about -60..-45 dBFS is
    # hiss, speech sits near -30..-15), so only digital silence or a muted mic falls under it.
    silence_db: float = -50.0
    # 50 ms windows for the silence check: one loud syllable anywhere makes the clip non-silent.
    silence_window_s: float = 0.05
    # x264 CRF 20: visually near-lossless faces at modest sizes (18 looks lossless, 23 is x264's default).
    crf: int = 20
    # "fast" costs ~10 % more bytes than "medium" at the same quality, but encodes ~2x faster on a CPU.
    preset: str = "fast"
    # yuv420p is the only pixel format every browser and phone player decodes.
    pix_fmt: str = "yuv420p"
    # 128 kbit/s AAC is transparent for mono speech.
    audio_bitrate: int = 128_000
    # AAC encodes in frames of 1024 samples.
    aac_frame: int = 1024


CONFIG = MediaConfig()


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns without decoding. ``frames`` may be estimated from duration * fps."""

    width: int
    height: int
    fps: float
    frames: int
    duration: float  # seconds
    has_audio: bool
    audio_rate: int | None  # Hz of the first audio stream, None without audio


# ---------------------------------------------------------------------------------------------- opening
def _check_file(path: str | os.PathLike, kind: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise TalkingHeadError(f"{kind} file {path} does not exist")
    if not path.is_file():
        raise TalkingHeadError(f"{kind} file {path} is not a file")
    if path.stat().st_size == 0:
        raise TalkingHeadError(f"{kind} file {path} is empty")
    return path


def _open(path: Path, kind: str) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise TalkingHeadError(f"{path} is not a readable {kind} file ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not streams:
        raise TalkingHeadError(f"{path} has no video stream (not a video, or truncated)")
    return streams[0]


# ------------------------------------------------------------------------------------------------ video
def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Describe a video without decoding it; raise TalkingHeadError if it cannot be used."""
    path = _check_file(path, "video")
    with _open(path, "video") as container:
        stream = _video_stream(container, path)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        if not (fps > 0 and width > 0 and height > 0):
            raise TalkingHeadError(f"{path} has a video stream without a frame rate or frame size")
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        frames = int(stream.frames or 0)
        if frames <= 0 and duration > 0:
            frames = int(round(duration * fps))  # the container does not say: estimate
        if frames <= 0:  # no duration either: count packets (demux only, no decoding)
            frames = sum(1 for p in container.demux(stream) if p.size)
        if frames <= 0:
            raise TalkingHeadError(f"{path} has a video stream with no frames")
        if duration <= 0:
            duration = frames / fps
        audio = list(container.streams.audio)
        return VideoInfo(
            width=width, height=height, fps=fps, frames=frames, duration=duration,
            has_audio=bool(audio), audio_rate=int(audio[0].rate) if audio and audio[0].rate else None,
        )  # fmt: skip


def iter_frames(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Yield frames ``start <= i < stop`` as RGB uint8 ``[H, W, 3]``, decoding one at a time.

    Memory stays constant whatever the video's length. Frames before ``start`` are decoded and dropped
    (exact, no keyframe seeking).
    """
    path = _check_file(path, "video")
    container = _open(path, "video")
    try:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                if stop is not None and index >= stop:
                    break
                if index >= start:
                    yield frame.to_ndarray(format="rgb24")
                index += 1
        except av.FFmpegError as exc:
            reason = _reason(exc)
            raise TalkingHeadError(
                f"{path} is corrupt: decoding failed at frame {index} ({reason})"
            ) from None
        if index == 0:
            raise TalkingHeadError(f"{path} has a video stream with no frames")
    finally:
        container.close()


def read_frames(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """All frames (or the first ``max_frames``) as RGB uint8 ``[T, H, W, 3]``; for short clips only."""
    frames = list(iter_frames(path, 0, max_frames))
    if not frames:
        raise TalkingHeadError(f"{path}: no frames read")
    return np.stack(frames)


# ------------------------------------------------------------------------------------------------ audio
def _to_mono(samples: np.ndarray) -> np.ndarray:
    """``[n]`` or ``[n, channels]`` -> float32 ``[n]`` (channel mean)."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def _resample(audio: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    if orig_sr == sr or len(audio) == 0:
        return audio.astype(np.float32, copy=False)
    # polyphase (scipy) needs no optional resampler package and is exact for integer rate ratios.
    out = librosa.resample(audio, orig_sr=orig_sr, target_sr=sr, res_type="polyphase")
    return np.ascontiguousarray(out, dtype=np.float32)


def _decode_audio_stream(container: av.container.InputContainer, path: Path) -> tuple[np.ndarray, int] | None:
    """Decode the first audio stream to mono float32 at its own rate; None without an audio stream."""
    if not container.streams.audio:
        return None
    stream = container.streams.audio[0]
    rate = int(stream.rate or stream.codec_context.sample_rate or 0)
    if rate <= 0:
        raise TalkingHeadError(f"{path} has an audio stream without a sample rate")
    # ffmpeg downmixes to mono at the native rate; librosa does the rate change like for every other input.
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    try:
        for frame in container.decode(stream):
            frame.pts = None  # the resampler does not need timestamps; gaps would only warn
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        raise TalkingHeadError(f"{path} has corrupt audio ({_reason(exc)})") from None
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if stream.duration and stream.time_base:
        # AAC pads its last frame to 1024 samples; the stream's duration says where the real audio ends.
        audio = audio[: int(round(float(stream.duration * stream.time_base) * rate))]
    return audio.astype(np.float32, copy=False), rate


def read_audio(path: str | os.PathLike, sr: int = 16000) -> np.ndarray:
    """Load any audio file (or a video's audio track) as mono float32 ``[n]`` at ``sr`` Hz.

    wav/flac/ogg are read by soundfile; anything else (mp3, m4a, mp4, ...) falls back to PyAV.
    Channels are averaged; the rate is converted with librosa.
    """
    path = _check_file(path, "audio")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        audio = _to_mono(samples)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        audio, rate = _read_audio_pyav(path)  # mp3, m4a, video files: formats libsndfile lacks
    if len(audio) == 0:
        raise TalkingHeadError(f"{path} contains no audio samples")
    if not np.all(np.isfinite(audio)):
        raise TalkingHeadError(f"{path} contains invalid (NaN or infinite) audio samples")
    return _resample(audio, int(rate), sr)


def _read_audio_pyav(path: Path) -> tuple[np.ndarray, int]:
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError:
        raise TalkingHeadError(f"{path} is not a readable audio file (unknown format or corrupt)") from None
    with container:
        decoded = _decode_audio_stream(container, path)
    if decoded is None:
        raise TalkingHeadError(f"{path} has no audio stream (is it an audio file?)")
    return decoded


def extract_audio(video_path: str | os.PathLike, sr: int = 16000) -> np.ndarray | None:
    """The video's first audio track as mono float32 ``[n]`` at ``sr`` Hz; None if it has no audio."""
    path = _check_file(video_path, "video")
    with _open(path, "video") as container:
        decoded = _decode_audio_stream(container, path)
    if decoded is None or len(decoded[0]) == 0:
        return None
    return _resample(decoded[0], decoded[1], sr)


def is_silent(audio: np.ndarray, sr: int, threshold_db: float = CONFIG.silence_db) -> bool:
    """True when no 50 ms window of ``audio`` (mono ``[n]`` at ``sr`` Hz, full scale 1.0) reaches
    ``threshold_db`` dBFS RMS: a silent or muted recording, useless for driving a mouth."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    if audio.size == 0:
        return True
    window = max(1, int(round(CONFIG.silence_window_s * sr)))
    n = -(-audio.size // window) * window
    padded = np.zeros(n)
    padded[: audio.size] = audio
    rms = np.sqrt(np.mean(padded.reshape(-1, window) ** 2, axis=1))
    # The last window is zero-padded; scale its energy to the samples it really holds.
    rest = audio.size - (n - window)
    rms[-1] *= np.sqrt(window / rest)
    loudest_db = 20.0 * np.log10(max(float(rms.max()), 1e-12))
    return loudest_db < threshold_db


# ---------------------------------------------------------------------------------------------- writing
def _rate(fps: float) -> Fraction:
    if not (np.isfinite(fps) and fps > 0):
        raise TalkingHeadError(f"invalid frame rate {fps!r}")
    return Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001 (NTSC rates use 1001)


class VideoWriter:
    """Write an H.264 mp4 (with an AAC track when ``audio`` is given), atomically.

    Use as a context manager; frames are RGB uint8 ``[H, W, 3]`` of ``size=(W, H)``. Odd sizes are
    padded by one replicated pixel row/column (H.264 4:2:0 needs even sizes): ``output_size`` says what
    the file holds. On a clean exit the file appears at ``path``; after an exception nothing is left.
    The audio (mono float32 at ``audio_rate``) is trimmed or padded with silence to the video's duration.
    ``total`` (number of frames, optional) enables a progress bar unless ``quiet``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        size: tuple[int, int],
        audio: np.ndarray | None = None,
        audio_rate: int = 16000,
        quiet: bool = False,
        total: int | None = None,
        config: MediaConfig = CONFIG,
    ) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] <= 0 or self.size[1] <= 0:
            raise TalkingHeadError(f"invalid video size {size!r}")
        self.output_size = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self.audio = None if audio is None else np.clip(_to_mono(audio).reshape(-1), -1.0, 1.0)
        self.audio_rate = int(audio_rate)
        self.quiet = quiet
        self.total = total
        self.config = config
        self.frames_written = 0
        self._rate = _rate(self.fps)
        self._stack: ExitStack | None = None
        self._container = None
        self._video = None
        self._audio = None
        self._audio_pos = 0
        self._bar: tqdm | None = None

    # ------------------------------------------------------------------ context
    def __enter__(self) -> VideoWriter:
        stack = ExitStack()
        tmp = stack.enter_context(atomic_path(self.path, suffix=".mp4"))
        try:
            container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stack.callback(container.close)
            video = container.add_stream("libx264", rate=self._rate)
            video.width, video.height = self.output_size
            video.pix_fmt = self.config.pix_fmt
            video.options = {"crf": str(self.config.crf), "preset": self.config.preset}
            if self.audio is not None:
                audio = container.add_stream("aac", rate=self.audio_rate, layout="mono")
                audio.bit_rate = self.config.audio_bitrate
                self._audio = audio
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, av.FFmpegError):
                raise TalkingHeadError(f"cannot write video {self.path}: {_reason(exc)}") from None
            raise
        self._stack, self._container, self._video = stack, container, video
        if self.total is not None and not self.quiet:
            self._bar = tqdm(total=self.total, desc=f"writing {self.path.name}", unit="frame")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        stack, self._stack = self._stack, None
        if self._bar is not None:
            self._bar.close()
        if stack is None:
            return False
        if exc_type is not None:
            stack.__exit__(exc_type, exc, tb)  # closes the container, deletes the temporary
            return False
        try:
            if self.frames_written == 0:
                raise TalkingHeadError(f"no frames were written to {self.path}")
            self._mux(self._video.encode(None))
            if self._audio is not None:
                self._write_audio(final=True)
                self._mux(self._audio.encode(None))
        except BaseException as err:
            stack.__exit__(type(err), err, err.__traceback__)
            if isinstance(err, av.FFmpegError):
                raise TalkingHeadError(f"cannot write video {self.path}: {_reason(err)}") from None
            raise
        stack.close()  # closes the container (writes the index), then renames into place
        return False

    # ------------------------------------------------------------------ writing
    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 frame ``[H, W, 3]`` with ``(W, H) == size``."""
        if self._stack is None:
            raise RuntimeError("VideoWriter.write called outside its `with` block")
        frame = np.asarray(frame)
        w, h = self.size
        if frame.shape != (h, w, 3):
            raise ValueError(f"frame has shape {frame.shape}, expected {(h, w, 3)}")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame has dtype {frame.dtype}, expected uint8")
        if self.output_size != self.size:
            pad = ((0, self.output_size[1] - h), (0, self.output_size[0] - w), (0, 0))
            frame = np.pad(frame, pad, mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames_written
        video_frame.time_base = 1 / self._rate
        self._mux(self._video.encode(video_frame.reformat(format=self.config.pix_fmt)))
        self.frames_written += 1
        if self._audio is not None:
            self._write_audio(final=False)  # keep audio interleaved with the video as it grows
        if self._bar is not None:
            self._bar.update(1)

    def _mux(self, packets: list) -> None:
        for packet in packets:
            self._container.mux(packet)

    def _write_audio(self, final: bool) -> None:
        """Encode audio up to the current video time (whole AAC frames), or to the exact end if ``final``."""
        target = int(round(self.frames_written / self._rate * self.audio_rate))
        if not final:
            target -= target % self.config.aac_frame
        while self._audio_pos < target:
            n = min(self.config.aac_frame, target - self._audio_pos)
            chunk = np.zeros(n, np.float32)
            src = self.audio[self._audio_pos : self._audio_pos + n]
            chunk[: len(src)] = src  # silence past the end of the given audio
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = self.audio_rate
            frame.pts = self._audio_pos
            frame.time_base = Fraction(1, self.audio_rate)
            self._mux(self._audio.encode(frame))
            self._audio_pos += n


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write ``image`` (uint8 ``[H, W]``, ``[H, W, 3]`` RGB or ``[H, W, 4]`` RGBA) as PNG, atomically."""
    from PIL import Image  # Pillow comes with matplotlib, which the toolkit already needs

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image has dtype {image.dtype}, expected uint8")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"image has shape {image.shape}, expected [H, W], [H, W, 3] or [H, W, 4]")
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
    return Path(path)
