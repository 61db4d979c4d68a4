"""The avatar bundle: save/load, rejection of foreign or corrupt folders, rendering, end to end."""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _synthetic import FRAME, build_tiny_avatar, synthetic_frames, synthetic_params

from talkinghead.avatar import Avatar
from talkinghead.errors import TalkingHeadError
from talkinghead.media import VideoWriter, probe_video
from talkinghead.morphable.model import MorphableModel

RES = 64
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
torch.set_num_threads(1)  # see test_training.py


@pytest.fixture(scope="module")
def avatar_dir(tmp_path_factory) -> Path:
    return build_tiny_avatar(tmp_path_factory.mktemp("avatar"), RES)


def test_round_trip_renders_identically(avatar_dir, tmp_path):
    a = Avatar.load(avatar_dir)
    assert a.resolution == RES and a.names == MorphableModel.default().names
    assert {p.name for p in avatar_dir.iterdir()} >= {
        "config.json", "generator", "segmenter", "morphable.safetensors", "training_params.npz",
        "background.mp4", "replay.mp4", "motion.json",
    }  # fmt: skip
    a.save(tmp_path / "copy")
    b = Avatar.load(tmp_path / "copy")
    seq = a.training_params.slice(50, 60)
    boxes = a.boxes_for(seq)
    first = [rgb for rgb, _ in a.generate(seq, boxes)]
    second = [rgb for rgb, _ in b.generate(seq, boxes)]
    assert all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))
    assert not list(tmp_path.glob(".copy.tmp-*"))  # no temporary folders left


def test_render_writes_the_right_number_of_frames(avatar_dir, tmp_path):
    a = Avatar.load(avatar_dir)
    seq = a.training_params.slice(0, 37)  # longer than the background loop's forward pass
    audio = np.zeros(16000 * 2, np.float32)
    out = a.render(seq, tmp_path / "out.mp4", audio=audio, quiet=True)
    info = probe_video(out)
    assert info.frames == 37 and (info.width, info.height) == FRAME and info.has_audio


def test_offline_render_fine_tunes_a_copy(avatar_dir, tmp_path):
    a = Avatar.load(avatar_dir)
    seq = a.training_params.slice(50, 60)
    before = {k: v.clone() for k, v in a.generator.state_dict().items()}
    tuned = a.finetuned(seq, a.boxes_for(seq), steps=2, quiet=True)
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())
    assert all(torch.equal(before[k], v) for k, v in a.generator.state_dict().items())  # avatar untouched
    out = a.render(seq, tmp_path / "off.mp4", quiet=True, offline=True, finetune_steps=1)
    assert probe_video(out).frames == 10


def test_rejects_foreign_wrong_version_and_corrupt(avatar_dir, tmp_path):
    with pytest.raises(TalkingHeadError, match="does not exist"):
        Avatar.load(tmp_path / "missing")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "config.json").write_text(json.dumps({"format": "something.else"}))
    with pytest.raises(TalkingHeadError, match="not a talkinghead avatar"):
        Avatar.load(tmp_path / "foreign")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TalkingHeadError, match="no config.json"):
        Avatar.load(tmp_path / "empty")
    newer = tmp_path / "newer"
    shutil.copytree(avatar_dir, newer)
    info = json.loads((newer / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(TalkingHeadError, match="version 99"):
        Avatar.load(newer)
    broken = tmp_path / "broken"
    shutil.copytree(avatar_dir, broken)
    (broken / "morphable.safetensors").write_bytes(b"garbage")
    with pytest.raises(TalkingHeadError, match="corrupt"):
        Avatar.load(broken)


def test_rejects_params_of_another_model(avatar_dir, tmp_path):
    a = Avatar.load(avatar_dir)
    seq = a.training_params.slice(0, 5)
    with pytest.raises(TalkingHeadError, match="model"):
        a.render(replace(seq, model_id="flame/2020"), tmp_path / "x.mp4", quiet=True)
    renamed = replace(seq, coefficient_names=("notAName",) + seq.coefficient_names[1:])
    with pytest.raises(TalkingHeadError, match="coefficient names"):
        a.render(renamed, tmp_path / "x.mp4", quiet=True)
    assert not (tmp_path / "x.mp4").exists()


def test_disk_full_while_saving_leaves_nothing(avatar_dir, tmp_path, monkeypatch):
    a = Avatar.load(avatar_dir)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("talkinghead.avatar.save_file", full)
    with pytest.raises(TalkingHeadError, match="disk full"):
        a.save(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_evaluate_writes_a_report(avatar_dir, tmp_path):
    from talkinghead.evaluation import evaluate

    model = MorphableModel.default()
    seq = Avatar.load(avatar_dir).training_params

    def landmarks(frames):  # stands in for MediaPipe: the true mesh for real frames, shifted otherwise
        verts = model.vertices(
            seq.expression[50:60], seq.rotation[50:60], seq.translation[50:60], seq.scale[50:60]
        )
        pts = verts.numpy()
        return pts if frames is landmarks.real else pts + 1.0

    def track(frames):
        if not hasattr(landmarks, "real"):
            landmarks.real = frames
        return landmarks(frames)

    metrics = evaluate(avatar_dir, tmp_path / "report", quiet=True, landmarks=track)
    ours, nn = metrics["scores"]["ours"], metrics["scores"]["nn"]
    assert metrics["frames"] == [50, 60]
    assert np.isfinite(ours["psnr_face"]) and 0 < ours["ssim_face"] <= 1
    assert nn["psnr_face"] > 15  # the synthetic face repeats itself: its nearest neighbour is close
    assert ours["lmd"] > 0 and ours["tracked"] == 10
    for name in ("report.md", "metrics.json", "side_by_side.png", "comparison.mp4"):
        assert (tmp_path / "report" / name).is_file(), name
    assert "nearest-neighbour" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.slow
def test_train_render_speak_end_to_end(tmp_path):
    """`train` on ~2.6 s of real footage with its sound, then render and speak: the whole user path."""
    video = DATA / "talk_woman_8s.mp4"
    if not video.is_file():
        pytest.skip(f"real footage {video} is absent")
    pytest.importorskip("mediapipe")
    from talkinghead.media import extract_audio, iter_frames
    from talkinghead.params import ParamSequence

    clip = tmp_path / "clip.mp4"
    sound = extract_audio(video, 16000)
    with VideoWriter(clip, 25, (512, 512), audio=sound[: 16000 * 66 // 25], quiet=True) as writer:
        for frame in iter_frames(video, 0, 66):
            writer.write(frame)
    result = _cli("train", str(clip), "-o", str(tmp_path / "me"), "--resolution", "128", "--steps", "3",
                  "--stage2-steps", "2", "--batch-size", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    avatar = Avatar.load(tmp_path / "me")
    assert avatar.info["training"]["holdout"] == [53, 66]
    assert (tmp_path / "me" / "audio" / "model.safetensors").is_file()  # `train` also learnt the voice
    seq = ParamSequence.load(tmp_path / "me.training" / "track.npz").slice(53, 66)
    out = avatar.render(seq, tmp_path / "me.mp4", quiet=True)
    assert probe_video(out).frames == 13
    spoken = _cli("speak", str(clip), "--avatar", str(tmp_path / "me"), "-o", str(tmp_path / "said.mp4"))
    assert spoken.exit_code == 0, spoken.output
    assert abs(probe_video(tmp_path / "said.mp4").frames - 66) <= 1


# ------------------------------------------------------------------------------------------------- CLI
def _cli(*args: str):
    from click.testing import CliRunner

    from talkinghead.cli import cli

    return CliRunner().invoke(cli, ["--quiet", *args])


def test_cli_train_refuses_a_short_video(tmp_path):
    model = MorphableModel.default()
    frames = synthetic_frames(model, synthetic_params(model, 20))
    with VideoWriter(tmp_path / "short.mp4", 25, FRAME, quiet=True) as writer:
        for frame in frames:
            writer.write(frame)
    result = _cli("train", str(tmp_path / "short.mp4"), "--out", str(tmp_path / "a"), "--resolution", "128")
    assert result.exit_code == 1
    assert "too short" in result.output and "at least 63 frames" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "a").exists()


def test_cli_render_and_its_errors(avatar_dir, tmp_path):
    seq = Avatar.load(avatar_dir).training_params.slice(0, 6)
    seq.save(tmp_path / "p.npz")
    ok = _cli("render", str(tmp_path / "p.npz"), "--avatar", str(avatar_dir), "-o", str(tmp_path / "o.mp4"))
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().endswith("o.mp4") and probe_video(tmp_path / "o.mp4").frames == 6
    replace(seq, model_id="flame/2020").save(tmp_path / "other.npz")
    bad = _cli(
        "render", str(tmp_path / "other.npz"), "--avatar", str(avatar_dir), "-o", str(tmp_path / "x.mp4")
    )
    assert bad.exit_code == 1 and "flame/2020" in bad.output and "Traceback" not in bad.output
    foreign = _cli(
        "render", str(tmp_path / "p.npz"), "--avatar", str(tmp_path), "-o", str(tmp_path / "x.mp4")
    )
    assert foreign.exit_code == 1 and "not an avatar" in foreign.output
    assert not (tmp_path / "x.mp4").exists()
