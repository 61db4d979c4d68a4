"""MediaPipe Face Mesh tracker (legacy ``solutions.face_mesh``: its models ship inside the wheel)."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# mediapipe 0.10.14 calls a protobuf API that protobuf has deprecated: nothing a user can act on.
warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)


class MediaPipeTracker:
    """Frames (RGB uint8) in, 478 landmarks in pixels out (x, y, and z scaled like x), or None."""

    name = "mediapipe"
    description = "MediaPipe Face Mesh, 478 points with irises, ~200-300 fps on a CPU"
    n_points = 478

    def __init__(self, min_confidence: float = 0.5, static: bool = False) -> None:
        logging.getLogger("absl").setLevel(logging.ERROR)
        from mediapipe.python.solutions import face_mesh

        self._mesh = face_mesh.FaceMesh(
            static_image_mode=static, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
        )  # fmt: skip

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        height, width = frame.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame))
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        out = np.array([(p.x, p.y, p.z) for p in points], np.float32)
        out *= np.array([width, height, width], np.float32)
        return out

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> MediaPipeTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
