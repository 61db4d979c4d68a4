"""Online rendering speed: guide rasterization, generator, compositing and encoding, per frame.

    python -m bench.bench_render --resolution 256 --frames 64 [--threads 2] [--frame-size 512] [--device cuda]

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


def measure(resolution: int, frames: int = 64, batch: int = 8, frame_size: int = 512, device: str = "cpu") -> dict:
    """Milliseconds per frame of each online rendering step, and frames per second overall."""
    from talkinghead.generator.conditioning import Conditioner
    from talkinghead.generator.network import Generator, GeneratorConfig
    from talkinghead.media import VideoWriter
    from talkinghead.morphable.model import MODEL_ID, MorphableModel
    from talkinghead.params import ParamSequence
    from talkinghead.training.crop import paste_crop
    from talkinghead.training.dataset import crop_boxes_for

    dev = torch.device(device)
    model = MorphableModel.default()
    n, side = frames, frame_size
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
    cond = Conditioner(model, resolution)
    gen = Generator(GeneratorConfig(resolution=resolution, param_dim=cond.param_dim)).to(dev).eval()
    background = np.full((side, side, 3), 90, np.uint8)
    timings = {"guide": 0.0, "generator": 0.0, "composite": 0.0, "encode": 0.0}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        # warm-up (lazy initialisation, allocator, kernels) is paid once per render, not per frame
        warm = np.arange(min(batch, n))
        inputs = cond.frames(seq, warm, boxes[warm], dev)
        rgb, alpha = gen(inputs.guide, inputs.params)
        paste_crop(background, rgb[0].permute(1, 2, 0).float().cpu().numpy(), alpha[0, 0].float().cpu().numpy(), boxes[0])
        start = time.perf_counter()
        with VideoWriter(Path(tmp) / "bench.mp4", 25, (side, side), quiet=True) as writer:
            for s in range(0, n, batch):
                idx = np.arange(s, min(s + batch, n))
                t0 = time.perf_counter()
                inputs = cond.frames(seq, idx, boxes[idx], dev)
                t1 = time.perf_counter()
                rgb, alpha = gen(inputs.guide, inputs.params)
                rgb, alpha = rgb.permute(0, 2, 3, 1).float().cpu().numpy(), alpha[:, 0].float().cpu().numpy()
                t2 = time.perf_counter()
                out = [paste_crop(background, rgb[i], alpha[i], boxes[j]) for i, j in enumerate(idx)]
                t3 = time.perf_counter()
                for f in out:
                    writer.write(f)
                t4 = time.perf_counter()
                for key, dt in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    timings[key] += dt
        total = time.perf_counter() - start
    return {
        "resolution": resolution, "frames": n, "frame_size": side, "batch": batch, "device": device,
        "threads": torch.get_num_threads(), "ms_per_frame": {k: 1000 * v / n for k, v in timings.items()},
        "fps": n / total,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--frame-size", type=int, default=512, help="output video side (background frames)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = measure(args.resolution, args.frames, args.batch, args.frame_size, args.device)
    print(f"resolution {args.resolution}, {r['frames']} frames of {r['frame_size']}x{r['frame_size']}, "
          f"batch {args.batch}, {r['threads']} threads on {args.device}")  # fmt: skip
    for key, value in r["ms_per_frame"].items():
        print(f"  {key:<10} {value:7.1f} ms/frame")
    print(f"  {'total':<10} {1000 / r['fps']:7.1f} ms/frame = {r['fps']:.1f} frames/s")


if __name__ == "__main__":
    main()
