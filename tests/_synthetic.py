"""A synthetic 'person' for generator and training tests: the default face mesh painted with its own
canonical coordinates (a smooth colour field), a dark mouth interior, on a plain background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.audio.motion import MotionStats
from talkinghead.generator.guide import MASK_NAMES, GuideRasterizer, MeshTopology
from talkinghead.morphable.model import MODEL_ID, MorphableModel
from talkinghead.morphable.names import ARKIT_NAMES
from talkinghead.params import ParamSequence

FRAME = (160, 160)  # (W, H) of the synthetic video


def synthetic_params(model: MorphableModel, frames: int = 60, fps: float = 25.0) -> ParamSequence:
    t = np.arange(frames)
    expr = np.zeros((frames, len(model.names)), np.float32)
    expr[:, model.index("jawOpen")] = 0.35 + 0.35 * np.sin(t / 3.0)
    expr[:, model.index("eyeBlinkLeft")] = (np.sin(t / 5.0) > 0.9) * 0.9
    rot = np.zeros((frames, 3), np.float32)
    rot[:, 1] = 0.08 * np.sin(t / 8.0)
    trans = np.tile(np.array([[80.0, 84.0, 0.0]], np.float32), (frames, 1))
    return ParamSequence(
        fps=fps, model_id=MODEL_ID, coefficient_names=model.names, expression=expr, rotation=rot,
        translation=trans, scale=np.full(frames, 22.0, np.float32), valid=np.ones(frames, bool),
        frame_size=FRAME,
        identity=model.neutral.numpy(),
    )  # fmt: skip


def synthetic_frames(model: MorphableModel, params: ParamSequence) -> np.ndarray:
    """Full frames ``[T,H,W,3]`` uint8 of the painted face for ``params``."""
    rast = GuideRasterizer(MeshTopology.from_model(model))
    w, h = FRAME
    verts = model.vertices(params.expression, params.rotation, params.translation, params.scale).numpy()
    size = max(w, h)
    frames = np.empty((len(params), h, w, 3), np.uint8)
    for i, v in enumerate(verts):
        g = rast.guide(v, size)
        img = np.empty((size, size, 3), np.float32)
        img[:] = (0.55, 0.6, 0.7)
        img[:, :, 2] -= np.linspace(0, 0.3, size)[:, None]  # a gradient background
        face = g[3] > 0.5
        img[face] = g[0:3, face].T * 0.3 + 0.6
        img[g[3 + MASK_NAMES.index("lips")] > 0.5] = (0.75, 0.25, 0.3)
        img[g[3 + MASK_NAMES.index("mouth_inner")] > 0.5] = (0.15, 0.05, 0.05)
        frames[i] = (img[:h, :w] * 255).clip(0, 255).astype(np.uint8)
    return frames


# ------------------------------------------------------------------------------ speech
def synth_speech(seconds: float, seed: int, sr: int = 16000, fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Voiced 'syllables' (a harmonic buzz under a bumpy envelope, with pauses) and that envelope per frame.

    The envelope is what a jaw does while talking: it opens for each loud syllable and closes in pauses.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    frames = int(round(n / sr * fps))
    env = np.zeros(frames)
    t = 0.2
    while t < seconds - 0.3:
        if rng.random() < 0.15:
            t += rng.uniform(0.4, 1.0)
            continue
        dur, amp = rng.uniform(0.15, 0.35), rng.uniform(0.3, 1.0)
        a, b = int(t * fps), int((t + dur) * fps)
        if b - a >= 2:
            env[a:b] = np.maximum(env[a:b], amp * np.hanning(b - a + 2)[1:-1])
        t += dur + rng.uniform(0.02, 0.12)
    ts = np.arange(n) / sr
    env_s = np.interp(ts, (np.arange(frames) + 0.5) / fps, env)
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.3 * ts)) / sr
    carrier = sum(np.sin(k * phase) / k for k in range(1, 25)) + 0.3 * rng.normal(size=n)
    audio = 0.2 * env_s * carrier + 1e-4 * rng.normal(size=n)
    return audio.astype(np.float32), env.astype(np.float32)


def expressions_for(env: np.ndarray) -> np.ndarray:
    """ARKit expressions: jaw follows the envelope, lips close between syllables, a slight smile."""
    expr = np.zeros((len(env), len(ARKIT_NAMES)), np.float32)
    expr[:, ARKIT_NAMES.index("jawOpen")] = 0.7 * env
    expr[:, ARKIT_NAMES.index("mouthClose")] = 0.2 * (1 - env)
    expr[:, ARKIT_NAMES.index("mouthSmileLeft")] = 0.1
    expr[:, ARKIT_NAMES.index("eyeBlinkLeft")] = 0.3  # not a mouth coefficient: must be ignored
    return expr


# ------------------------------------------------------------------------------ avatar
def build_tiny_avatar(work: Path, resolution: int = 64, audio_steps: int = 0) -> Path:
    """A tiny avatar trained for a few steps on the synthetic face and saved to ``work/bundle``.

    With ``audio_steps`` it also gets a (barely trained) speech model, so `speak` runs end to end.
    """
    from dataclasses import replace

    from talkinghead.avatar import Avatar, avatar_info, write_background, write_replay
    from talkinghead.generator.conditioning import Conditioner
    from talkinghead.generator.network import Generator, GeneratorConfig
    from talkinghead.media import VideoWriter
    from talkinghead.training.dataset import crop_boxes_for, load_video_data
    from talkinghead.training.loop import TrainConfig, Trainer

    model = MorphableModel.default()
    params = synthetic_params(model, 60)
    frames = synthetic_frames(model, params)
    boxes, fixed = crop_boxes_for(params, model)
    data = load_video_data(iter(frames), params, boxes, resolution, 50)
    cond = Conditioner(model, resolution)
    gen = Generator(GeneratorConfig(resolution=resolution, param_dim=cond.param_dim, hidden=16, texture_coarse=8))
    trainer = Trainer(data, cond, gen, config=TrainConfig(stage1_steps=4, stage2_steps=2, batch_size=4), quiet=True)
    trainer.run()
    used = write_background(iter(frames[:50]), work / "background.mp4", params.fps, 1.0, 20)
    with VideoWriter(work / "source.mp4", params.fps, FRAME, quiet=True) as writer:
        for frame in frames:
            writer.write(frame)
    write_replay(data.crops[::5], work / "replay.mp4", params.fps)
    info = avatar_info(
        model=model, resolution=resolution, fps=params.fps, frame_size=FRAME, crop_size=int(boxes[0, 2]),
        fixed_box=boxes[0] if fixed else None,
        background={"file": "background.mp4", "frames": used, "scale": 1.0, "size": list(FRAME)},
        replay_frames=list(range(0, 50, 5)),
        training={"video": str(work / "source.mp4"), "holdout": [50, 60], "frames": 60},
    )  # fmt: skip
    full = replace(params, metadata={"crop_boxes": boxes.tolist()})
    motion = MotionStats.from_params(params).to_dict()
    avatar = Avatar(info, model, gen, full, trainer.segmenter, motion,
                    files={"background": work / "background.mp4", "replay": work / "replay.mp4"})  # fmt: skip
    out = avatar.save(work / "bundle")
    if audio_steps:
        from talkinghead.audio.train import train_audio_model

        audio, env = synth_speech(8.0, seed=0)
        voice, _ = train_audio_model(audio, 16000, expressions_for(env), ARKIT_NAMES, params.fps,
                                     steps=audio_steps, quiet=True, seed=0)  # fmt: skip
        Avatar.add_component(out, "audio", voice.save_pretrained)
    return out
