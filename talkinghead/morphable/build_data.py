"""Regenerate the files in ``morphable/data`` (developer tool, needs mediapipe).

- ``topology.npz``: triangles and named landmark regions of the MediaPipe Face Mesh (478 points),
  taken from MediaPipe's own connection tables (Apache-2.0).
- ``generic_neutral.npy``: a generic neutral face in model space, used when no subject is known
  (synthetic demo subject, tests). It is the mirror-symmetrised mean of the rigidly aligned median
  shapes of several subjects, so it resembles none of them.

Run: ``python -m talkinghead.morphable.build_data [landmarks.npy ...]`` where each file holds
``[T,478,3]`` pixel landmarks tracked from one subject's video.
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"


def _triangles(edges: frozenset) -> np.ndarray:
    """MediaPipe ships the tesselation as edges; its faces are the 3-cliques of that graph."""
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    faces = set()
    for a, nbrs in neighbours.items():
        for b, c in combinations(sorted(nbrs), 2):
            if c in neighbours[b]:
                faces.add(tuple(sorted((a, b, c))))
    return np.array(sorted(faces), np.int64)


def _indices(connections: frozenset) -> np.ndarray:
    return np.array(sorted({i for edge in connections for i in edge}), np.int64)


def build_topology() -> None:
    from mediapipe.python.solutions import face_mesh_connections as fm

    regions = {
        "lips": _indices(fm.FACEMESH_LIPS),
        "left_eye": _indices(fm.FACEMESH_LEFT_EYE),
        "right_eye": _indices(fm.FACEMESH_RIGHT_EYE),
        "left_iris": np.array([473, 474, 475, 476, 477]),
        "right_iris": np.array([468, 469, 470, 471, 472]),
        "left_brow": _indices(fm.FACEMESH_LEFT_EYEBROW),
        "right_brow": _indices(fm.FACEMESH_RIGHT_EYEBROW),
        "nose": _indices(fm.FACEMESH_NOSE),
        "face_oval": _indices(fm.FACEMESH_FACE_OVAL),
    }
    np.savez(DATA / "topology.npz", triangles=_triangles(fm.FACEMESH_TESSELATION), **regions)


def build_generic_neutral(landmark_files: list[str]) -> None:
    from talkinghead.morphable.alignment import neutral_from_landmarks, symmetrize

    shapes = [neutral_from_landmarks(np.load(f)) for f in landmark_files]
    np.save(DATA / "generic_neutral.npy", symmetrize(np.mean(shapes, axis=0)).astype(np.float32))


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    build_topology()
    if len(sys.argv) > 1:
        build_generic_neutral(sys.argv[1:])
