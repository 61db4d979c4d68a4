"""Track a video and fit the morphable model: the first step of training and of video driving."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from talkinghead import media, plugins
from talkinghead.errors import TalkingHeadError
from talkinghead.morphable.fitting import FitConfig, Fitter, interpolate_missing
from talkinghead.morphable.model import MorphableModel
from talkinghead.morphable.personalize import PersonalizeConfig
from talkinghead.params import ParamSequence


@dataclass
class TrackResult:
    params: ParamSequence
    landmarks: np.ndarray  # [T,478,3] pixels, lost frames interpolated
    lost: int  # frames where no face was found (interpolated, valid=False)
    model: MorphableModel
    timings: dict[str, float] = field(default_factory=dict)


def track_landmarks(path: str | os.PathLike, tracker: str = "mediapipe", quiet: bool = False,
                    max_frames: int | None = None) -> tuple[np.ndarray, media.VideoInfo]:  # fmt: skip
    """Landmarks ``[T,N,3]`` (NaN where no face), streaming the frames: memory holds no video."""
    tracker_cls = plugins.load("tracker", tracker)  # a typo in the name fails before any decoding
    info = media.probe_video(path)
    tracker_obj = tracker_cls()
    rows: list[np.ndarray] = []
    nan = None
    try:
        total = info.frames if max_frames is None else min(info.frames, max_frames)
        bar = tqdm(media.iter_frames(path, stop=max_frames), total=total, desc="tracking", unit="frame",
                   disable=quiet, leave=False)  # fmt: skip
        for frame in bar:
            points = tracker_obj(frame)
            if points is None:
                nan = nan if nan is not None else np.full((getattr(tracker_obj, "n_points", 478), 3), np.nan, np.float32)
                rows.append(nan)
            else:
                rows.append(points.astype(np.float32))
    finally:
        close = getattr(tracker_obj, "close", None)
        if close:
            close()
    if not rows:
        raise TalkingHeadError(f"{path} has no frames")
    return np.stack(rows), info


def track_video(
    path: str | os.PathLike, tracker: str = "mediapipe", quiet: bool = False,
    preview: str | os.PathLike | None = None, fit_config: FitConfig | None = None,
    personalize: PersonalizeConfig | None = None, model: MorphableModel | None = None,
    max_frames: int | None = None,
) -> TrackResult:  # fmt: skip
    """Track every frame, estimate the subject's model (unless ``model`` is given), fit all frames.

    Frames without a face are filled by interpolating their neighbours and marked invalid; a video
    with no face at all is an error.
    """
    t0 = time.perf_counter()
    raw, info = track_landmarks(path, tracker, quiet, max_frames)
    t1 = time.perf_counter()
    landmarks, valid = interpolate_missing(raw)
    if not valid.any():
        raise TalkingHeadError(f"no face found in any frame of {path}")
    if model is None:
        fitter = Fitter.for_landmarks(landmarks[valid], fit_config, personalize)
    else:
        fitter = Fitter(model, fit_config)
    t2 = time.perf_counter()
    result = fitter.fit(landmarks)
    t3 = time.perf_counter()
    lost = int((~valid).sum())
    metadata = {
        "source": os.path.basename(str(path)), "driver": "track", "tracker": tracker, "lost_frames": lost,
        "reprojection_error_iod": float(fitter.reprojection_error(landmarks[valid], _subset(result, valid)).mean()),
    }  # fmt: skip
    params = fitter.to_params(result, info.fps, (info.width, info.height), valid, metadata)
    timings = {"track_s": t1 - t0, "personalize_s": t2 - t1, "fit_s": t3 - t2, "frames": float(len(raw))}
    out = TrackResult(params, landmarks, lost, fitter.model, timings)
    if preview is not None:
        from talkinghead.tracking.preview import write_preview

        write_preview(path, out, preview, quiet=quiet)
    return out


def _subset(result, mask: np.ndarray):
    from talkinghead.morphable.fitting import FitResult

    return FitResult(result.expression[mask], result.rotation[mask], result.translation[mask], result.scale[mask])
