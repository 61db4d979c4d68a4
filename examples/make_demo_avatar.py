"""Rebuild the bundled demo avatar (``pretrained/demo``) from scratch: synthetic video, then `talkinghead train`.

    python examples/make_demo_avatar.py                  # ~45 s of video, then training (see README for time)
    python examples/make_demo_avatar.py --steps 600 --stage2-steps 200 --out /tmp/demo   # a quick try

The subject is the project's own morphable face rendered by ``talkinghead.synthetic`` and the voice is
espeak-ng, so the bundle holds no real person's footage or likeness. The video is kept in
``runs/demo/`` (git-ignored) so ``talkinghead evaluate`` and ``train-audio`` can find it again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from make_demo_video import make_video  # noqa: E402

from talkinghead.errors import TalkingHeadError  # noqa: E402


def bundle_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "pretrained" / "demo", help="avatar folder to write")
    ap.add_argument("--video", type=Path, default=ROOT / "runs" / "demo" / "demo_subject.mp4")
    ap.add_argument("--duration", type=float, default=40.0, help="seconds of synthetic speech")
    ap.add_argument("--resolution", default="256")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--stage2-steps", type=int, default=1000)
    ap.add_argument("--holdout", type=float, default=0.1, help="tail kept for `talkinghead evaluate`")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    started = time.time()
    try:
        if not args.video.is_file():
            args.video.parent.mkdir(parents=True, exist_ok=True)
            make_video(args.video, args.duration, 25.0, 384, args.seed, None, args.quiet)
    except TalkingHeadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    made = time.time()
    train = [sys.executable, "-m", "talkinghead", "--seed", str(args.seed), *(["--quiet"] if args.quiet else []),
             "train", str(args.video), "--out", str(args.out), "--resolution", args.resolution,
             "--steps", str(args.steps), "--stage2-steps", str(args.stage2_steps),
             "--holdout", str(args.holdout)]  # fmt: skip
    if subprocess.run(train).returncode != 0:
        return 1
    # Record the video relative to the repository, not as this machine's absolute path.
    config = args.out / "config.json"
    info = json.loads(config.read_text())
    try:
        info["training"]["video"] = str(args.video.resolve().relative_to(ROOT))
    except ValueError:
        pass
    tmp = config.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(config)
    done = time.time()
    print(f"video {made - started:.0f} s, training {done - made:.0f} s; "
          f"{args.out} holds {bundle_size(args.out) / 1e6:.1f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
