"""Crop boxes, losses, stage-2 sampling and pseudo targets, the training loop and its checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _synthetic import synthetic_frames, synthetic_params

from talkinghead.errors import TalkingHeadError
from talkinghead.generator.conditioning import Conditioner
from talkinghead.generator.network import Generator, GeneratorConfig
from talkinghead.morphable.model import MorphableModel
from talkinghead.training.checkpoint import load_checkpoint
from talkinghead.training.crop import compute_boxes, crop_image, feather_mask, paste_crop
from talkinghead.training.dataset import VideoData, crop_boxes_for, load_video_data
from talkinghead.training.loop import TrainConfig, Trainer
from talkinghead.training.losses import LossConfig, region_weights, ssim_map, velocity_loss
from talkinghead.training.stage2 import AuxConfig, AuxSampler, pseudo_targets

RES = 64
# one thread: on a shared 2-core machine OpenMP's spinning threads slow small ops down 10x
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return MorphableModel.default()


@pytest.fixture(scope="module")
def data(model) -> VideoData:
    params = synthetic_params(model, 60)
    frames = synthetic_frames(model, params)
    boxes, fixed = crop_boxes_for(params, model)
    assert fixed
    return load_video_data(iter(frames), params, boxes, RES, len(frames))


def _generator(cond: Conditioner) -> Generator:
    return Generator(GeneratorConfig(resolution=RES, param_dim=cond.param_dim, hidden=32, texture_coarse=16))


# ------------------------------------------------------------------------------------------------ crop
def test_boxes_fixed_for_still_head_and_follow_a_moving_one():
    still = np.random.default_rng(0).normal(0, 1, (100, 20, 2)) + np.array([200, 220])
    still += np.random.default_rng(1).uniform(-40, 40, (1, 20, 2))
    boxes, fixed = compute_boxes(still, (640, 480), 25)
    assert fixed and (boxes == boxes[0]).all()
    assert 140 < boxes[0, 2] < 165  # 1.9 x the ~80 px extent
    moving = still + np.linspace(0, 200, 100)[:, None, None] * np.array([1, 0])
    boxes, fixed = compute_boxes(moving, (640, 480), 25)
    assert not fixed and boxes[-1, 0] - boxes[0, 0] > 150
    assert (boxes[:, 2] == boxes[0, 2]).all()  # one size for the whole video
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 640).all()


def test_paste_crop_feathers_into_the_frame():
    frame = np.full((100, 120, 3), 50, np.uint8)
    box = np.array([10, 20, 60])
    white = np.ones((32, 32, 3), np.float32)
    out = paste_crop(frame, white, np.ones((32, 32), np.float32), box)
    assert out[50, 40, 0] == 255  # centre of the box: the generated pixel
    assert out[20, 10, 0] < 80  # box corner: still the frame (feathered)
    assert (out[:, :10] == 50).all() and (out[:, 70:] == 50).all()  # outside the box untouched
    transparent = paste_crop(frame, white, np.zeros((32, 32), np.float32), box)
    assert (transparent == frame).all()
    m = feather_mask(60, 0.08)
    assert m[30, 30] == 1 and m[0, 0] < 0.05
    crop = crop_image(out, box, 32)
    assert crop.shape == (32, 32, 3) and crop[16, 16, 0] == 255


# ---------------------------------------------------------------------------------------------- losses
def test_losses_behave():
    a = torch.rand(4, 3, 32, 32)
    assert torch.allclose(ssim_map(a, a), torch.ones_like(a), atol=1e-4)
    assert ssim_map(a, torch.rand_like(a)).mean() < 0.3
    # velocity: a constant offset between prediction and target has zero velocity error
    assert velocity_loss(a + 0.1, a) < 1e-6
    b = a.clone()
    b[1::2] += 0.2
    assert velocity_loss(b, a) > 0.1


def test_region_weights_emphasise_the_mouth(model, data):
    cond = Conditioner(model, RES)
    batch = cond.frames(data.params, np.array([0, 1]), data.boxes[:2])
    w = region_weights(batch.guide, LossConfig())
    lips = batch.guide[:, 3 + 1] > 0.5
    assert w[:, 0][lips].min() >= 4.0 and w.min() == 1.0


# ------------------------------------------------------------------------------------------- stage 2
def test_aux_sampler_goes_beyond_the_video(model, data):
    sampler = AuxSampler(data.params, AuxConfig())
    rng = np.random.default_rng(0)
    seqs = [sampler.sample(rng) for _ in range(40)]
    expr = np.concatenate([s.expression for s, _ in seqs])
    rot = np.concatenate([s.rotation for s, _ in seqs])
    assert expr.min() >= 0 and expr.max() <= 1
    real_max = data.params.expression.max(0)
    beyond = (expr > real_max + 0.05).any(0)
    assert beyond.sum() > 10  # coefficients the video never used get exercised
    assert np.abs(rot[:, 0]).max() > np.abs(data.params.rotation[:, 0]).max() + 0.02  # new poses
    seq, anchor = seqs[0]
    assert len(seq) == AuxConfig().seq_len and 0 <= anchor < len(data)
    assert np.abs(np.diff(seq.expression, axis=0)).max() < 0.5  # smooth, not per-frame noise


def test_pseudo_target_of_own_geometry_is_the_frame(model, data):
    cond = Conditioner(model, RES)
    idx = np.array([5, 20])
    batch = cond.frames(data.params, idx, data.boxes[idx], keep_rasters=True)
    images = data.images(idx)
    warped, weight = pseudo_targets(cond.rasterizer, batch.rasters, batch.vertices, images, AuxConfig())
    m = weight[:, 0] > 0
    assert m.float().mean() > 0.1  # most of the face is visible
    err = (warped - images).abs().mean(1)[m]
    assert float(err.mean()) < 0.03
    # and warping frame 5 onto frame 20's geometry moves pixels (a different image)
    w2, _ = pseudo_targets(cond.rasterizer, batch.rasters[1:], batch.vertices[:1], images[:1], AuxConfig())
    assert (w2[0] - images[0]).abs().mean() > 1e-3


# ---------------------------------------------------------------------------------------------- loop
def test_training_reduces_the_loss(model, data, tmp_path):
    torch.manual_seed(0)
    cond = Conditioner(model, RES)
    config = TrainConfig(
        stage1_steps=30, stage2_steps=4, batch_size=4, preview_every=30, checkpoint_every=100
    )
    trainer = Trainer(data, cond, _generator(cond), config=config, work_dir=tmp_path, quiet=True)
    history = trainer.run()
    first = np.mean([h["l1"] for h in history[:3]])
    last = np.mean([h["l1"] for h in history[27:30]])
    assert last < 0.7 * first, (first, last)
    assert "pseudo" in history[-1] and "geo" in history[-1]
    assert (tmp_path / "previews" / "step000030.png").is_file()
    assert (tmp_path / "loss.png").is_file()
    assert (tmp_path / "checkpoints" / "checkpoint.json").is_file()


def test_resume_continues_exactly(model, data, tmp_path):
    cond = Conditioner(model, RES)
    config = TrainConfig(stage1_steps=4, stage2_steps=2, batch_size=4, preview_every=1000, checkpoint_every=3)

    def trainer(work) -> Trainer:
        torch.manual_seed(1)
        return Trainer(data, cond, _generator(cond), config=config, work_dir=work, quiet=True, seed=3)

    straight = trainer(tmp_path / "a")
    straight.run()
    first = trainer(tmp_path / "b")
    # run only to step 3 (a checkpoint), as if killed right after it
    while first.step < 3:
        first.train_step()
    first.save()
    resumed = trainer(tmp_path / "b")
    assert resumed.resume() and resumed.step == 3
    resumed.run()
    assert resumed.step == straight.step == 6
    for (name, p), q in zip(straight.generator.state_dict().items(), resumed.generator.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.allclose(p, q, atol=1e-6), name
    index = json.loads((tmp_path / "b" / "checkpoints" / "checkpoint.json").read_text())
    assert index["step"] == 6 and len(list((tmp_path / "b" / "checkpoints").glob("*.safetensors"))) == 1


def test_corrupt_checkpoint_is_a_clear_error(model, data, tmp_path):
    (tmp_path / "checkpoint.json").write_text("{not json")
    cond = Conditioner(model, RES)
    gen = _generator(cond)
    with pytest.raises(TalkingHeadError, match="cannot resume"):
        load_checkpoint(tmp_path, {"generator": gen}, {})


def test_too_few_frames_is_a_clear_error(model):
    params = synthetic_params(model, 20)
    with pytest.raises(TalkingHeadError, match="at least 50"):
        load_video_data(iter([]), params, np.zeros((20, 3), np.int64), RES, 20)
