"""A synthetic talking subject made entirely by the project: its own face model rendered and animated
from espeak-ng speech. It stands in for a filmed person (the bundled demo avatar is trained on it), so
no third-party footage or likeness ships with the package.

- :mod:`~talkinghead.synthetic.face_renderer`: parameters -> RGB frames (:class:`FaceRenderer`);
- :mod:`~talkinghead.synthetic.speech`: text -> audio + timed phonemes (:func:`synthesize`, espeak-ng);
- :mod:`~talkinghead.synthetic.visemes`: timed phonemes -> a ParamSequence (:func:`animate`).
"""

from talkinghead.synthetic.face_renderer import FaceRenderer, RenderConfig
from talkinghead.synthetic.speech import Phoneme, Speech, SpeechConfig, espeak_available, synthesize
from talkinghead.synthetic.visemes import AnimationConfig, animate, mouth_track

__all__ = [
    "AnimationConfig", "FaceRenderer", "Phoneme", "RenderConfig", "Speech", "SpeechConfig", "animate",
    "espeak_available", "mouth_track", "synthesize",
]  # fmt: skip
