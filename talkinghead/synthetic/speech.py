"""Speech with phoneme timings, made locally by espeak-ng (no recordings, no network).

The espeak-ng shared library (Debian/Ubuntu package ``espeak-ng``) is driven through ctypes: its
synthesis callback hands over the audio together with a *phoneme event* for every phoneme, stamped
with its position in the audio, so the timings are exactly those of the waveform (the command line's
``--pho`` only works with MBROLA voices). Phoneme symbols are espeak-ng's ASCII mnemonics
(``aI``, ``@``, ``m``, ``T``; ``_`` is a pause), which :mod:`talkinghead.synthetic.visemes` maps to
mouth shapes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import gcd

import numpy as np
from scipy.signal import resample_poly

from talkinghead.errors import TalkingHeadError

INSTALL_HINT = "install it with `apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng`"


@dataclass(frozen=True)
class SpeechConfig:
    voice: str = "en-us"
    # 150 words per minute: conversational; espeak's default 175 sounds hurried.
    rate_wpm: int = 150
    pitch: int = 50  # espeak's 0-100 scale; 50 is the voice's own pitch
    # 16 kHz mono: what the audio features and wav2vec2 expect.
    sample_rate: int = 16000
    # Silence between sentences: a speaker's breath pause (0.3-0.6 s), during which the mouth closes.
    sentence_gap_s: float = 0.45
    # Silence before the first and after the last sentence, so a clip starts and ends at rest.
    lead_s: float = 0.3


CONFIG = SpeechConfig()


@dataclass(frozen=True)
class Phoneme:
    """One phoneme of the utterance: espeak-ng mnemonic and its span in seconds."""

    symbol: str
    start: float
    end: float

    @property
    def is_pause(self) -> bool:
        return self.symbol.startswith("_") or not self.symbol


@dataclass
class Speech:
    """Synthesised speech: mono float32 ``audio[n]`` at ``sample_rate`` Hz and its phonemes in order."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


# ----------------------------------------------------------------------------------------- espeak-ng
# espeak_lib.h: the event record handed to the synthesis callback
class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", _EventId),
    ]  # fmt: skip


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7
_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_DONT_EXIT = 0x0001, 0x8000
_PARAM_RATE, _PARAM_PITCH = 1, 3
_CHARS_UTF8 = 1
_POS_CHARACTER = 1


class _Espeak:
    """The process-wide espeak-ng engine (the library keeps global state: one user at a time)."""

    _lock = threading.Lock()
    _instance: _Espeak | None = None

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.rate = lib.espeak_Initialize(
            _OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT
        )
        if self.rate <= 0:
            raise TalkingHeadError(
                "espeak-ng failed to initialise (is its data folder espeak-ng-data installed?)"
            )
        self._samples: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: the library holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Espeak:
        if cls._instance is None:
            path = ctypes.util.find_library("espeak-ng")
            if path is None:
                raise TalkingHeadError(f"espeak-ng is not installed; {INSTALL_HINT}")
            cls._instance = cls(ctypes.CDLL(path))
        return cls._instance

    def _on_audio(self, wav, n: int, events) -> int:
        if n > 0:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_END_OF_LIST:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                symbol = bytes(event.id.string).split(b"\0")[0].decode("ascii", "replace")
                self._events.append((symbol, int(event.sample)))
            i += 1
        return 0  # 0: continue synthesis

    def say(self, text: str, config: SpeechConfig) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Audio (int16 samples at ``self.rate``) and (phoneme, start sample) events for one text."""
        lib = self.lib
        if lib.espeak_SetVoiceByName(config.voice.encode()) != 0:
            raise TalkingHeadError(f"espeak-ng has no voice {config.voice!r} (try `espeak-ng --voices`)")
        lib.espeak_SetParameter(_PARAM_RATE, int(config.rate_wpm), 0)
        lib.espeak_SetParameter(_PARAM_PITCH, int(config.pitch), 0)
        self._samples, self._events = [], []
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0 or lib.espeak_Synchronize() != 0:
            raise TalkingHeadError(f"espeak-ng failed to synthesise {text[:40]!r} (error {status})")
        audio = np.concatenate(self._samples) if self._samples else np.zeros(0, np.int16)
        return audio, list(self._events)


def espeak_available() -> bool:
    """True when the espeak-ng library can be loaded (tests and examples skip without it)."""
    try:
        with _Espeak._lock:
            _Espeak.get()
    except (TalkingHeadError, OSError):
        return False
    return True


# ----------------------------------------------------------------------------------------- synthesis
def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (ending in . ! or ?), so each gets its own breath pause."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return [p for p in parts if p.strip()]


def synthesize(text: str | Sequence[str], config: SpeechConfig = CONFIG) -> Speech:
    """Speak ``text`` (one string, or a list of sentences) with espeak-ng.

    Returns the audio resampled to ``config.sample_rate`` and every phoneme with its start and end in
    seconds; pauses between sentences and at both ends appear as ``"_"`` phonemes, so the phonemes
    tile the whole clip.
    """
    sentences = split_sentences(text) if isinstance(text, str) else [s for s in text if s.strip()]
    if not sentences:
        raise TalkingHeadError("no text to speak")
    sr = int(config.sample_rate)
    pieces: list[np.ndarray] = []
    phonemes: list[Phoneme] = []
    cursor = 0.0

    def pause(seconds: float) -> None:
        nonlocal cursor
        n = int(round(seconds * sr))
        pieces.append(np.zeros(n, np.float32))
        phonemes.append(Phoneme("_", cursor, cursor + n / sr))
        cursor += n / sr

    with _Espeak._lock:
        engine = _Espeak.get()
        pause(config.lead_s)
        for k, sentence in enumerate(sentences):
            raw, events = engine.say(sentence, config)
            audio = _resample(raw.astype(np.float32) / 32768.0, engine.rate, sr)
            length = len(audio) / sr
            starts = [s / engine.rate for _, s in events] + [len(raw) / engine.rate]
            if events and starts[0] > 0:  # espeak's own lead-in before the first phoneme
                phonemes.append(Phoneme("_", cursor, cursor + min(starts[0], length)))
            for (symbol, _), start, end in zip(events, starts[:-1], starts[1:], strict=True):
                start, end = min(start, length), min(end, length)
                if end > start:
                    phonemes.append(Phoneme(symbol or "_", cursor + start, cursor + end))
            pieces.append(audio)
            cursor += length
            pause(config.sentence_gap_s if k < len(sentences) - 1 else config.lead_s)
    phonemes = _merge_pauses(phonemes)
    return Speech(np.concatenate(pieces).astype(np.float32), sr, phonemes)


def _resample(audio: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    if orig_sr == sr:
        return audio
    g = gcd(int(orig_sr), int(sr))
    return resample_poly(audio, sr // g, orig_sr // g).astype(np.float32)


def _merge_pauses(phonemes: list[Phoneme]) -> list[Phoneme]:
    """Join adjacent pauses (espeak's ``_:`` and ``_`` plus the gaps we add) into one ``_``."""
    out: list[Phoneme] = []
    for p in sorted(phonemes, key=lambda p: p.start):
        if p.is_pause and out and out[-1].is_pause:
            out[-1] = Phoneme("_", out[-1].start, max(out[-1].end, p.end))
        else:
            out.append(Phoneme("_", p.start, p.end) if p.is_pause else p)
    return out
