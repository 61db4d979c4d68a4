"""Shared helpers for the benchmark scripts: where the data is, what machine we measure on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent
CLIPS = ("talk_woman_8s.mp4", "expressive_woman_33s.mp4", "talk_man_glasses_20s.mp4")


def machine(device: str = "cpu") -> str:
    """One line naming the hardware a number was measured on."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} on CPU ({torch.get_num_threads()} threads)"
    )


def require_data() -> None:
    if not DATA.is_dir():
        raise SystemExit(f"benchmark media folder {DATA} is absent (see ../shared/data/README.md)")
