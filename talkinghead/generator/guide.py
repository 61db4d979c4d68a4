"""Geometry guide: the posed mesh rasterized into per-pixel maps the generator can read.

For each crop pixel we find the front-most triangle (painter's algorithm with OpenCV's C polygon
filler, far to near), its barycentric coordinates, and from those:

- ``canonical`` (3 ch): where on the subject's neutral face this pixel is, normalised to [-1, 1];
  it sticks to the skin as the face moves, so a texture indexed by it holds personal detail;
- region masks (``face``, ``lips``, ``mouth_inner``, ``eyes``, ``irises``, ``brows``);
- ``depth`` (1 ch): relative depth, which tells the network about shading and occlusion;
- ``head`` (2 ch): the pixel's position on a plane rigidly attached to the head (through the
  model origin, facing the camera in the neutral pose). Hair, ears and upper teeth move with it.

The MediaPipe mesh has holes at the eyes and the mouth; they are closed with strip triangles between
the upper and lower contours so the eyes and the mouth interior get coordinates and masks too.
Pixel convention: continuous coordinates, pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

# Ordered MediaPipe Face Mesh contours: each loop runs corner -> upper lid/lip -> corner -> lower.
_MP_INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
_MP_RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
_MP_LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
_MP_OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
_MP_RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
_MP_LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
_MP_IRISES = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))  # centre then 4 rim points
_MP_VERTICES = 478

MASK_NAMES = ("face", "lips", "mouth_inner", "eyes", "irises", "brows")
CHANNEL_NAMES = ("canon_x", "canon_y", "canon_z", *MASK_NAMES, "depth", "head_x", "head_y")
GUIDE_CHANNELS = len(CHANNEL_NAMES)
_BIT = {name: 1 << i for i, name in enumerate(MASK_NAMES)}


@dataclass(frozen=True)
class GuideConfig:
    # The head-rigid plane spans this many half face widths either side: the crop is ~1.9 face
    # widths across, so 2.5 keeps the whole crop inside [-1, 1] even for a rotated head.
    head_extent: float = 2.5
    # Depth is divided by this fraction of the crop size: a face is ~half the crop deep-ish wide,
    # so depth values land near [-1, 1].
    depth_scale: float = 0.25
    # Barycentrics of OpenCV's boundary pixels may fall a bit outside the triangle; clamp them.
    bary_eps: float = 1e-6
    # The mesh silhouette is softened over this fraction of the crop (Gaussian sigma): the face mask
    # ramps down and canonical coordinates and depth continue a little past the edge, so the network
    # sees no step at the hairline or jaw line that would print as a seam at unseen poses.
    edge_soften: float = 0.02


@dataclass
class Raster:
    """Front-most triangle per pixel (``-1``: none), and for the covered pixels (sparse, in the order
    of ``np.nonzero``) their triangle, barycentric weights and interpolated depth."""

    tri_id: np.ndarray  # [H,W] int32
    rows: np.ndarray  # [n] covered pixels
    cols: np.ndarray  # [n]
    tri: np.ndarray  # [n] triangle of each covered pixel
    bary: np.ndarray  # [n,3] float32 barycentric weights of the pixel centre
    z: np.ndarray  # [n] float32 interpolated depth (pixels)

    @property
    def covered(self) -> np.ndarray:
        return self.tri_id >= 0

    @property
    def depth(self) -> np.ndarray:
        """``[H,W]`` depth map, +inf off the mesh."""
        out = np.full(self.tri_id.shape, np.inf, np.float32)
        out[self.rows, self.cols] = self.z
        return out


def _strip(loop: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """Triangulate a lens-shaped loop (corner, upper..., corner, lower...) as a strip."""
    n = len(loop)
    half = n // 2
    upper = list(loop[: half + 1])  # corner a .. corner b
    lower = [loop[0]] + list(reversed(loop[half:]))  # corner a, lower from a's side .. corner b
    tris = []
    i = j = 0
    while i < len(upper) - 1 or j < len(lower) - 1:
        if j >= len(lower) - 1 or (i < len(upper) - 1 and i <= j):
            tris.append((upper[i], upper[i + 1], lower[j]))
            i += 1
        else:
            tris.append((upper[i], lower[j + 1], lower[j]))
            j += 1
    return [t for t in tris if len(set(t)) == 3]


@dataclass
class MeshTopology:
    """What the rasterizer needs from a morphable model: triangles (holes closed), regions, canonical."""

    triangles: np.ndarray  # [F,3] int64
    tri_bits: np.ndarray  # [F] int32 bitmask of MASK_NAMES per triangle
    canonical: np.ndarray  # [N,3] float32 in [-1, 1]
    irises: tuple[tuple[int, ...], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(
        cls, neutral: np.ndarray, triangles: np.ndarray, regions: dict[str, np.ndarray]
    ) -> MeshTopology:
        neutral = np.asarray(neutral, np.float32)
        tris = [tuple(int(v) for v in t) for t in np.asarray(triangles)]
        bits = [0] * len(tris)
        mediapipe = len(neutral) == _MP_VERTICES

        def in_region(names: tuple[str, ...]) -> set[int]:
            out: set[int] = set()
            for name in names:
                out.update(int(i) for i in regions.get(name, ()))
            return out

        if mediapipe:
            # a triangle belongs to a region when its centroid lies inside the region's outline on the
            # neutral face (the lip and brow point sets alone miss the mesh's middle rows)
            outlines = {"lips": (_MP_OUTER_LIPS,), "brows": (_MP_RIGHT_BROW, _MP_LEFT_BROW)}
            centroids = neutral[np.array(tris)][:, :, :2].mean(1)
            for bit, loops in outlines.items():
                for loop in loops:
                    poly = neutral[list(loop), :2].astype(np.float32)
                    for k, c in enumerate(centroids):
                        if cv2.pointPolygonTest(poly, (float(c[0]), float(c[1])), False) > 0:
                            bits[k] |= _BIT[bit]
        else:
            for bit, names in (("lips", ("lips",)), ("brows", ("left_brow", "right_brow"))):
                members = in_region(names)
                for k, t in enumerate(tris):
                    if members and all(v in members for v in t):
                        bits[k] |= _BIT[bit]
        if mediapipe:
            for loop, bit in (
                (_MP_INNER_LIPS, "mouth_inner"),
                (_MP_RIGHT_EYE, "eyes"),
                (_MP_LEFT_EYE, "eyes"),
            ):
                for t in _strip(loop):
                    tris.append(t)
                    bits.append(_BIT[bit])
            irises = _MP_IRISES if len(neutral) >= _MP_VERTICES else ()
        else:
            irises = ()
        bits = [b | _BIT["face"] for b in bits]
        face = neutral[:468] if mediapipe else neutral  # irises move with gaze: keep them out of the frame
        lo, hi = face.min(0), face.max(0)
        centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6)
        canonical = ((neutral - centre) / half).astype(np.float32)
        return cls(np.array(tris, np.int64), np.array(bits, np.int32), canonical, irises,
                   {"centre": centre, "half": float(half)})  # fmt: skip

    @classmethod
    def from_model(cls, model: Any) -> MeshTopology:
        neutral = model.neutral.detach().cpu().numpy() if torch.is_tensor(model.neutral) else model.neutral
        return cls.from_arrays(neutral, np.asarray(model.triangles), dict(model.regions))


class GuideRasterizer:
    """Rasterize posed meshes (crop pixel coordinates) into guide maps, fast enough for real time on a CPU."""

    def __init__(self, topology: MeshTopology, config: GuideConfig | None = None) -> None:
        self.topology = topology
        self.config = config or GuideConfig()
        masks = np.stack([(topology.tri_bits & _BIT[name]) > 0 for name in MASK_NAMES], 1)
        # per triangle: canonical coordinates of its corners [F,3,3] and its region masks [F,M]
        self._tri_canon = topology.canonical[topology.triangles].astype(np.float32)
        self._tri_masks = masks.astype(np.float32)

    # ------------------------------------------------------------ rasterizing
    def rasterize(self, vertices: np.ndarray, size: int) -> Raster:
        """Front-most triangle and barycentrics per pixel for one mesh ``vertices[N,3]`` (x, y, z pixels)."""
        verts = np.asarray(vertices, np.float64)
        corners = verts[self.topology.triangles]  # [F,3,3]
        xy = corners[..., :2]
        # keep triangles that touch the crop and are not degenerate
        lo, hi = xy.min(1), xy.max(1)
        e1, e2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
        area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        keep = (hi >= 0).all(1) & (lo < size).all(1) & (np.abs(area) > 1e-9)
        order = np.nonzero(keep)[0]
        order = order[np.argsort(-corners[order, :, 2].mean(1), kind="stable")]  # far first
        ids = np.zeros((size, size), np.int32)
        fixed = np.round((xy - 0.5) * 16).astype(np.int32)  # 4 fractional bits, pixel centres at .5
        fill = cv2.fillConvexPoly
        for k in order.tolist():
            fill(ids, fixed[k], k + 1, cv2.LINE_8, 4)
        rows, cols = np.nonzero(ids)
        t = ids[rows, cols] - 1
        px = np.stack([cols + 0.5, rows + 0.5], 1) - xy[t, 0]
        a, b, det = e1[t], e2[t], area[t]
        l1 = (px[:, 0] * b[:, 1] - px[:, 1] * b[:, 0]) / det
        l2 = (a[:, 0] * px[:, 1] - a[:, 1] * px[:, 0]) / det
        w = np.stack([1 - l1 - l2, l1, l2], 1).clip(self.config.bary_eps, None)
        w /= w.sum(1, keepdims=True)
        z = (w * corners[t, :, 2]).sum(1)
        return Raster(ids - 1, rows, cols, t, w.astype(np.float32), z.astype(np.float32))

    def interpolate(self, raster: Raster, attributes: np.ndarray) -> np.ndarray:
        """Barycentric interpolation of per-vertex ``attributes[N,C]`` -> ``[H,W,C]`` (zeros off the mesh)."""
        attrs = np.asarray(attributes, np.float32)
        out = np.zeros((*raster.tri_id.shape, attrs.shape[1]), np.float32)
        vals = attrs[self.topology.triangles[raster.tri]]  # [n,3,C]
        out[raster.rows, raster.cols] = np.einsum("pk,pkc->pc", raster.bary, vals)
        return out

    # ----------------------------------------------------------------- guide
    def guide(
        self,
        vertices: np.ndarray,
        size: int,
        head_affine: np.ndarray | None = None,
        raster: Raster | None = None,
    ) -> np.ndarray:
        """All guide channels ``[GUIDE_CHANNELS, H, W]`` float32 for one posed mesh (a channels-last view).

        ``head_affine`` ``[2,3]`` maps crop pixels to head-plane model coordinates (see
        ``head_plane_affine``); without it the head channels stay zero. ``raster`` reuses a
        rasterization of the same mesh.
        """
        out = np.zeros((size, size, GUIDE_CHANNELS), np.float32)
        self.guide_into(out, vertices, head_affine, raster)
        return out.transpose(2, 0, 1)

    def guide_into(
        self,
        out: np.ndarray,
        vertices: np.ndarray,
        head_affine: np.ndarray | None = None,
        raster: Raster | None = None,
    ) -> Raster:
        """Fill a zeroed channels-last ``out [H,W,GUIDE_CHANNELS]``; returns the raster used."""
        size = out.shape[0]
        raster = self.rasterize(vertices, size) if raster is None else raster
        t, w = raster.tri, raster.bary
        n_mask = len(MASK_NAMES)
        feat = np.empty((len(t), 4 + n_mask), np.float32)  # canonical, masks, depth per covered pixel
        np.einsum("pk,pkc->pc", w, self._tri_canon[t], out=feat[:, :3])
        feat[:, 3 : 3 + n_mask] = self._tri_masks[t]
        zc = float(np.median(np.asarray(vertices)[:, 2]))
        feat[:, 3 + n_mask] = (raster.z - zc) / (self.config.depth_scale * size)
        out[raster.rows, raster.cols, : 4 + n_mask] = feat
        if self.config.edge_soften > 0 and len(t):
            self._soften_edge(out, raster)
        if self.topology.irises:
            iris = 3 + MASK_NAMES.index("irises")
            out[..., iris] = self._iris_mask(vertices, size) * out[..., 3 + MASK_NAMES.index("eyes")]
        if head_affine is not None:
            self.head_map(head_affine, size, out[..., -2:])
        return raster

    def _soften_edge(self, out: np.ndarray, raster: Raster) -> None:
        """Soft face mask; canonical coordinates and depth extended outwards by normalised blurring.

        Works inside the face's bounding box grown by three sigmas (nothing changes further out).
        """
        size = out.shape[0]
        sigma = self.config.edge_soften * size
        pad = int(np.ceil(3 * sigma)) + 1
        r0, r1 = max(int(raster.rows.min()) - pad, 0), min(int(raster.rows.max()) + pad + 1, size)
        c0, c1 = max(int(raster.cols.min()) - pad, 0), min(int(raster.cols.max()) + pad + 1, size)
        win = out[r0:r1, c0:c1]
        face = 3 + MASK_NAMES.index("face")
        depth = 3 + len(MASK_NAMES)
        hard = win[..., face].copy()
        soft = cv2.GaussianBlur(hard, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
        values = np.concatenate([win[..., :3], win[..., depth : depth + 1]], -1)  # zero off the face
        spread = cv2.GaussianBlur(values, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
        extended = spread / np.maximum(soft, 1e-6)[..., None]
        # masked copies rather than boolean indexing: this runs for every rendered frame
        np.copyto(extended, 0.0, where=(soft <= 0.02)[..., None])
        np.copyto(extended, values, where=(hard > 0)[..., None])  # exact values on the mesh itself
        win[..., :3] = extended[..., :3]
        win[..., depth] = extended[..., 3]
        win[..., face] = soft

    def _iris_mask(self, vertices: np.ndarray, size: int) -> np.ndarray:
        mask = np.zeros((size, size), np.uint8)
        for ring in self.topology.irises:
            pts = np.asarray(vertices)[list(ring), :2]
            centre = pts[0]
            radius = float(np.linalg.norm(pts[1:] - centre, axis=1).mean())
            c = np.round((centre - 0.5) * 16).astype(int)
            cv2.circle(mask, (int(c[0]), int(c[1])), max(int(round(radius * 16)), 1), 1, -1, cv2.LINE_8, 4)
        return mask

    def head_map(self, affine: np.ndarray, size: int, out: np.ndarray | None = None) -> np.ndarray:
        """Head-plane coordinates ``[H,W,2]`` of each pixel centre, normalised to about [-1, 1]."""
        c = (np.arange(size, dtype=np.float32) + 0.5)[None, :]
        r = (np.arange(size, dtype=np.float32) + 0.5)[:, None]
        a = np.asarray(affine, np.float32)
        centre, half = self.topology.extra["centre"], self.topology.extra["half"] * self.config.head_extent
        out = np.empty((size, size, 2), np.float32) if out is None else out
        out[..., 0] = (a[0, 0] * c + a[0, 1] * r + (a[0, 2] - centre[0])) / half
        out[..., 1] = (a[1, 0] * c + a[1, 1] * r + (a[1, 2] - centre[1])) / half
        return out


def head_plane_affine(origin: np.ndarray, x_axis: np.ndarray, y_axis: np.ndarray) -> np.ndarray:
    """Affine ``[2,3]`` from crop pixels to head-plane coordinates.

    Inputs are the crop-pixel projections (x, y) of the model-space points (0,0,0), (1,0,0), (0,1,0)
    under the frame's pose: enough to invert any weak-perspective camera on the plane z = 0.
    """
    m = np.stack([x_axis[:2] - origin[:2], y_axis[:2] - origin[:2]], 1).astype(np.float64)  # plane -> pixel
    inv = np.linalg.inv(m)
    return np.concatenate([inv, -(inv @ origin[:2])[:, None]], 1).astype(np.float32)
