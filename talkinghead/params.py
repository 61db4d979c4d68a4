"""ParamSequence: the one format every driver emits and every renderer reads.

On disk it is an ``.npz`` (no pickle) holding the arrays plus a ``header`` entry with UTF-8 JSON:
format name and version, fps, morphable model id, coefficient names, frame size and free metadata.
Units: rotation is axis-angle in radians (model space -> camera), translation is in pixels of the
source frame (x, y; z is kept for models with depth), scale is pixels per model unit (weak perspective).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.atomic import atomic_path
from talkinghead.errors import TalkingHeadError

FORMAT_NAME = "talkinghead.params"
FORMAT_VERSION = 1

_REQUIRED_ARRAYS = ("expression", "rotation", "translation", "scale", "valid")
_OPTIONAL_ARRAYS = ("gaze", "identity")


@dataclass
class ParamSequence:
    """Per-frame morphable-model parameters at a fixed frame rate.

    Shapes: ``expression[T,K]``, ``rotation[T,3]``, ``translation[T,3]``, ``scale[T]``,
    ``valid[T]`` (False where the face was lost and the values were interpolated),
    optional ``gaze[T,4]`` (left x, y, right x, y in iris-offset units) and ``identity[N,3]``
    (the subject's neutral shape in model space, when the sequence came from tracking one person).
    """

    fps: float
    model_id: str
    coefficient_names: tuple[str, ...]
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    scale: np.ndarray
    valid: np.ndarray
    frame_size: tuple[int, int] = (512, 512)
    gaze: np.ndarray | None = None
    identity: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coefficient_names = tuple(self.coefficient_names)
        self.expression = np.asarray(self.expression, np.float32)
        self.rotation = np.asarray(self.rotation, np.float32)
        self.translation = np.asarray(self.translation, np.float32)
        self.scale = np.asarray(self.scale, np.float32)
        self.valid = np.asarray(self.valid, bool)
        if self.gaze is not None:
            self.gaze = np.asarray(self.gaze, np.float32)
        if self.identity is not None:
            self.identity = np.asarray(self.identity, np.float32)
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise TalkingHeadError naming the first inconsistency."""
        n = len(self.expression)
        k = len(self.coefficient_names)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise TalkingHeadError(f"parameter sequence has an invalid fps {self.fps!r}")
        if len(set(self.coefficient_names)) != k:
            raise TalkingHeadError("parameter sequence repeats a coefficient name")
        expected = {
            "expression": (n, k), "rotation": (n, 3), "translation": (n, 3), "scale": (n,), "valid": (n,),
        }  # fmt: skip
        if self.gaze is not None:
            expected["gaze"] = (n, 4)
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise TalkingHeadError(f"parameter sequence array {name!r} has shape {got}, expected {shape}")
        if self.identity is not None and (self.identity.ndim != 2 or self.identity.shape[1] != 3):
            raise TalkingHeadError(f"parameter sequence identity has shape {self.identity.shape}, expected [N,3]")
        for name in ("expression", "rotation", "translation", "scale", "gaze"):
            arr = getattr(self, name)
            if arr is not None and not np.all(np.isfinite(arr)):
                raise TalkingHeadError(f"parameter sequence array {name!r} holds NaN or infinite values")

    def check_model(self, model_id: str, names: tuple[str, ...]) -> None:
        """Refuse a sequence made for another morphable model, naming what differs."""
        if self.model_id != model_id:
            raise TalkingHeadError(f"parameters are for model {self.model_id!r}, this avatar uses {model_id!r}")
        if tuple(self.coefficient_names) != tuple(names):
            unknown = sorted(set(self.coefficient_names) - set(names))
            missing = sorted(set(names) - set(self.coefficient_names))
            detail = f"unknown {unknown[:5]}" if unknown else f"missing {missing[:5]}" if missing else "order differs"
            raise TalkingHeadError(f"parameter coefficient names do not match the model ({detail})")

    # ------------------------------------------------------------ conveniences
    def __len__(self) -> int:
        return len(self.expression)

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def coefficient(self, name: str) -> np.ndarray:
        try:
            return self.expression[:, self.coefficient_names.index(name)]
        except ValueError:
            raise TalkingHeadError(f"unknown coefficient {name!r}") from None

    def slice(self, start: int, stop: int | None = None) -> ParamSequence:
        sl = slice(start, stop)
        return replace(
            self,
            expression=self.expression[sl], rotation=self.rotation[sl], translation=self.translation[sl],
            scale=self.scale[sl], valid=self.valid[sl],
            gaze=None if self.gaze is None else self.gaze[sl], metadata=dict(self.metadata),
        )  # fmt: skip

    def with_arrays(self, **arrays: np.ndarray) -> ParamSequence:
        return replace(self, **arrays, metadata=dict(self.metadata))

    # --------------------------------------------------------------------- I/O
    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "fps": float(self.fps),
            "model_id": self.model_id,
            "coefficient_names": list(self.coefficient_names),
            "frame_size": list(self.frame_size),
            "frames": len(self),
            "metadata": self.metadata,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically: the file appears complete or not at all."""
        arrays = {name: getattr(self, name) for name in _REQUIRED_ARRAYS}
        arrays.update({n: getattr(self, n) for n in _OPTIONAL_ARRAYS if getattr(self, n) is not None})
        arrays["header"] = np.frombuffer(json.dumps(self.header()).encode("utf-8"), np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        with atomic_path(path, suffix=".npz") as tmp:
            tmp.write_bytes(buffer.getvalue())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ParamSequence:
        path = Path(path)
        if not path.is_file():
            raise TalkingHeadError(f"parameter file {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise TalkingHeadError(f"{path} is not a parameter file (.npz): {exc}") from None
        if "header" not in arrays:
            raise TalkingHeadError(f"{path} has no header: not a talkinghead parameter file")
        try:
            header = json.loads(arrays.pop("header").tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TalkingHeadError(f"{path} has a corrupt header: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise TalkingHeadError(f"{path} is not a talkinghead parameter file")
        if header.get("version") != FORMAT_VERSION:
            raise TalkingHeadError(
                f"{path} has parameter format version {header.get('version')}, this talkinghead reads {FORMAT_VERSION}"
            )
        missing = [name for name in _REQUIRED_ARRAYS if name not in arrays]
        if missing:
            raise TalkingHeadError(f"{path} lacks the array(s) {', '.join(missing)}")
        try:
            return cls(
                fps=float(header["fps"]),
                model_id=str(header["model_id"]),
                coefficient_names=tuple(header["coefficient_names"]),
                frame_size=tuple(header.get("frame_size", (512, 512))),
                metadata=dict(header.get("metadata", {})),
                **{name: arrays[name] for name in _REQUIRED_ARRAYS},
                **{name: arrays[name] for name in _OPTIONAL_ARRAYS if name in arrays},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TalkingHeadError(f"{path} has a malformed header: {exc}") from None
        except TalkingHeadError as exc:
            raise TalkingHeadError(f"{path}: {exc}") from None
