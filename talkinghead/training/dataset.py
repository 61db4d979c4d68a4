"""Training frames: head crops of the video with their tracked parameters and crop boxes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from talkinghead.errors import TalkingHeadError
from talkinghead.params import ParamSequence
from talkinghead.training.crop import CropConfig, compute_boxes, crop_image

MIN_FRAMES = 50  # 2 s at 25 fps: fewer frames cannot show the mouth and head in enough states


@dataclass
class VideoData:
    """Crops ``[T,r,r,3]`` uint8 with their parameters and boxes; frame ``i`` of each belongs together."""

    params: ParamSequence
    crops: np.ndarray
    boxes: np.ndarray  # [T,3] (x0, y0, size) in source-frame pixels

    def __post_init__(self) -> None:
        if not (len(self.params) == len(self.crops) == len(self.boxes)):
            raise ValueError("params, crops and boxes must have the same length")
        ok = self.params.valid[:-1] & self.params.valid[1:]
        self._pair_starts = np.nonzero(ok)[0]
        if len(self._pair_starts) == 0:
            self._pair_starts = np.arange(max(len(self.params) - 1, 1))

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def resolution(self) -> int:
        return int(self.crops.shape[1])

    def pairs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``2n`` indices ``t0, t0+1, t1, t1+1, ...`` of consecutive valid frames (for the velocity loss)."""
        starts = rng.choice(self._pair_starts, size=n, replace=len(self._pair_starts) < n)
        nxt = np.minimum(starts + 1, len(self) - 1)
        return np.stack([starts, nxt], 1).reshape(-1)

    def images(self, indices: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """Crops as float ``[B,3,r,r]`` in [0, 1]."""
        batch = torch.from_numpy(np.ascontiguousarray(self.crops[np.asarray(indices)]))
        return batch.to(device).permute(0, 3, 1, 2).float().div_(255)


def crop_boxes_for(
    params: ParamSequence, model, config: CropConfig = CropConfig(), size: int | None = None
) -> tuple[np.ndarray, bool]:
    """Boxes from the fitted mesh (what rendering will see, not raw landmarks) and whether they are fixed."""
    with torch.no_grad():
        verts = model.vertices(
            torch.from_numpy(params.expression), torch.from_numpy(params.rotation),
            torch.from_numpy(params.translation), torch.from_numpy(params.scale),
        ).numpy()[:, :468]  # fmt: skip
    return compute_boxes(verts, params.frame_size, params.fps, size=size, config=config)


def load_video_data(
    frames, params: ParamSequence, boxes: np.ndarray, resolution: int, stop: int, quiet: bool = True
) -> VideoData:
    """Crop the first ``stop`` frames of the iterable ``frames`` (RGB uint8) into a VideoData."""
    if stop < MIN_FRAMES:
        raise TalkingHeadError(
            f"the training part of the video has {stop} frames; at least {MIN_FRAMES} "
            f"({MIN_FRAMES / params.fps:.1f} s at {params.fps:g} fps) are needed"
        )
    crops = np.empty((stop, resolution, resolution, 3), np.uint8)
    n = 0
    for frame in tqdm(frames, total=stop, desc="cropping", unit="frame", disable=quiet):
        if n >= stop:
            break
        crops[n] = crop_image(frame, boxes[n], resolution)
        n += 1
    if n < stop:
        raise TalkingHeadError(f"the video has {n} frames, but its parameters cover {stop}")
    return VideoData(params.slice(0, stop), crops, np.asarray(boxes[:stop]))
