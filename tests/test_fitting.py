"""The fitter recovers known parameters, and fits real footage far better than a rigid fit."""

import numpy as np
import pytest
import torch

from talkinghead.morphable.fitting import Fitter, interpolate_missing
from talkinghead.morphable.model import MorphableModel
from talkinghead.morphable.rotation import axis_angle_to_matrix


def synthetic_sequence(model, frames=60, seed=0):
    """Smooth, sparse random expressions and head poses, like a real performance."""
    rng = np.random.default_rng(seed)
    keys = np.arange(0, frames + 10, 10)
    active = rng.random((len(keys), model.n_coefficients)) < 0.15
    values = active * rng.uniform(0, 0.8, (len(keys), model.n_coefficients))
    t = np.arange(frames)
    expr = np.stack([np.interp(t, keys, values[:, k]) for k in range(model.n_coefficients)], 1)
    rot_keys = rng.uniform(-1, 1, (len(keys), 3)) * np.radians([15, 20, 8])
    rot = np.stack([np.interp(t, keys, rot_keys[:, j]) for j in range(3)], 1)
    trans = np.stack([256 + 10 * np.sin(t / 9), 240 + 5 * np.cos(t / 7), np.zeros(frames)], 1)
    scale = np.full(frames, 110.0)
    return [torch.as_tensor(a, dtype=torch.float32) for a in (expr, rot, trans, scale)]


def rotation_error_deg(a, b):
    rel = axis_angle_to_matrix(torch.as_tensor(a)).transpose(1, 2) @ axis_angle_to_matrix(torch.as_tensor(b))
    cos = ((rel.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cos)).numpy()


def test_recovers_known_parameters_under_landmark_noise():
    model = MorphableModel.default()
    expr, rot, trans, scale = synthetic_sequence(model)
    with torch.no_grad():
        points = model.vertices(expr, rot, trans, scale).numpy()
    face_height = np.linalg.norm(points[:, 10, :2] - points[:, 152, :2], axis=1).mean()
    noisy = points + np.random.default_rng(1).normal(0, 0.005 * face_height, points.shape).astype(np.float32)
    fit = Fitter(model).fit(noisy)
    assert np.abs(fit.expression - expr.numpy()).mean() < 0.05
    assert rotation_error_deg(fit.rotation, rot).mean() < 1.0
    assert np.abs(fit.scale - 110).mean() < 2.0


def test_interpolates_lost_frames():
    lm = np.zeros((5, 478, 3), np.float32)
    lm[:, :, 0] = np.arange(5)[:, None]
    lm[2] = np.nan
    filled, valid = interpolate_missing(lm)
    assert valid.tolist() == [True, True, False, True, True]
    assert np.allclose(filled[2, :, 0], 2.0)


@pytest.mark.slow
def test_real_clip_full_fit_beats_rigid(tracked_talk):
    result = tracked_talk
    lm = result.landmarks
    fitter = Fitter(result.model)
    full = fitter.fit(lm)
    rigid = fitter.fit(lm, fixed=frozenset(result.model.names))
    e_full = fitter.reprojection_error(lm, full).mean()
    e_rigid = fitter.reprojection_error(lm, rigid).mean()
    assert e_full < 0.5 * e_rigid
    assert e_full < 0.015
    assert result.params.metadata["reprojection_error_iod"] == pytest.approx(e_full, rel=0.2)
