"""Render a synthetic talking subject from morphable-model parameters: no camera, no real person.

The subject is the project's own generic face (:meth:`MorphableModel.default`) posed and shaded:

- the face mesh, filled triangle by triangle far to near (painter's order, OpenCV's C polygon
  filler), Lambert-shaded with normals of the posed 3D mesh, then smoothed inside the face so the
  facets melt into soft shading; lips and brows are triangles of the mesh with their own material;
- eyes in the mesh's eye holes: sclera, iris and pupil clipped to the lid opening, so a blink
  (``eyeBlink*``) closes them; a dark lash line on the upper lid;
- the mouth in the mesh's mouth hole: a dark interior with upper teeth, lower teeth and a tongue;
- hair, neck and shoulders as smooth shapes attached to the head (hair) or the frame (shoulders).

Everything is drawn at ``supersample`` times the output size and averaged down, which antialiases the
polygon edges. MediaPipe Face Mesh tracks the result, so it can stand in for a filmed person when
training the demo avatar (``examples/make_demo_video.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import torch

from talkinghead.morphable.model import MODEL_ID, MorphableModel
from talkinghead.morphable.rotation import axis_angle_to_matrix
from talkinghead.params import ParamSequence

# Ordered MediaPipe Face Mesh contours: each loop runs corner -> upper lid/lip -> corner -> lower.
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
UPPER_INNER_LIP = INNER_LIPS[:11]
LOWER_INNER_LIP = (78, *INNER_LIPS[:10:-1], 308)  # corner, lower lip right to left..., corner
EYES = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),  # subject's right
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),  # subject's left
)
IRISES = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))  # centre, then 4 rim points
BROWS = ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (300, 293, 334, 296, 336, 285, 295, 282, 283, 276))
NOSTRILS = (79, 309)  # under the nose tip, either side of the columella


def _rgb(*c: int) -> np.ndarray:
    return np.array(c, np.float32)


@dataclass(frozen=True)
class RenderConfig:
    # 384 px frames: the tracker and the training crops (256 default) need no more, and it renders fast.
    size: tuple[int, int] = (384, 384)
    # Draw at 2x and average down: antialiased edges at a quarter of the cost of 4x.
    supersample: int = 2
    # Head placement for the default pose: eye-to-eye distance 0.19 of the frame width gives a
    # head-and-shoulders portrait like a webcam or phone video (face ~45 % of the frame width).
    iod_fraction: float = 0.19
    # Model origin (between the eyes and the nose tip) at 43 % of the frame height leaves room
    # above for the hair and below for the neck and shoulders.
    centre_y_fraction: float = 0.43
    # Light from the upper left, in front (camera coordinates x right, y down, z away): the nose
    # and cheeks get a shadow side, which is what gives the tracker depth cues.
    light: tuple[float, float, float] = (-0.45, -0.55, -1.0)
    ambient: float = 0.42  # fraction of the light that reaches surfaces facing away (fill light)
    # Smoothing of the faceted shading, in model units (IOD = 1): about the size of one mesh triangle.
    shade_blur_iod: float = 0.045
    # Softening of the lip and brow edges (model units): about a pixel at the output size.
    edge_blur_iod: float = 0.012
    # Colours (sRGB): a light warm skin, dark-brown hair and brows, brown irises, a muted shirt on a
    # grey-blue wall; strong contrast at the brows, eyes and mouth is what face trackers key on.
    skin: tuple[int, int, int] = (236, 188, 160)
    lips: tuple[int, int, int] = (196, 104, 104)
    brows: tuple[int, int, int] = (78, 56, 44)
    hair: tuple[int, int, int] = (62, 44, 34)
    sclera: tuple[int, int, int] = (238, 234, 228)
    iris: tuple[int, int, int] = (92, 66, 48)
    lash: tuple[int, int, int] = (40, 28, 24)
    mouth: tuple[int, int, int] = (62, 20, 24)
    teeth: tuple[int, int, int] = (236, 232, 220)
    tongue: tuple[int, int, int] = (170, 78, 84)
    shirt: tuple[int, int, int] = (70, 96, 128)
    background_top: tuple[int, int, int] = (196, 204, 212)
    background_bottom: tuple[int, int, int] = (150, 160, 172)
    # Teeth sizes (model units): an upper incisor shows ~0.1 IOD below the lip when the mouth is open.
    upper_teeth_iod: float = 0.08
    lower_teeth_iod: float = 0.04


CONFIG = RenderConfig()

# Hair silhouette in model units (x right, y down), drawn behind the face at depth ``HAIR_Z``:
# a skull-shaped cap ending in a short bob at mouth height. The face mesh covers its inside.
_HAIR_Z = 0.9


def _hair_outline() -> np.ndarray:
    t = np.linspace(0.0, np.pi, 25)
    cap = np.stack([1.34 * np.cos(t), -0.5 - 1.58 * np.sin(t) ** 0.9], 1)  # right side over the top
    left = np.array([[-1.36, 0.1], [-1.34, 0.6], [-1.22, 0.88], [-1.0, 0.92], [-0.8, 0.6], [-0.8, -0.3]])
    right = left[::-1] * np.array([-1.0, 1.0])
    pts = _chaikin(np.concatenate([cap, left, right]), 3)
    return np.concatenate([pts, np.full((len(pts), 1), _HAIR_Z)], 1).astype(np.float32)


def _chaikin(loop: np.ndarray, iterations: int) -> np.ndarray:
    """Round the corners of a closed polygon (Chaikin's corner cutting)."""
    for _ in range(iterations):
        nxt = np.roll(loop, -1, axis=0)
        loop = np.stack([0.75 * loop + 0.25 * nxt, 0.25 * loop + 0.75 * nxt], 1).reshape(-1, 2)
    return loop


# Neck: its top corners sit under the jaw and move with the head (model units).
_NECK_TOP = np.array([[-0.6, 0.6, 0.8], [0.6, 0.6, 0.8]], np.float32)


class FaceRenderer:
    """Draws RGB uint8 frames ``[H, W, 3]`` of the synthetic subject from morphable parameters."""

    def __init__(self, model: MorphableModel | None = None, config: RenderConfig = CONFIG) -> None:
        self.model = model or MorphableModel.default()
        self.config = config
        w, h = config.size
        self.size = (int(w), int(h))
        self._ss = int(config.supersample)
        light = np.asarray(config.light, np.float32)
        self._light = light / np.linalg.norm(light)
        neutral = self.model.neutral.numpy()
        tris = np.asarray(self.model.triangles, np.int64)
        self._tris = tris
        # MediaPipe's tesselation mixes windings: remember which way each triangle faces the camera
        # on the neutral face, so posed normals can be oriented the same way.
        v = neutral[tris]
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        self._winding = np.where(n[:, 2] > 0, -1.0, 1.0).astype(np.float32)[:, None]
        self._material = self._materials(neutral, tris)
        self._hair = _hair_outline()

    # ------------------------------------------------------------------ set-up
    def _materials(self, neutral: np.ndarray, tris: np.ndarray) -> np.ndarray:
        """Base colour per triangle: lips and brows are the triangles whose centroid lies inside their
        outline on the neutral face (the contour points alone miss the mesh's middle rows)."""
        c = self.config
        colours = np.tile(_rgb(*c.skin), (len(tris), 1))
        centroids = neutral[tris][:, :, :2].mean(1)
        for loop, colour in [(OUTER_LIPS, c.lips)] + [(b, c.brows) for b in BROWS]:
            poly = neutral[list(loop), :2].astype(np.float32)
            inside = np.array(
                [cv2.pointPolygonTest(poly, (float(x), float(y)), False) > 0 for x, y in centroids]
            )
            colours[inside] = _rgb(*colour)
        return colours

    @cached_property
    def _background(self) -> np.ndarray:
        """Soft vertical gradient with a gentle vignette, at the supersampled size."""
        c = self.config
        w, h = self.size[0] * self._ss, self.size[1] * self._ss
        y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
        x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :, None]
        top, bottom = _rgb(*c.background_top), _rgb(*c.background_bottom)
        img = top * (1 - y) + bottom * y
        img = img * (1.0 - 0.12 * x**2)
        return np.clip(img, 0, 255).astype(np.uint8)

    def default_pose(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``rotation[3]``, ``translation[3]`` (pixels) and ``scale`` that frame the head as a portrait."""
        c = self.config
        w, h = self.size
        return (np.zeros(3, np.float32), np.array([w / 2, h * c.centre_y_fraction, 0.0], np.float32),
                float(c.iod_fraction * w))  # fmt: skip

    def expression(self, **weights: float) -> np.ndarray:
        """An expression vector ``[K]`` from named weights, e.g. ``expression(jawOpen=0.6)``."""
        out = np.zeros(len(self.model.names), np.float32)
        for name, value in weights.items():
            out[self.model.index(name)] = value
        return out

    # ------------------------------------------------------------------ rendering
    def render(
        self,
        expression: np.ndarray | None = None,
        rotation: np.ndarray | None = None,
        translation: np.ndarray | None = None,
        scale: float | None = None,
    ) -> np.ndarray:
        """One frame for ``expression[K]`` and pose (defaults: neutral face, :meth:`default_pose`)."""
        rot0, trans0, scale0 = self.default_pose()
        expression = self.expression() if expression is None else np.asarray(expression, np.float32)
        rotation = rot0 if rotation is None else np.asarray(rotation, np.float32)
        translation = trans0 if translation is None else np.asarray(translation, np.float32)
        scale = scale0 if scale is None else float(scale)
        with torch.no_grad():
            verts = self.model.vertices(
                torch.from_numpy(expression[None]), torch.from_numpy(rotation[None]),
                torch.from_numpy(translation[None]), torch.tensor([scale]),
            )[0].numpy()  # fmt: skip
        return self.render_vertices(verts, rotation, translation, scale)

    def render_sequence(self, params: ParamSequence, batch: int = 64) -> Iterator[np.ndarray]:
        """Frames for every entry of ``params`` (its frame size must match this renderer's)."""
        for start in range(0, len(params), batch):
            part = params.slice(start, start + batch)
            with torch.no_grad():
                verts = self.model.vertices(
                    torch.from_numpy(part.expression), torch.from_numpy(part.rotation),
                    torch.from_numpy(part.translation), torch.from_numpy(part.scale),
                ).numpy()  # fmt: skip
            for i in range(len(part)):
                yield self.render_vertices(
                    verts[i], part.rotation[i], part.translation[i], float(part.scale[i])
                )

    def render_vertices(
        self, vertices: np.ndarray, rotation: np.ndarray, translation: np.ndarray, scale: float
    ) -> np.ndarray:
        """One frame from posed vertices ``[N,3]`` (pixels) and the pose that placed them (for the hair,
        neck and teeth, which are attached to the head but not part of the mesh)."""
        ss = self._ss
        verts = np.asarray(vertices, np.float32) * ss
        rot = axis_angle_to_matrix(torch.as_tensor(rotation, dtype=torch.float32)).numpy()
        head = _HeadFrame(rot, np.asarray(translation, np.float32) * ss, scale * ss)
        canvas = self._background.copy()
        self._draw_body(canvas, head)
        self._draw_hair(canvas, head)
        self._draw_face(canvas, verts, head)
        for eye, iris in zip(EYES, IRISES, strict=True):
            self._draw_eye(canvas, verts, eye, iris, head)
        self._draw_mouth(canvas, verts, head)
        w, h = self.size
        return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)

    # ------------------------------------------------------------------ parts
    def _draw_body(self, canvas: np.ndarray, head: _HeadFrame) -> None:
        """Shoulders fixed in the frame, a neck joining them to the jaw (darker under the chin)."""
        c = self.config
        ss = self._ss
        h = self.size[1] * ss
        _, trans0, scale0 = self.default_pose()
        iod = scale0 * ss
        cx, cy = trans0[0] * ss, trans0[1] * ss
        shoulder_y = cy + 2.2 * iod
        neck_top = head.project(_NECK_TOP)[:, :2]
        neck = np.array([neck_top[0], neck_top[1], [cx + 0.68 * iod, h], [cx - 0.68 * iod, h]])
        box = _Box.around(neck, pad=2, shape=canvas.shape)
        if box is not None:
            mask = np.zeros(box.shape, np.uint8)
            _fill(mask, neck - box.origin, 255)
            # the chin shades the top of the neck: darkest right under the jaw
            chin_y = head.project(np.array([[0.0, 1.25, 0.6]], np.float32))[0, 1] - box.y0
            rows = np.arange(box.shape[0], dtype=np.float32)[:, None]
            light = 0.62 + 0.26 * np.clip((rows - chin_y) / (0.8 * iod), 0, 1)
            colour = np.clip(_rgb(*c.skin) * light[..., None], 0, 255).astype(np.uint8)  # [rows, 1, 3]
            np.copyto(box.view(canvas), colour, where=mask[..., None] > 0)
        # shirt: rounded shoulders with a crew neckline
        x = np.linspace(-3.2, 3.2, 65)
        top = shoulder_y - 0.6 * iod * np.clip(1 - (x / 3.2) ** 2, 0, 1) ** 0.35
        neckline = shoulder_y - 0.25 * iod + 0.55 * iod * np.sqrt(np.clip(1 - (x / 0.8) ** 2, 0, 1))
        y = np.where(np.abs(x) < 0.8, np.maximum(top, neckline), top)
        body = np.concatenate(
            [np.stack([cx + x * iod, y], 1), [[cx + 3.2 * iod, h + 2], [cx - 3.2 * iod, h + 2]]]
        )
        _fill(canvas, body, c.shirt)
        # a darker hem along the neckline
        collar = np.stack([cx + x * iod, y], 1)[np.abs(x) < 0.85]
        cv2.polylines(canvas, [_fixed(collar)], False, _colour(0.75 * _rgb(*c.shirt)),
                      max(int(0.06 * iod), 1), cv2.LINE_AA, 4)  # fmt: skip

    def _draw_hair(self, canvas: np.ndarray, head: _HeadFrame) -> None:
        """A dark cap with a soft sheen on the lit side."""
        c = self.config
        outline = head.project(self._hair)[:, :2]
        box = _Box.around(outline, pad=2, shape=canvas.shape)
        if box is None:
            return
        mask = np.zeros(box.shape, np.uint8)
        _fill(mask, outline - box.origin, 255)
        sheen_at = head.project(np.array([[-0.45, -1.75, 0.5]], np.float32))[0, :2] - box.origin
        # the highlight is smooth: compute it on a 4x coarser grid and let OpenCV scale it up
        step = 4.0
        radius = 0.55 * head.scale / step
        rows = np.arange(-(-box.shape[0] // 4), dtype=np.float32) - sheen_at[1] / step
        cols = np.arange(-(-box.shape[1] // 4), dtype=np.float32) - sheen_at[0] / step
        light = 0.9 + 0.45 * np.outer(np.exp(-((rows / radius) ** 2)), np.exp(-((cols / radius) ** 2)))
        coarse = (light[..., None] * _rgb(*c.hair)).clip(0, 255).astype(np.uint8)
        colour = cv2.resize(coarse, (box.shape[1], box.shape[0]), interpolation=cv2.INTER_LINEAR)
        np.copyto(box.view(canvas), colour, where=mask[..., None] > 0)

    def _draw_face(self, canvas: np.ndarray, verts: np.ndarray, head: _HeadFrame) -> None:
        c = self.config
        corners = verts[self._tris]  # [F,3,3]
        n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]) * self._winding
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
        lambert = np.clip(n @ self._light, 0.0, 1.0)
        shade = c.ambient + (1.0 - c.ambient) * lambert
        xy = corners[..., :2]
        lo = np.floor(xy.reshape(-1, 2).min(0)).astype(int) - 4
        hi = np.ceil(xy.reshape(-1, 2).max(0)).astype(int) + 4
        H, W = canvas.shape[:2]
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], W), min(hi[1], H)
        if x1 <= x0 or y1 <= y0:
            return
        layer = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)  # material colour, crisp
        shading = np.zeros((y1 - y0, x1 - x0), np.uint8)  # 1..255 where covered, 0 off the face
        fixed = np.round((xy - [x0, y0]) * 16).astype(np.int32)  # 4 fractional bits
        order = np.argsort(-corners[:, :, 2].mean(1), kind="stable")  # far first
        fill = cv2.fillConvexPoly
        material = self._material.tolist()
        level = np.clip(np.round(shade * 254 + 1), 1, 255).astype(int).tolist()
        for k in order.tolist():
            fill(layer, fixed[k], material[k], cv2.LINE_8, 4)
            fill(shading, fixed[k], level[k], cv2.LINE_8, 4)
        # normalised blur of the shading alone: the facets melt into smooth light, the lips and brows
        # keep their edges, and the background never bleeds into the face's rim
        layer = cv2.GaussianBlur(layer, (0, 0), max(c.edge_blur_iod * head.scale, 0.5))
        inside = shading > 0
        sigma = max(c.shade_blur_iod * head.scale, 0.5)
        num = cv2.GaussianBlur(shading.astype(np.float32), (0, 0), sigma)
        den = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigma)
        light = num[inside] / (np.maximum(den[inside], 1e-3) * 255.0)
        region = canvas[y0:y1, x0:x1]
        region[inside] = np.clip(layer[inside] * light[:, None], 0, 255).astype(np.uint8)
        self._draw_nostrils(canvas, verts, head)

    def _draw_nostrils(self, canvas: np.ndarray, verts: np.ndarray, head: _HeadFrame) -> None:
        box = _Box.around(verts[list(NOSTRILS), :2], pad=int(0.1 * head.scale) + 2, shape=canvas.shape)
        if box is None:
            return
        region = box.view(canvas)
        overlay = region.copy()
        angle = float(np.degrees(np.arctan2(head.axis(0)[1], head.axis(0)[0])))
        for i in NOSTRILS:
            centre = verts[i, :2] + head.axis(1)[:2] * 0.02 - box.origin
            _ellipse(overlay, centre, (0.055 * head.scale, 0.028 * head.scale), angle, (90, 52, 48))
        cv2.addWeighted(overlay, 0.7, region, 0.3, 0, dst=region)

    def _draw_eye(
        self, canvas: np.ndarray, verts: np.ndarray, eye: tuple[int, ...], iris: tuple[int, ...],
        head: _HeadFrame,
    ) -> None:  # fmt: skip
        c = self.config
        loop = verts[list(eye), :2]
        box = _Box.around(loop, pad=4, shape=canvas.shape)
        if box is None:
            return
        mask = np.zeros(box.shape, np.uint8)
        _fill(mask, loop - box.origin, 255)
        if mask.any():
            patch = np.empty((*box.shape, 3), np.uint8)
            patch[:] = c.sclera
            # iris (with a darker ring), pupil and a catch light
            centre = verts[iris[0], :2] - box.origin
            radius = float(np.linalg.norm(verts[list(iris[1:]), :2] - verts[iris[0], :2], axis=1).mean())
            radius = max(radius, 1.0) * 1.05
            _circle(patch, centre, radius, c.iris)
            _circle(patch, centre, radius * 0.72, tuple(0.75 * _rgb(*c.iris)))
            _circle(patch, centre, radius * 0.45, (18, 14, 14))
            _circle(patch, centre + np.array([-0.3, -0.35]) * radius, radius * 0.16, (250, 250, 250))
            # the upper lid shades the top of the opening
            upper = loop[: len(eye) // 2 + 1] - box.origin
            shade = np.zeros(box.shape, np.uint8)
            cv2.polylines(shade, [_fixed(upper)], False, 255, max(int(0.06 * head.scale), 1), cv2.LINE_AA, 4)
            shade = cv2.GaussianBlur(shade, (0, 0), max(0.03 * head.scale, 0.5)).astype(np.float32) / 255
            patch = (patch * (1 - 0.35 * shade[..., None])).astype(np.uint8)
            region = box.view(canvas)
            inside = mask > 0
            region[inside] = patch[inside]
        # lash line on the upper lid, thinner towards the inner corner
        upper_lid = loop[: len(eye) // 2 + 1]
        thickness = max(int(round(0.035 * head.scale)), 1)
        cv2.polylines(canvas, [_fixed(upper_lid)], False, c.lash, thickness, cv2.LINE_AA, 4)
        lower_lid = np.concatenate([loop[:1], loop[len(eye) // 2 :]])
        lower_col = tuple(int(v) for v in (0.7 * _rgb(*c.skin)))
        cv2.polylines(canvas, [_fixed(lower_lid)], False, lower_col, max(thickness // 2, 1), cv2.LINE_AA, 4)

    def _draw_mouth(self, canvas: np.ndarray, verts: np.ndarray, head: _HeadFrame) -> None:
        """Dark interior inside the inner lip contour, with teeth that taper off towards the corners."""
        c = self.config
        upper_lip = verts[list(UPPER_INNER_LIP), :2]
        parting = _colour(0.45 * _rgb(*c.lips))
        thickness = max(int(round(0.02 * head.scale)), 1)
        loop = _chaikin(verts[list(INNER_LIPS), :2], 2)  # round off the contour's corners
        box = _Box.around(loop, pad=4, shape=canvas.shape)
        mask = np.zeros(box.shape if box else (1, 1), np.uint8)
        if box is not None:
            _fill(mask, loop - box.origin, 255)
        if box is None or not mask.any():  # closed: just the line where the lips meet
            cv2.polylines(canvas, [_fixed(upper_lip)], False, parting, thickness, cv2.LINE_AA, 4)
            return
        patch = np.empty((*box.shape, 3), np.uint8)
        patch[:] = c.mouth
        down = head.axis(1)[:2] * head.scale  # one model unit down the face, in pixels
        upper = _resample(upper_lip, 24) - box.origin
        lower = _resample(verts[list(LOWER_INNER_LIP), :2], 24) - box.origin
        u = np.linspace(-1.0, 1.0, 24)[:, None]
        taper = np.clip(1.15 * (1 - u**4), 0, 1)  # teeth fill the middle, the corners stay dark
        width = float(np.linalg.norm(upper[-1] - upper[0]))
        mid = lower[len(lower) // 2]
        # tongue: a rounded hump resting behind the lower teeth
        _ellipse(patch, mid - 0.04 * down, (0.3 * width, 0.09 * head.scale), head.roll_deg, c.tongue)
        lower_edge = lower - c.lower_teeth_iod * taper**2 * down  # mostly hidden by the lower lip
        _fill(patch, np.concatenate([lower, lower_edge[::-1]]), 0.72 * _rgb(*c.teeth))
        upper_edge = upper + c.upper_teeth_iod * taper * down
        _fill(patch, np.concatenate([upper, upper_edge[::-1]]), c.teeth)
        # gaps between the incisors: faint lines near the middle of the upper teeth
        for k in (8, 10, 12, 14, 16):
            cv2.line(
                patch,
                _point(upper[k]),
                _point(upper_edge[k]),
                _colour(0.8 * _rgb(*c.teeth)),
                1,
                cv2.LINE_AA,
                4,
            )
        # the lips shade a narrow opening: a slit shows only darkness, a wide one its teeth
        rim = cv2.GaussianBlur(mask, (0, 0), max(0.03 * head.scale, 0.5)).astype(np.float32) / 255
        patch = (patch * np.clip(1.5 * rim - 0.1, 0.15, 1.0)[..., None]).astype(np.uint8)
        region = box.view(canvas)
        inside = mask > 0
        region[inside] = patch[inside]
        cv2.polylines(canvas, [_fixed(upper_lip)], False, parting, max(thickness // 2, 1), cv2.LINE_AA, 4)


# ---------------------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class _HeadFrame:
    """The head's pose in (supersampled) pixels: projects model-space points that are not in the mesh."""

    rot: np.ndarray  # [3,3]
    trans: np.ndarray  # [3]
    scale: float

    def project(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rot.T + self.trans

    def axis(self, i: int) -> np.ndarray:
        """Unit model axis ``i`` (0 right, 1 down, 2 away) in camera coordinates."""
        return self.rot[:, i]

    @property
    def roll_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.rot[1, 0], self.rot[0, 0])))


@dataclass(frozen=True)
class _Box:
    x0: int
    y0: int
    x1: int
    y1: int

    @classmethod
    def around(cls, pts: np.ndarray, pad: int, shape: tuple[int, ...]) -> _Box | None:
        lo = np.floor(pts.min(0)).astype(int) - pad
        hi = np.ceil(pts.max(0)).astype(int) + pad
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]), shape[1]), min(int(hi[1]), shape[0])
        return cls(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    @property
    def origin(self) -> np.ndarray:
        return np.array([self.x0, self.y0], np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y1 - self.y0, self.x1 - self.x0)

    def view(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0 : self.y1, self.x0 : self.x1]


def _fixed(pts: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> OpenCV fixed point with 4 fractional bits (sub-pixel accurate polygons)."""
    return np.round(np.asarray(pts, np.float64)[:, :2] * 16).astype(np.int32)


def _point(pt: np.ndarray) -> tuple[int, int]:
    return (int(round(float(pt[0]) * 16)), int(round(float(pt[1]) * 16)))


def _resample(curve: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced along an open polyline ``[M,2]`` (by arc length)."""
    seg = np.linalg.norm(np.diff(curve, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 1e-9:
        return np.repeat(curve[:1], n, 0)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, curve[:, 0]), np.interp(t, s, curve[:, 1])], 1)


def _colour(colour) -> tuple[int, ...] | int:
    if np.isscalar(colour):
        return int(colour)
    return tuple(int(round(float(v))) for v in colour)


def _fill(image: np.ndarray, pts: np.ndarray, colour) -> None:
    cv2.fillPoly(image, [_fixed(pts)], _colour(colour), cv2.LINE_8, 4)


def _circle(image: np.ndarray, centre: np.ndarray, radius: float, colour) -> None:
    c = (int(round(centre[0] * 16)), int(round(centre[1] * 16)))
    cv2.circle(image, c, int(round(radius * 16)), _colour(colour), -1, cv2.LINE_AA, 4)


def _ellipse(image: np.ndarray, centre: np.ndarray, axes: tuple[float, float], angle: float, colour) -> None:
    c = (int(round(centre[0] * 16)), int(round(centre[1] * 16)))
    a = (max(int(round(axes[0] * 16)), 1), max(int(round(axes[1] * 16)), 1))
    cv2.ellipse(image, c, a, angle, 0, 360, _colour(colour), -1, cv2.LINE_AA, 4)


def still_params(renderer: FaceRenderer, expression: np.ndarray, fps: float = 25.0) -> ParamSequence:
    """A ParamSequence holding ``expression[T,K]`` in the renderer's default pose (for tests and previews)."""
    expression = np.atleast_2d(np.asarray(expression, np.float32))
    t = len(expression)
    rot, trans, scale = renderer.default_pose()
    return ParamSequence(
        fps=fps, model_id=MODEL_ID, coefficient_names=renderer.model.names, expression=expression,
        rotation=np.tile(rot, (t, 1)), translation=np.tile(trans, (t, 1)), scale=np.full(t, scale, np.float32),
        valid=np.ones(t, bool), frame_size=renderer.size, identity=renderer.model.neutral.numpy(),
    )  # fmt: skip
