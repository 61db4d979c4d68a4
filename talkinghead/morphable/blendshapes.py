"""The 52 ARKit blendshapes, authored as displacement fields over semantic regions of a face.

Every field is computed from the subject's own neutral shape (anchor landmarks, lip and eyelid
contours), so it is automatically scaled to that face. Units are model units (IOD = 1); a weight of
1 is the strongest version of the expression (``jawOpen = 1`` drops the lower lip by ~0.4 IOD).
Left/Right are the subject's own sides: Left is +x (image right).
"""

from __future__ import annotations

import numpy as np

from talkinghead.morphable.names import ARKIT_NAMES

# MediaPipe Face Mesh landmark ids used as anchors
UPPER_LIP_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_LIP_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
UPPER_LIP_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_LIP_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS = {+1: 291, -1: 61}
INNER_CORNERS = {+1: 308, -1: 78}
EYE = {  # side -> (upper lid contour, lower lid contour, iris ids)
    +1: ((362, 398, 384, 385, 386, 387, 388, 466, 263), (362, 382, 381, 380, 374, 373, 390, 249, 263),
         (473, 474, 475, 476, 477)),
    -1: ((133, 173, 157, 158, 159, 160, 161, 246, 33), (133, 155, 154, 153, 145, 144, 163, 7, 33),
         (468, 469, 470, 471, 472)),
}  # fmt: skip
BROW = {+1: (336, 296, 334, 293, 300, 285, 295, 282, 283, 276), -1: (107, 66, 105, 63, 70, 55, 65, 52, 53, 46)}
BROW_INNER = {+1: 336, -1: 107}
BROW_OUTER = {+1: 300, -1: 70}
CHEEK = {+1: 425, -1: 205}
NOSE_ALA = {+1: 358, -1: 129}
CHIN = 152

# Jaw hinge (temporomandibular joint), in IOD: 0.3 below the eye line (ear canal level), behind the face.
JAW_PIVOT_Y, JAW_PIVOT_Z = -0.3, 1.2
JAW_OPEN_ANGLE = 0.35  # radians at jawOpen = 1: a wide-open mouth (~0.4 IOD lower-lip drop)


class Fields:
    """Soft region weights over one neutral shape ``[N,3]``; each returns ``w[N]`` in [0, 1]."""

    def __init__(self, neutral: np.ndarray) -> None:
        self.v = np.asarray(neutral, np.float64)
        self.n = len(self.v)
        self.eye_line = self.v[[33, 133, 362, 263], 1].mean()
        self.mouth_y = self.v[list(UPPER_LIP_INNER) + list(LOWER_LIP_INNER), 1].mean()

    def near(self, ids: tuple[int, ...] | int, sigma: float) -> np.ndarray:
        """Gaussian falloff with the 3D distance to the nearest of ``ids``."""
        ids = (ids,) if isinstance(ids, int) else ids
        d = np.linalg.norm(self.v[:, None] - self.v[list(ids)][None], axis=-1).min(1)
        return np.exp(-0.5 * (d / sigma) ** 2)

    def at(self, ids: tuple[int, ...], value: float = 1.0) -> np.ndarray:
        w = np.zeros(self.n)
        w[list(ids)] = value
        return w

    def side(self, side: int, softness: float = 0.08) -> np.ndarray:
        return 1 / (1 + np.exp(-side * self.v[:, 0] / softness))

    def upper_lip(self, sigma: float = 0.06) -> np.ndarray:
        w = self.near(UPPER_LIP_OUTER + UPPER_LIP_INNER, sigma) * (self.v[:, 1] < self.mouth_y + 0.01)
        return np.maximum(w, self.at(UPPER_LIP_OUTER + UPPER_LIP_INNER))

    def lower_lip(self, sigma: float = 0.06) -> np.ndarray:
        w = self.near(LOWER_LIP_OUTER + LOWER_LIP_INNER, sigma) * (self.v[:, 1] > self.mouth_y - 0.01)
        w = np.maximum(w, self.at(LOWER_LIP_OUTER + LOWER_LIP_INNER))
        w[list(UPPER_LIP_OUTER + UPPER_LIP_INNER)] = 0
        return w

    def lips(self, sigma: float = 0.1) -> np.ndarray:
        return self.near(UPPER_LIP_OUTER + LOWER_LIP_OUTER + UPPER_LIP_INNER + LOWER_LIP_INNER, sigma)

    def mandible(self) -> np.ndarray:
        """Skin carried by the lower jaw: below a line from the mouth corners rising to the ears."""
        corner_x = abs(self.v[MOUTH_CORNERS[+1], 0] - self.v[MOUTH_CORNERS[-1], 0]) / 2
        beyond = np.clip(np.abs(self.v[:, 0]) - corner_x, 0, None)
        boundary = self.mouth_y - 0.75 * beyond
        w = 1 / (1 + np.exp(-(self.v[:, 1] - boundary) / 0.05))
        w[list(LOWER_LIP_OUTER + LOWER_LIP_INNER)] = 1.0
        w[list(UPPER_LIP_OUTER + UPPER_LIP_INNER)] = 0.0
        for side in (+1, -1):
            w[[MOUTH_CORNERS[side], INNER_CORNERS[side]]] = 0.45
        w[468:] = 0.0  # irises never move with the jaw
        return w

    def eyelid(self, side: int, upper: bool, falloff: float) -> tuple[np.ndarray, np.ndarray]:
        """Weight of the upper (or lower) eyelid and the eye opening height ``h`` under each point."""
        up_ids, low_ids, _ = EYE[side]
        up = self.v[list(up_ids)]
        low = self.v[list(low_ids)]
        x = self.v[:, 0]
        order_u, order_l = np.argsort(up[:, 0]), np.argsort(low[:, 0])
        y_up = np.interp(x, up[order_u, 0], up[order_u, 1])
        y_low = np.interp(x, low[order_l, 0], low[order_l, 1])
        height = np.clip(y_low - y_up, 0, None)
        x0, x1 = up[:, 0].min(), up[:, 0].max()
        half = (x1 - x0) / 2
        lateral = np.exp(-0.5 * (np.clip(np.abs(x - (x0 + x1) / 2) - half * 0.8, 0, None) / 0.05) ** 2)
        if upper:
            dist = y_up - self.v[:, 1]  # >= 0 above the upper lid
        else:
            dist = self.v[:, 1] - y_low
        w = np.where(dist >= -0.01, np.exp(-np.clip(dist, 0, None) / falloff), 0.0) * lateral
        w[list(up_ids[1:-1] if upper else low_ids[1:-1])] = 1.0
        w[[up_ids[0], up_ids[-1]]] = 0.0  # eye corners stay
        w[468:] = 0.0
        return w, height


def _vec(w: np.ndarray, dx: float | np.ndarray = 0.0, dy: float | np.ndarray = 0.0, dz: float | np.ndarray = 0.0):
    return np.stack([w * dx, w * dy, w * dz], -1)


def _jaw_open(f: Fields) -> np.ndarray:
    pivot = np.array([0.0, f.eye_line - JAW_PIVOT_Y, JAW_PIVOT_Z])
    rel = f.v - pivot
    c, s = np.cos(JAW_OPEN_ANGLE), np.sin(JAW_OPEN_ANGLE)
    rotated = np.stack([rel[:, 0], rel[:, 1] * c - rel[:, 2] * s, rel[:, 1] * s + rel[:, 2] * c], -1)
    return (rotated - rel) * f.mandible()[:, None]


def _author(f: Fields) -> dict[str, np.ndarray]:
    v = f.v
    shapes: dict[str, np.ndarray] = {}
    jaw = f.mandible()
    upper, lower, lips = f.upper_lip(), f.lower_lip(), f.lips()
    jaw_open = _jaw_open(f)
    shapes["jawOpen"] = jaw_open
    shapes["mouthClose"] = -jaw_open * f.lower_lip(0.05)[:, None]
    shapes["jawForward"] = _vec(jaw, dz=-0.12)
    shapes["jawLeft"] = _vec(jaw, dx=+0.15)
    shapes["jawRight"] = _vec(jaw, dx=-0.15)
    shapes["mouthFunnel"] = _vec(upper, dy=-0.06, dz=-0.10) + _vec(lower, dy=+0.08, dz=-0.10) + _vec(
        lips, dx=-0.12 * v[:, 0]
    )
    shapes["mouthPucker"] = _vec(f.lips(0.12), dx=-0.35 * v[:, 0], dz=-0.12)
    shapes["mouthLeft"] = _vec(f.lips(0.15), dx=+0.12, dz=0.02)
    shapes["mouthRight"] = _vec(f.lips(0.15), dx=-0.12, dz=0.02)
    shapes["mouthRollLower"] = _vec(f.at(LOWER_LIP_OUTER) + 0.5 * f.lower_lip(0.04), dy=-0.06, dz=+0.06)
    shapes["mouthRollUpper"] = _vec(f.at(UPPER_LIP_OUTER) + 0.5 * f.upper_lip(0.04), dy=+0.05, dz=+0.06)
    shapes["mouthShrugLower"] = _vec(np.maximum(lower, f.near(CHIN, 0.25) * jaw), dy=-0.07, dz=-0.04)
    shapes["mouthShrugUpper"] = _vec(upper, dy=-0.05, dz=-0.02)
    shapes["cheekPuff"] = sum(_vec(f.near(CHEEK[s], 0.25), dx=0.10 * s, dz=-0.06) for s in (+1, -1))
    shapes["tongueOut"] = _vec(f.lower_lip(0.04), dy=+0.05, dz=-0.06)
    for s, name in ((+1, "Left"), (-1, "Right")):
        corner = MOUTH_CORNERS[s]
        half_upper, half_lower = upper * f.side(s), lower * f.side(s)
        cheek_mid = (CHEEK[s],)
        shapes[f"mouthSmile{name}"] = _vec(f.near(corner, 0.18), dx=0.10 * s, dy=-0.12, dz=0.06) + _vec(
            f.near(cheek_mid, 0.25), dx=0.02 * s, dy=-0.05, dz=-0.03
        )
        shapes[f"mouthFrown{name}"] = _vec(f.near(corner, 0.15), dx=0.02 * s, dy=+0.10)
        shapes[f"mouthDimple{name}"] = _vec(f.near(corner, 0.12), dx=0.05 * s, dz=+0.08)
        shapes[f"mouthStretch{name}"] = _vec(f.near(corner, 0.2), dx=0.12 * s, dy=+0.06, dz=0.03)
        shapes[f"mouthPress{name}"] = _vec(f.upper_lip(0.03) * f.side(s), dy=+0.03) + _vec(
            f.lower_lip(0.03) * f.side(s), dy=-0.04
        ) + _vec(f.near(corner, 0.08), dx=0.02 * s)
        shapes[f"mouthLowerDown{name}"] = _vec(half_lower, dy=+0.10)
        shapes[f"mouthUpperUp{name}"] = _vec(half_upper, dy=-0.08, dz=-0.02)
        under_eye = (EYE[s][1][4],)
        shapes[f"cheekSquint{name}"] = _vec(f.near(under_eye, 0.22) * (v[:, 1] > f.eye_line), dy=-0.06, dz=-0.02)
        shapes[f"noseSneer{name}"] = _vec(f.near(NOSE_ALA[s], 0.12), dx=0.02 * s, dy=-0.06)
        # eyes: Left is the subject's left eye (+x)
        lid, height = f.eyelid(s, upper=True, falloff=0.10)
        low_lid, _ = f.eyelid(s, upper=False, falloff=0.08)
        shapes[f"eyeBlink{name}"] = _vec(lid, dy=0.95 * height)
        shapes[f"eyeSquint{name}"] = _vec(low_lid, dy=-0.35 * height) + _vec(lid, dy=0.12 * height)
        shapes[f"eyeWide{name}"] = _vec(f.eyelid(s, upper=True, falloff=0.15)[0], dy=-0.35 * height)
        iris = f.at(EYE[s][2])
        shapes[f"eyeLookUp{name}"] = _vec(iris, dy=-0.07) + _vec(lid, dy=-0.10 * height)
        shapes[f"eyeLookDown{name}"] = _vec(iris, dy=+0.07) + _vec(lid, dy=+0.25 * height)
        shapes[f"eyeLookIn{name}"] = _vec(iris, dx=-0.12 * s)
        shapes[f"eyeLookOut{name}"] = _vec(iris, dx=+0.12 * s)
        brow = f.near(BROW[s], 0.12) * (v[:, 1] < f.eye_line - 0.12)
        shapes[f"browDown{name}"] = _vec(brow, dx=-0.03 * s, dy=+0.10) + _vec(f.near(BROW_INNER[s], 0.15), dy=0.03)
        shapes[f"browOuterUp{name}"] = _vec(f.near(BROW_OUTER[s], 0.2) * (v[:, 1] < f.eye_line - 0.05), dy=-0.10)
    shapes["browInnerUp"] = sum(
        _vec(f.near(BROW_INNER[s], 0.2) * (v[:, 1] < f.eye_line - 0.08), dx=-0.02 * s, dy=-0.12) for s in (+1, -1)
    )
    return shapes


def author_basis(neutral: np.ndarray, names: tuple[str, ...] = ARKIT_NAMES) -> np.ndarray:
    """Displacement fields ``[K,N,3]`` (model units) for ``names`` on this neutral face."""
    shapes = _author(Fields(neutral))
    missing = [n for n in names if n not in shapes]
    if missing:
        raise KeyError(f"no authored blendshape for {missing}")
    return np.stack([shapes[n] for n in names]).astype(np.float32)
