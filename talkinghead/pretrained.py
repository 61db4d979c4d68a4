"""Where the bundled demo avatar lives, so commands work with no --avatar."""

from __future__ import annotations

import os
from pathlib import Path

from talkinghead.errors import TalkingHeadError

DEMO_AVATAR = Path(__file__).resolve().parents[1] / "pretrained" / "demo"


def default_avatar_dir() -> Path:
    """``$TALKINGHEAD_AVATAR`` if set, else the demo avatar shipped in ``pretrained/demo``."""
    path = Path(os.environ.get("TALKINGHEAD_AVATAR", DEMO_AVATAR))
    if not (path / "config.json").is_file():
        raise TalkingHeadError(f"no --avatar given and the default avatar is missing at {path}")
    return path
