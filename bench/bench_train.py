"""Training speed and peak memory: seconds per step of stage 1 and stage 2 on the synthetic face.

    python -m bench.bench_train --resolution 128 --batch-size 8 --steps 10 [--threads 2] [--device cuda]

The synthetic face stands in for a tracked video; the cost of a step does not depend on the content.
Peak memory is the process's peak resident set (CPU) or peak allocated tensor memory (CUDA), so run
one resolution per process (``python -m bench`` does) for a clean figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def measure(resolution: int, batch_size: int = 8, steps: int = 10, device: str = "cpu") -> dict:
    """Seconds per step of each stage and the peak memory of a training run at ``resolution``."""
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
    data = load_video_data(iter(frames), params, boxes, resolution, len(frames))
    cond = Conditioner(model, resolution)
    gen = Generator(GeneratorConfig(resolution=resolution, param_dim=cond.param_dim))
    config = TrainConfig(stage1_steps=steps + 1, stage2_steps=steps + 1, batch_size=batch_size)
    trainer = Trainer(data, cond, gen, config=config, quiet=True, device=torch.device(device))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    trainer.train_step()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    sync()
    t1 = time.perf_counter()
    while trainer.step <= config.stage1_steps:
        trainer.train_step()
    sync()
    t2 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    sync()
    t3 = time.perf_counter()
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "resolution": resolution, "batch_size": batch_size, "device": device,
        "threads": torch.get_num_threads(), "stage1_s_per_step": (t1 - t0) / steps,
        "stage2_s_per_step": (t3 - t2) / steps, "peak_memory_mb": peak,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true", help="print one JSON line (for python -m bench)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = measure(args.resolution, args.batch_size, args.steps, args.device)
    if args.json:
        print(json.dumps(r))
        return
    print(f"resolution {r['resolution']}, batch {r['batch_size']}, {r['threads']} threads on {r['device']}")
    print(f"  stage 1: {r['stage1_s_per_step']:.3f} s/step")
    print(f"  stage 2: {r['stage2_s_per_step']:.3f} s/step")
    print(f"  peak memory: {r['peak_memory_mb']:.0f} MB")


if __name__ == "__main__":
    main()
