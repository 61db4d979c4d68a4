"""Plugin discovery: the one place that reads entry points.

The core asks this registry for a tracker or driver by name and never imports a plugin module
directly, so a built-in plugin and a third-party one are found the same way. A plugin that fails
to import is reported (``talkinghead plugins``) and skipped, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from talkinghead.errors import TalkingHeadError

TRACKER_GROUP = "talkinghead.trackers"
DRIVER_GROUP = "talkinghead.drivers"
GROUPS = {"tracker": TRACKER_GROUP, "driver": DRIVER_GROUP}


@dataclass
class PluginInfo:
    kind: str  # "tracker" or "driver"
    name: str
    target: str  # "module:attr"
    distribution: str
    version: str
    obj: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"], dist.version


def discover(kind: str) -> dict[str, PluginInfo]:
    """Load every plugin of ``kind``; import errors are captured in ``PluginInfo.error``."""
    found: dict[str, PluginInfo] = {}
    for ep in entry_points(group=GROUPS[kind]):
        dist, ver = _distribution(ep)
        info = PluginInfo(kind, ep.name, ep.value, dist, ver)
        try:
            info.obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the toolkit down
            info.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        found.setdefault(ep.name, info)
    return found


def load(kind: str, name: str) -> Any:
    """Return the plugin class for ``name`` or a one-line error listing the installed ones."""
    plugins = discover(kind)
    info = plugins.get(name)
    if info is None:
        available = ", ".join(sorted(n for n, p in plugins.items() if p.ok)) or "none"
        raise TalkingHeadError(f"unknown {kind} {name!r}; installed {kind}s: {available}")
    if not info.ok:
        raise TalkingHeadError(f"{kind} {name!r} from {info.distribution} is broken: {info.error}")
    return info.obj
