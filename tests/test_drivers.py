"""speak / drive / animate from the command line: real renders, the plugin API, and every kind of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _synthetic import FRAME, build_tiny_avatar, synth_speech
from click.testing import CliRunner

from talkinghead.cli import cli
from talkinghead.media import VideoWriter, extract_audio, probe_video
from talkinghead.params import ParamSequence

ROOT = Path(__file__).resolve().parents[1]
KEYFRAMES = ROOT / "examples" / "keyframes.yaml"
torch.set_num_threads(1)  # see test_training.py


@pytest.fixture(scope="module")
def avatar(tmp_path_factory) -> Path:
    return build_tiny_avatar(tmp_path_factory.mktemp("drivers"), 64, audio_steps=30)


def run(*args: str):
    return CliRunner().invoke(cli, ["--quiet", *map(str, args)])


def assert_clean_failure(result, *fragments: str, output: Path | None = None) -> None:
    """One line starting with 'Error:', non-zero exit, no traceback, and no video left behind."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if output is not None:
        assert not output.exists()
        assert not [p for p in output.parent.iterdir() if p.name.startswith(f".{output.name}")]


# ------------------------------------------------------------------------------------------ speak
def test_speak_any_rate_and_channels_keeps_the_audio_and_its_length(avatar, tmp_path):
    speech, _ = synth_speech(2.0, seed=3, sr=44100)
    stereo = np.stack([speech, 0.5 * speech], axis=1)
    sf.write(tmp_path / "speech.wav", stereo, 44100)
    out = tmp_path / "said.mp4"
    result = run("speak", tmp_path / "speech.wav", "--avatar", avatar, "-o", out,
                 "--save-params", tmp_path / "said.npz")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].endswith("said.mp4")
    info = probe_video(out)
    assert abs(info.frames - 2.0 * info.fps) <= 1
    sound = extract_audio(out, 16000)
    assert sound is not None and abs(len(sound) / 16000 - 2.0) < 0.1
    params = ParamSequence.load(tmp_path / "said.npz")
    assert len(params) == info.frames and params.metadata["driver"] == "audio"


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("silent.wav", lambda p: sf.write(p, np.zeros(16000, np.float32), 16000), "silent"),
        ("empty.wav", lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "empty.wav"),
        ("corrupt.wav", lambda p: p.write_bytes(b"RIFF\x00\x01garbage" * 10), "corrupt.wav"),
        ("notes.txt", lambda p: p.write_text("hello, this is not sound\n"), "notes.txt"),
    ],
)
def test_speak_rejects_bad_audio(avatar, tmp_path, name, make, message):
    make(tmp_path / name)
    out = tmp_path / "out.mp4"
    assert_clean_failure(run("speak", tmp_path / name, "--avatar", avatar, "-o", out), message, output=out)


def test_speak_missing_file_and_missing_audio_model(avatar, tmp_path):
    out = tmp_path / "out.mp4"
    assert_clean_failure(run("speak", tmp_path / "nope.wav", "--avatar", avatar, "-o", out), "nope.wav", output=out)
    speech, _ = synth_speech(1.0, seed=1)
    sf.write(tmp_path / "s.wav", speech, 16000)
    result = run("speak", tmp_path / "s.wav", "--avatar", avatar, "-o", out, "--audio-features", "wav2vec2")
    assert_clean_failure(result, "no wav2vec2 audio model", "train-audio", output=out)


# ---------------------------------------------------------------------------------------- animate
def test_animate_example_keyframes(avatar, tmp_path):
    out = tmp_path / "anim.mp4"
    result = run("animate", KEYFRAMES, "--avatar", avatar, "-o", out, "--smooth", "savgol")
    assert result.exit_code == 0, result.output
    assert probe_video(out).frames > 25


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys:\n  - {time: 1.0}\n  - {time: 0.5}\n", "is not after key 0"),
        ("keys:\n  - {time: -1.0}\n", "must not be negative"),
        ("keys:\n  - {time: 0, expression: {jawOpn: 0.5}}\n", "did you mean 'jawOpen'"),
        ("keys:\n  - {time: 0, expression: {jawOpen: 3.0}}\n", "outside [0, 1]"),
        ("keys: [unclosed\n", "not valid YAML"),
    ],
)
def test_animate_rejects_bad_keyframes(avatar, tmp_path, text, message):
    (tmp_path / "keys.yaml").write_text(text)
    out = tmp_path / "out.mp4"
    assert_clean_failure(run("animate", tmp_path / "keys.yaml", "--avatar", avatar, "-o", out), message, output=out)


def test_unknown_driver_and_tracker_list_the_installed_ones(avatar, tmp_path):
    out = tmp_path / "out.mp4"
    result = run("animate", KEYFRAMES, "--driver", "nosuch", "--avatar", avatar, "-o", out)
    assert_clean_failure(result, "nosuch", "keyframes", "audio", output=out)
    result = run("drive", KEYFRAMES, "--tracker", "nosuch", "--avatar", avatar, "-o", out)
    assert_clean_failure(result, "nosuch", "mediapipe", output=out)


def _fake_distribution(root: Path, module: str, body: str, entry: str) -> None:
    """An installed package as pip leaves it: a module and a dist-info with its entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    dist = root / f"{module}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[talkinghead.drivers]\n{entry}\n")


def test_a_driver_that_raises_is_one_line(avatar, tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "crashy_driver", """
        class Crashy:
            name = "crashy"
            description = "always fails"

            def emit(self, source, context):
                return {"not": "params"}[source.name]
        """, "crashy = crashy_driver:Crashy")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out.mp4"
    result = run("animate", KEYFRAMES, "--driver", "crashy", "--avatar", avatar, "-o", out)
    assert_clean_failure(result, "crashy", "KeyError", output=out)


# ------------------------------------------------------------------------------------------ drive
def test_drive_with_a_faceless_video(avatar, tmp_path):
    rng = np.random.default_rng(0)
    with VideoWriter(tmp_path / "wall.mp4", 25, FRAME, quiet=True) as writer:
        for _ in range(15):
            writer.write(rng.integers(90, 110, (FRAME[1], FRAME[0], 3), dtype=np.uint8))
    out = tmp_path / "out.mp4"
    assert_clean_failure(run("drive", tmp_path / "wall.mp4", "--avatar", avatar, "-o", out), "face", output=out)


def test_drive_from_real_footage_keeps_its_sound(avatar, tmp_path):
    from conftest import shared_file

    from talkinghead.media import iter_frames

    source = shared_file("talk_woman_8s.mp4")
    clip = tmp_path / "driving.mp4"
    info = probe_video(source)
    sound = extract_audio(source, 16000)
    with VideoWriter(clip, info.fps, (info.width, info.height), audio=sound[: int(16000 * 30 / info.fps)], quiet=True) as writer:
        for frame in iter_frames(source, 0, 30):
            writer.write(frame)
    out = tmp_path / "driven.mp4"
    result = run("drive", clip, "--avatar", avatar, "-o", out, "--audio-from-driving",
                 "--save-params", tmp_path / "p.npz")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert probe_video(out).frames == 30 and extract_audio(out, 16000) is not None
    params = ParamSequence.load(tmp_path / "p.npz")
    jaw = params.expression[:, params.coefficient_names.index("jawOpen")]
    assert params.valid.all() and jaw.std() > 0.01  # the talking mouth is transferred, not a still face


# ------------------------------------------------------------------------------ third-party plugin
def test_installed_example_plugin_renders_through_animate(avatar, tmp_path):
    """pip-install examples/nod_driver into a folder and use it from a fresh interpreter."""
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(target), str(ROOT / "examples" / "nod_driver")]  # fmt: skip
    installed = subprocess.run(pip, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    env = dict(os.environ, PYTHONPATH=f"{target}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cmd = [sys.executable, "-m", "talkinghead", "--quiet"]
    listed = subprocess.run([*cmd, "plugins"], capture_output=True, text=True, env=env)
    assert "nod" in listed.stdout and "talkinghead-nod" in listed.stdout, listed.stdout
    (tmp_path / "beat.txt").write_text("1.2\n")
    out = tmp_path / "nod.mp4"
    done = subprocess.run([*cmd, "animate", str(tmp_path / "beat.txt"), "--driver", "nod", "-O", "bpm=120",
                           "--avatar", str(avatar), "-o", str(out), "--save-params", str(tmp_path / "nod.npz")],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert probe_video(out).frames == 30
    pitch = ParamSequence.load(tmp_path / "nod.npz").rotation[:, 0]
    assert pitch.max() - pitch.min() > 0.05  # it nods
    bad = subprocess.run([*cmd, "animate", str(KEYFRAMES), "--driver", "nod", "--avatar", str(avatar),
                          "-o", str(tmp_path / "bad.mp4")], capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode != 0 and "nod driver" in bad.stderr and "Traceback" not in bad.stderr
