"""Video in, avatar out: track, crop, train both stages, bundle.

Intermediate results live in a work folder beside the avatar (``<avatar>.training/``): the tracked
parameters (so a resumed run does not track again), checkpoints, preview images and the loss plot.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.params import ParamSequence
from talkinghead.training.dataset import MIN_FRAMES
from talkinghead.training.loop import TrainConfig


@dataclass
class TrainOptions:
    resolution: int = 256
    holdout: float = 0.2  # the last 20 % stays unseen, for `talkinghead evaluate`
    tracker: str = "mediapipe"
    resume: bool = False
    device: str = "cpu"
    seed: int = 0
    quiet: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)


def work_dir_for(out: Path) -> Path:
    return out.parent / f"{out.name}.training"


def _video_key(video: Path) -> dict:
    st = video.stat()
    return {"video": str(video.resolve()), "video_bytes": st.st_size, "video_mtime": int(st.st_mtime)}


def track_cached(video: Path, work: Path, tracker: str, quiet: bool):
    """Tracked parameters of ``video`` and the subject's fitted (personalised) model.

    Reused from the work folder when the video is unchanged, so ``--resume`` does not track again.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    from talkinghead.atomic import atomic_path
    from talkinghead.morphable.model import MorphableModel

    cache, cache_model = work / "track.npz", work / "track_model.safetensors"
    key = _video_key(video)
    if cache.is_file() and cache_model.is_file():
        try:
            seq = ParamSequence.load(cache)
            if all(seq.metadata.get(k) == v for k, v in key.items()):
                tensors = load_file(str(cache_model))
                model = MorphableModel.from_state_dict(tensors, seq.coefficient_names)
                if not quiet:
                    print(f"reusing tracked parameters from {cache}", flush=True)
                return seq, model
        except (TalkingHeadError, SafetensorError, OSError, KeyError):
            pass
    from talkinghead.tracking.pipeline import track_video

    result = track_video(video, tracker=tracker, quiet=quiet)
    seq = replace(result.params, metadata={**result.params.metadata, **key})
    model = result.model
    with atomic_path(cache_model) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    seq.save(cache)  # last: its presence marks a complete cache
    return seq, model


def check_length(video: Path, holdout: float) -> int:
    """Frames in ``video``; a clear error if too few remain for training after the hold-out."""
    from talkinghead.media import probe_video

    info = probe_video(video)
    if not 0 <= holdout < 0.9:
        raise TalkingHeadError(f"--holdout must be in [0, 0.9), got {holdout}")
    needed = int(np.ceil(MIN_FRAMES / (1 - holdout)))
    if info.frames < needed:
        raise TalkingHeadError(
            f"{video} is too short: {info.frames} frames ({info.duration:.1f} s); training needs at least "
            f"{needed} frames (about {needed / info.fps:.1f} s at {info.fps:g} fps) "
            f"with --holdout {holdout:g}"
        )
    return info.frames


def train_avatar(video: str | os.PathLike, out: str | os.PathLike, options: TrainOptions) -> Path:
    """Train an avatar from ``video`` and save it to ``out``; returns ``out``."""
    import torch

    from talkinghead.audio.motion import MotionStats
    from talkinghead.avatar import AVATAR, Avatar, avatar_info, write_background, write_replay
    from talkinghead.generator.conditioning import Conditioner
    from talkinghead.generator.network import Generator, GeneratorConfig
    from talkinghead.media import iter_frames
    from talkinghead.training.dataset import crop_boxes_for, load_video_data
    from talkinghead.training.loop import Trainer

    video, out = Path(video), Path(out)
    GeneratorConfig(resolution=options.resolution)  # unsupported resolutions fail before any work
    if not video.is_file():
        raise TalkingHeadError(f"video {video} does not exist")
    if out.exists() and not (out / "config.json").is_file() and any(out.iterdir()):
        raise TalkingHeadError(f"{out} exists and is not an avatar; choose another --out")
    check_length(video, options.holdout)
    work = work_dir_for(out)
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()

    seq, model = track_cached(video, work, options.tracker, options.quiet)
    total = len(seq)
    n_train = total - int(round(total * options.holdout))
    boxes, fixed = crop_boxes_for(seq, model)
    data = load_video_data(iter_frames(video), seq, boxes, options.resolution, n_train, options.quiet)

    device = torch.device(options.device)
    conditioner = Conditioner(model, options.resolution)
    generator = Generator(GeneratorConfig(resolution=options.resolution, param_dim=conditioner.param_dim))
    trainer = Trainer(data, conditioner, generator, config=options.train, work_dir=work, device=device,
                      seed=options.seed, quiet=options.quiet)  # fmt: skip
    trainer.run(resume=options.resume)

    # ---- bundle
    w, h = seq.frame_size
    scale = min(1.0, AVATAR.background_max_side / max(w, h))
    max_bg = max(2, min(n_train, int(AVATAR.background_max_s * seq.fps)))
    used = write_background(iter_frames(video, 0, n_train), work / "background.mp4", seq.fps, scale, max_bg,
                            options.quiet)  # fmt: skip
    valid = np.nonzero(seq.valid[:n_train])[0]
    valid = valid if len(valid) else np.arange(n_train)
    replay = valid[np.linspace(0, len(valid) - 1, min(AVATAR.replay_frames, len(valid))).astype(int)]
    write_replay(data.crops[replay], work / "replay.mp4", seq.fps)
    motion = MotionStats.from_params(seq.slice(0, n_train)).to_dict()
    info = avatar_info(
        model=model, resolution=options.resolution, fps=seq.fps, frame_size=seq.frame_size,
        crop_size=int(boxes[0, 2]), fixed_box=boxes[0] if fixed else None,
        background={"file": "background.mp4", "frames": used, "scale": scale,
                    "size": [round(w * scale), round(h * scale)]},
        replay_frames=replay.tolist(),
        training={
            "video": str(video.resolve()), "frames": total, "train_frames": n_train,
            "holdout": [n_train, total], "stage1_steps": options.train.stage1_steps,
            "stage2_steps": options.train.stage2_steps, "batch_size": options.train.batch_size,
            "steps_done": trainer.step, "seconds": round(time.time() - started, 1), "seed": options.seed,
            "final_loss": trainer.history[-1].get("loss") if trainer.history else None,
        },
    )  # fmt: skip
    params = replace(seq, metadata={**seq.metadata, "crop_boxes": boxes.tolist()})
    avatar = Avatar(info, model, generator.cpu(), params, trainer.segmenter.cpu(), motion,
                    files={"background": work / "background.mp4", "replay": work / "replay.mp4"})  # fmt: skip
    return avatar.save(out)
