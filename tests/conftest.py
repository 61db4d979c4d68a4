"""Shared fixtures: the real clips in ../shared/data (tests needing them skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"real test media {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="session")
def talk_clip() -> Path:
    return shared_file("talk_woman_8s.mp4")


@pytest.fixture(scope="session")
def tracked_talk(talk_clip, tmp_path_factory):
    """The first 80 frames of the short clip, tracked and fitted once for the whole session."""
    from talkinghead.tracking.pipeline import track_video

    return track_video(talk_clip, quiet=True, max_frames=80)
