"""Training speed: seconds per step of stage 1 and stage 2 on the synthetic face.

    python bench/bench_train.py --resolution 128 --batch-size 8 --steps 10 [--threads 2]

The synthetic face stands in for a tracked video; the cost of a step does not depend on the content.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from _synthetic import synthetic_frames, synthetic_params

    from talkinghead.generator.conditioning import Conditioner
    from talkinghead.generator.network import Generator, GeneratorConfig
    from talkinghead.morphable.model import MorphableModel
    from talkinghead.training.dataset import crop_boxes_for, load_video_data
    from talkinghead.training.loop import TrainConfig, Trainer

    model = MorphableModel.default()
    params = synthetic_params(model, 60)
    frames = synthetic_frames(model, params)
    boxes, _ = crop_boxes_for(params, model)
    data = load_video_data(iter(frames), params, boxes, args.resolution, len(frames))
    cond = Conditioner(model, args.resolution)
    gen = Generator(GeneratorConfig(resolution=args.resolution, param_dim=cond.param_dim))
    n = args.steps
    config = TrainConfig(stage1_steps=n + 1, stage2_steps=n + 1, batch_size=args.batch_size)
    trainer = Trainer(data, cond, gen, config=config, quiet=True)
    trainer.train_step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(n):
        trainer.train_step()
    t1 = time.perf_counter()
    while trainer.step <= config.stage1_steps:
        trainer.train_step()
    t2 = time.perf_counter()
    for _ in range(n):
        trainer.train_step()
    t3 = time.perf_counter()
    print(f"resolution {args.resolution}, batch {args.batch_size}, {args.threads} threads")
    print(f"  stage 1: {(t1 - t0) / n:.3f} s/step")
    print(f"  stage 2: {(t3 - t2) / n:.3f} s/step")


if __name__ == "__main__":
    main()
