"""Geometry guide rasterizer and generator network."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.generator.conditioning import Conditioner
from talkinghead.generator.guide import (
    GUIDE_CHANNELS,
    MASK_NAMES,
    GuideRasterizer,
    MeshTopology,
    head_plane_affine,
)
from talkinghead.generator.network import Generator, GeneratorConfig
from talkinghead.morphable.model import MorphableModel

SIZE = 128
# one thread: on a shared 2-core machine OpenMP's spinning threads slow small ops down 10x
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> MorphableModel:
    return MorphableModel.default()


@pytest.fixture(scope="module")
def rasterizer(model) -> GuideRasterizer:
    return GuideRasterizer(MeshTopology.from_model(model))


def _posed(model, jaw: float = 0.0, scale: float = 30.0) -> np.ndarray:
    expr = torch.zeros(len(model.names))
    expr[model.index("jawOpen")] = jaw
    verts = model.vertices(expr, torch.zeros(3), torch.tensor([SIZE / 2, SIZE / 2, 0.0]), torch.tensor(scale))
    return verts.numpy()


def _mask(guide: np.ndarray, name: str) -> np.ndarray:
    return guide[3 + MASK_NAMES.index(name)] > 0.5


def test_single_triangle_barycentrics_reproduce_positions():
    topo = MeshTopology.from_arrays(
        np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2]]), {}
    )
    rast = GuideRasterizer(topo)
    verts = np.array([[4.0, 4.0, 1.0], [60.0, 10.0, 2.0], [10.0, 55.0, 3.0]])
    raster = rast.rasterize(verts, 64)
    assert raster.covered.sum() > 1000  # area ~ 1500 px
    pos = rast.interpolate(raster, verts)
    rows, cols = np.nonzero(raster.covered)
    # interpolating the vertex positions gives back each pixel centre: exactly inside the triangle,
    # within a pixel on the border (OpenCV fills border pixels whose centres fall just outside)
    err = np.hypot(pos[rows, cols, 0] - (cols + 0.5), pos[rows, cols, 1] - (rows + 0.5))
    assert err.max() < 1.0
    assert np.median(err) < 1e-3
    assert not raster.covered[60, 60] and raster.tri_id[60, 60] == -1


def test_nearer_triangle_wins(rasterizer):
    topo = MeshTopology.from_arrays(np.zeros((6, 3), np.float32), np.array([[0, 1, 2], [3, 4, 5]]), {})
    rast = GuideRasterizer(topo)
    far = [[0, 0, 10], [40, 0, 10], [0, 40, 10]]
    near = [[5, 5, 1], [40, 5, 1], [5, 40, 1]]
    raster = rast.rasterize(np.array(far + near, float), 48)
    assert raster.tri_id[10, 10] == 1  # overlapping area: the near triangle
    assert raster.tri_id[2, 2] == 0  # only the far one covers this corner


def test_region_masks_cover_the_right_areas(model, rasterizer):
    closed = rasterizer.guide(_posed(model, 0.0), SIZE)
    opened = rasterizer.guide(_posed(model, 1.0), SIZE)
    assert closed.shape == (GUIDE_CHANNELS, SIZE, SIZE)
    face = _mask(closed, "face")
    assert 0.15 < face.mean() < 0.6
    for name in ("lips", "eyes", "irises", "brows"):
        assert _mask(closed, name).sum() > 5, name
        assert (_mask(closed, name) <= face).all(), f"{name} outside the face"
    rows = lambda m: np.nonzero(m.any(1))[0]  # noqa: E731
    # brows above eyes above lips (y grows downwards)
    assert (
        rows(_mask(closed, "brows")).mean()
        < rows(_mask(closed, "eyes")).mean()
        < rows(_mask(closed, "lips")).mean()
    )
    assert (_mask(closed, "irises") <= _mask(closed, "eyes")).all()
    # an open jaw opens the mouth hole, which sits between the lips
    assert _mask(opened, "mouth_inner").sum() > 3 * max(_mask(closed, "mouth_inner").sum(), 1)
    lips_rows = rows(_mask(opened, "lips"))
    inner_rows = rows(_mask(opened, "mouth_inner"))
    assert lips_rows.min() < inner_rows.mean() < lips_rows.max()
    # canonical coordinates are normalised; they continue a little past the silhouette (soft edge)
    # and are zero further out
    assert np.abs(closed[:3]).max() <= 1.0 + 1e-5
    near = cv2.dilate(face.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert np.all(closed[:3, ~near] == 0)
    ring = cv2.dilate(face.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~face
    assert (np.abs(closed[:3, ring]).sum(0) > 0).mean() > 0.9


def test_head_plane_affine_inverts_projection():
    origin, xa, ya = np.array([50.0, 40, 0]), np.array([70.0, 42, 0]), np.array([48.0, 61, 0])
    aff = head_plane_affine(origin, xa, ya)
    for point, expected in ((origin, (0, 0)), (xa, (1, 0)), (ya, (0, 1))):
        np.testing.assert_allclose(aff[:, :2] @ point[:2] + aff[:, 2], expected, atol=1e-5)


def test_generator_shapes_and_round_trip(tmp_path, model):
    cond = Conditioner(model, 64)
    config = GeneratorConfig(resolution=64, param_dim=cond.param_dim, hidden=16, texture_coarse=8)
    gen = Generator(config).eval()
    with torch.no_grad():  # make the zero-initialised parts non-trivial so the round trip means something
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    n = 3
    params = np.zeros((n, len(model.names)), np.float32)
    params[:, model.index("jawOpen")] = [0.0, 0.5, 1.0]
    batch = cond.build(params, np.zeros((n, 3)), np.tile([[32.0, 32, 0]], (n, 1)), np.full(n, 12.0), None,
                       np.tile([[0, 0, 64]], (n, 1)))  # fmt: skip
    with torch.inference_mode():
        rgb, alpha = gen(batch.guide, batch.params)
    assert rgb.shape == (n, 3, 64, 64) and alpha.shape == (n, 1, 64, 64)
    assert 0 <= float(rgb.min()) and float(rgb.max()) <= 1
    assert not torch.allclose(rgb[0], rgb[2])  # the parameters change the picture
    gen.save_pretrained(tmp_path / "g")
    again = Generator.from_pretrained(tmp_path / "g").eval()
    with torch.inference_mode():
        rgb2, alpha2 = again(batch.guide, batch.params)
    assert torch.equal(rgb, rgb2) and torch.equal(alpha, alpha2)


def test_generator_strided_path_and_bad_resolution():
    gen = Generator(GeneratorConfig(resolution=256, hidden=8, texture_coarse=8, screen_grid=8)).eval()
    assert gen.config.stride == 2
    with torch.inference_mode():
        rgb, alpha = gen(torch.zeros(1, GUIDE_CHANNELS, 256, 256), torch.zeros(1, 59))
    assert rgb.shape == (1, 3, 256, 256)
    with pytest.raises(TalkingHeadError, match="unsupported resolution"):
        GeneratorConfig(resolution=300)


def test_from_pretrained_rejects_missing_folder(tmp_path):
    with pytest.raises(TalkingHeadError, match="cannot read the generator"):
        Generator.from_pretrained(tmp_path / "nothing")


def test_fast_inference_path_matches_the_training_path():
    gen = Generator(GeneratorConfig(resolution=256, hidden=16, texture_coarse=8, screen_grid=8))
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    guide = torch.rand(2, GUIDE_CHANNELS, 256, 256) * 2 - 1
    params = torch.randn(2, 59)
    gen.train()
    rgb_train, alpha_train = gen(guide, params)  # autograd path
    gen.eval()
    with torch.inference_mode():
        rgb_fast, alpha_fast = gen(guide, params)  # fused, cached path
        rgb_again, _ = gen(guide, params)  # from the caches
    assert torch.allclose(rgb_train, rgb_fast, atol=1e-5) and torch.allclose(
        alpha_train, alpha_fast, atol=1e-5
    )
    assert torch.equal(rgb_fast, rgb_again)


@pytest.mark.parametrize("resolution", [64, 256])
def test_patch_renders_like_the_whole_crop(resolution):
    gen = Generator(GeneratorConfig(resolution=resolution, hidden=16, texture_coarse=8, screen_grid=8))
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    guide = torch.rand(1, GUIDE_CHANNELS, resolution, resolution) * 2 - 1
    params = torch.randn(1, 59)
    top, left, size = resolution // 4, resolution // 8, resolution // 2
    with torch.no_grad():
        whole, _ = gen(guide, params)
        patch, _ = gen(guide[..., top : top + size, left : left + size], params, (top, left))
    inner = (
        slice(None),
        slice(None),
        slice(2, -2),
        slice(2, -2),
    )  # the 3x3 refinement sees padding at the edge
    expected = whole[..., top : top + size, left : left + size]
    assert torch.allclose(patch[inner], expected[inner], atol=1e-5)
