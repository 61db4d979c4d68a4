"""The command line: help everywhere, one-line errors for bad input, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from talkinghead.cli import COMMANDS, cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result, *fragments: str):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("Error:"), result.output
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_help_and_version():
    result = run("--help")
    assert result.exit_code == 0 and "talking head" in result.output
    for name in COMMANDS:
        sub = run(name, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.output, name
    assert run("--version").output.startswith("talkinghead, version")


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "talkinghead", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "track" in out.stdout


def test_plugins_lists_builtin_tracker_with_distribution():
    result = run("plugins")
    assert result.exit_code == 0
    assert "mediapipe" in result.output and "talkinghead" in result.output


def test_broken_plugin_is_reported_not_fatal(tmp_path):
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[talkinghead.trackers]\nbroken = no_such_module_xyz:Tracker\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run([sys.executable, "-m", "talkinghead", "plugins"], capture_output=True, text=True, env=env)
    assert out.returncode == 0
    assert "broken" in out.stdout and "BROKEN" in out.stdout and "broken-plugin" in out.stdout
    assert "mediapipe" in out.stdout


def test_morphable_sheet(tmp_path):
    result = run("morphable", "--sheet", str(tmp_path / "sheet.png"))
    assert result.exit_code == 0 and (tmp_path / "sheet.png").is_file()


def test_track_missing_video(tmp_path):
    assert_one_line_error(run("track", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "p.npz")), "does not exist")


def test_track_empty_and_corrupt_and_text_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_one_line_error(run("track", str(empty), "-o", str(tmp_path / "p.npz")), "empty")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    assert_one_line_error(run("track", str(corrupt), "-o", str(tmp_path / "p.npz")), "corrupt.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("hello, I am not a video\n" * 20)
    assert_one_line_error(run("track", str(text), "-o", str(tmp_path / "p.npz")), "notes.txt")
    assert not (tmp_path / "p.npz").exists()


def test_track_video_without_face(tmp_path):
    from talkinghead.media import VideoWriter

    video = tmp_path / "noface.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(video, 25, (96, 64)) as writer:
        for _ in range(8):
            writer.write(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    assert_one_line_error(run("track", str(video), "-o", str(tmp_path / "p.npz")), "no face")
    assert not (tmp_path / "p.npz").exists()


def test_track_unwritable_output_and_unknown_tracker(tmp_path, talk_clip):
    assert_one_line_error(run("track", str(talk_clip), "-o", str(tmp_path / "no" / "dir" / "p.npz")), "does not exist")
    assert_one_line_error(run("track", str(talk_clip), "-o", str(tmp_path / "p.npz"), "--tracker", "dlib"),
                          "unknown tracker 'dlib'", "mediapipe")


def test_malformed_params_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("garbage")
    assert_one_line_error(run("morphable", "--params", str(bad)), "not a parameter file")


@pytest.mark.slow
def test_track_real_clip_with_preview(tmp_path, talk_clip):
    """End to end on real footage (first 2 s): params + preview video with the mesh."""
    from talkinghead import media
    from talkinghead.params import ParamSequence
    from talkinghead.tracking.pipeline import track_video

    preview = tmp_path / "preview.mp4"
    result = track_video(talk_clip, quiet=True, preview=preview, max_frames=50)
    result.params.save(tmp_path / "p.npz")
    seq = ParamSequence.load(tmp_path / "p.npz")
    assert len(seq) == 50 and seq.valid.all() and seq.identity.shape == (478, 3)
    assert seq.metadata["reprojection_error_iod"] < 0.02
    info = media.probe_video(preview)
    assert info.frames == 50 and info.has_audio
    # the overlay changed the face area, not the corners
    src = media.read_frames(talk_clip, max_frames=1)[0].astype(int)
    out = media.read_frames(preview, max_frames=1)[0].astype(int)
    x, y = result.landmarks[0, 1, :2].astype(int)
    assert np.abs(out[y - 40 : y + 40, x - 40 : x + 40] - src[y - 40 : y + 40, x - 40 : x + 40]).mean() > 5
    assert np.abs(out[:20, :20] - src[:20, :20]).mean() < 6


def test_track_cli_end_to_end(tmp_path, talk_clip):
    out = subprocess.run(
        [sys.executable, "-m", "talkinghead", "--quiet", "track", str(talk_clip), "-o", str(tmp_path / "p.npz")],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(tmp_path / "p.npz")
    assert Path(tmp_path / "p.npz").is_file()
