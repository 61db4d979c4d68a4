"""talkinghead: a personal talking head from one ordinary video (MyPortrait, arXiv 2312.02703)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("talkinghead")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
