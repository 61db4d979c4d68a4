"""Make the demo avatar's training video: a synthetic subject speaking English, no real person in it.

    python examples/make_demo_video.py demo_subject.mp4                 # ~40 s, 25 fps, 384x384 + speech
    python examples/make_demo_video.py demo.mp4 --duration 10 --params demo.params.npz
    python examples/make_demo_video.py --hello                          # writes examples/hello.wav

The face is the project's own generic morphable model rendered by ``talkinghead.synthetic``; the
voice is espeak-ng (``apt-get install espeak-ng``), whose phoneme timings drive the mouth. ``--params``
also saves the ground-truth parameters of every frame (a ParamSequence), handy for checking the tracker.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile

from talkinghead.atomic import atomic_path
from talkinghead.errors import TalkingHeadError
from talkinghead.media import VideoWriter
from talkinghead.synthetic import AnimationConfig, FaceRenderer, RenderConfig, animate, synthesize
from talkinghead.synthetic.speech import CONFIG as SPEECH

HELLO_PATH = Path(__file__).resolve().parent / "hello.wav"
HELLO_TEXT = "Hello! I am the talkinghead demo avatar. Nice to meet you."

# Varied sentences: open and close vowels, rounded vowels, lip closures (p, b, m), f/v, th, s/sh,
# questions and exclamations, so the video shows the whole range of mouth shapes.
SENTENCES = (
    "Good morning, and welcome to this short demonstration.",
    "My name is Sam, and I live in a small house by the sea.",
    "Would you like a cup of coffee, or maybe some fresh orange juice?",
    "The quick brown fox jumps over the lazy dog.",
    "I think that both of these ideas are worth a closer look.",
    "Please remember to bring your umbrella, because it might rain later.",
    "Wow, that was amazing!",
    "Five or six people arrived very early for the meeting.",
    "She sells sea shells by the sea shore.",
    "How are you feeling today? I hope you are well.",
    "Peter bought a big bag of apples at the market.",
    "We usually walk to the park on Sunday afternoons.",
    "Thank you for watching, and have a wonderful day.",
    "Why do you think the moon looks so large tonight?",
    "Our new blue boat floats smoothly on the water.",
)


def pick_sentences(duration_s: float, seed: int) -> list[str]:
    """Sentences in a seeded order, enough of them to fill ``duration_s`` (cycling if needed)."""
    order = np.random.default_rng(seed).permutation(len(SENTENCES))
    chosen: list[str] = []
    total = SPEECH.lead_s * 2
    i = 0
    while total < duration_s:
        sentence = SENTENCES[order[i % len(order)]]
        chosen.append(sentence)
        total += synthesize([sentence]).duration - 2 * SPEECH.lead_s + SPEECH.sentence_gap_s
        i += 1
    return chosen


def make_video(path: Path, duration_s: float, fps: float, size: int, seed: int, params_path: Path | None,
               quiet: bool) -> None:  # fmt: skip
    renderer = FaceRenderer(config=RenderConfig(size=(size, size)))
    speech = synthesize(pick_sentences(duration_s, seed))
    _, translation, scale = renderer.default_pose()
    params = animate(speech, translation, scale, renderer.size, seed=seed, config=AnimationConfig(fps=fps))
    params = params.with_arrays(identity=renderer.model.neutral.numpy())
    with VideoWriter(path, fps, renderer.size, audio=speech.audio, audio_rate=speech.sample_rate,
                     quiet=quiet, total=len(params)) as writer:  # fmt: skip
        for frame in renderer.render_sequence(params):
            writer.write(frame)
    if params_path is not None:
        params.save(params_path)
        print(params_path)
    print(path)


def write_hello(path: Path = HELLO_PATH) -> None:
    speech = synthesize(HELLO_TEXT)
    with atomic_path(path, suffix=".wav") as tmp:
        soundfile.write(tmp, speech.audio, speech.sample_rate, subtype="PCM_16")
    print(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", nargs="?", type=Path, help="video to write (.mp4)")
    ap.add_argument("--duration", type=float, default=40.0, help="seconds of speech (default 40)")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--size", type=int, default=384, help="frame side in pixels (default 384)")
    ap.add_argument("--seed", type=int, default=0, help="sentence order and motion (default 0)")
    ap.add_argument("--params", type=Path, help="also save the ground-truth parameters here (.npz)")
    ap.add_argument("--hello", action="store_true", help=f"write {HELLO_PATH.name} (~5 s of speech)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.output is None and not args.hello:
        ap.error("give an output video path, or --hello")
    try:
        if args.hello:
            write_hello()
        if args.output is not None:
            make_video(args.output, args.duration, args.fps, args.size, args.seed, args.params, args.quiet)
    except TalkingHeadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
