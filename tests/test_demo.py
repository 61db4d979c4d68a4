"""The bundled demo avatar: the README's main command works as written, and the mouth follows the speech."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkinghead.media import extract_audio, probe_video
from talkinghead.params import ParamSequence

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pretrained" / "demo"
HELLO = ROOT / "examples" / "hello.wav"

pytestmark = pytest.mark.skipif(
    not (DEMO / "config.json").is_file(),
    reason=f"the demo avatar {DEMO} is absent (python examples/make_demo_avatar.py rebuilds it)",
)


def test_demo_bundle_is_small_and_holds_no_machine_paths() -> None:
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size <= 25e6, f"{size / 1e6:.1f} MB"
    info = json.loads((DEMO / "config.json").read_text())
    assert not Path(info["training"]["video"]).is_absolute()
    assert (DEMO / "audio").is_dir(), "the demo must speak with no extra training"


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> tuple[Path, Path]:
    """`talkinghead speak examples/hello.wav -o hello.mp4`, exactly as the README says, from another folder."""
    work = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "TALKINGHEAD_AVATAR"}
    cmd = [sys.executable, "-m", "talkinghead", "--quiet", "speak", str(HELLO), "-o", "hello.mp4",
           "--save-params", "hello.npz"]  # fmt: skip
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].endswith("hello.mp4")
    return work / "hello.mp4", work / "hello.npz"


def test_speak_on_the_demo_keeps_the_speech_and_its_length(spoken) -> None:
    video, _ = spoken
    info = probe_video(video)
    seconds = sf.info(str(HELLO)).duration
    assert abs(info.frames - seconds * info.fps) <= 1
    audio = extract_audio(video, 16000)
    assert audio is not None and abs(len(audio) / 16000 - seconds) < 0.1


def test_the_demo_mouth_opens_with_the_voice_and_closes_in_pauses(spoken) -> None:
    """jawOpen driven by hello.wav rises where the voice is loud: the face visibly talks, not just moves."""
    from talkinghead.audio.features import _frame_db

    _, params = spoken
    seq = ParamSequence.load(params)
    jaw = seq.expression[:, seq.coefficient_names.index("jawOpen")]
    audio, sr = sf.read(str(HELLO), dtype="float32")
    level = _frame_db(audio, sr, seq.fps)[: len(jaw)]
    loud, quiet = level > np.percentile(level, 60), level <= np.percentile(level, 15)
    assert jaw.max() - jaw.min() > 0.2
    assert jaw[loud].mean() > jaw[quiet].mean() + 0.05
