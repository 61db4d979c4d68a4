"""Online rendering speed: guide rasterization, generator, compositing and encoding, per frame.

    python bench/bench_render.py --resolution 256 --frames 64 [--threads 2] [--frame-size 512]

Uses the generic face and a randomly initialised generator (speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--frame-size", type=int, default=512, help="output video side (background frames)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from talkinghead.generator.conditioning import Conditioner
    from talkinghead.generator.network import Generator, GeneratorConfig
    from talkinghead.media import VideoWriter
    from talkinghead.morphable.model import MODEL_ID, MorphableModel
    from talkinghead.params import ParamSequence
    from talkinghead.training.crop import paste_crop
    from talkinghead.training.dataset import crop_boxes_for

    model = MorphableModel.default()
    n, side = args.frames, args.frame_size
    t = np.arange(n)
    expr = np.zeros((n, len(model.names)), np.float32)
    expr[:, model.index("jawOpen")] = 0.4 + 0.4 * np.sin(t / 3)
    seq = ParamSequence(
        fps=25, model_id=MODEL_ID, coefficient_names=model.names, expression=expr,
        rotation=np.stack([np.zeros(n), 0.1 * np.sin(t / 9), np.zeros(n)], 1),
        translation=np.tile([[side / 2, side / 2, 0]], (n, 1)), scale=np.full(n, side / 5),
        valid=np.ones(n, bool), frame_size=(side, side),
    )  # fmt: skip
    boxes, _ = crop_boxes_for(seq, model)
    cond = Conditioner(model, args.resolution)
    gen = Generator(GeneratorConfig(resolution=args.resolution, param_dim=cond.param_dim)).eval()
    background = np.full((side, side, 3), 90, np.uint8)
    timings = {"guide": 0.0, "generator": 0.0, "composite": 0.0, "encode": 0.0}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        start = time.perf_counter()
        with VideoWriter(Path(tmp) / "bench.mp4", 25, (side, side), quiet=True) as writer:
            for s in range(0, n, args.batch):
                idx = np.arange(s, min(s + args.batch, n))
                t0 = time.perf_counter()
                batch = cond.frames(seq, idx, boxes[idx])
                t1 = time.perf_counter()
                rgb, alpha = gen(batch.guide, batch.params)
                rgb, alpha = rgb.permute(0, 2, 3, 1).numpy(), alpha[:, 0].numpy()
                t2 = time.perf_counter()
                frames = [paste_crop(background, rgb[i], alpha[i], boxes[j]) for i, j in enumerate(idx)]
                t3 = time.perf_counter()
                for f in frames:
                    writer.write(f)
                t4 = time.perf_counter()
                for key, dt in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    timings[key] += dt
        total = time.perf_counter() - start
    print(
        f"resolution {args.resolution}, {n} frames of {side}x{side}, batch {args.batch}, {args.threads} threads"
    )
    for key, value in timings.items():
        print(f"  {key:<10} {1000 * value / n:7.1f} ms/frame")
    print(f"  {'total':<10} {1000 * total / n:7.1f} ms/frame = {n / total:.1f} frames/s")


if __name__ == "__main__":
    main()
