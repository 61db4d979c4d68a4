"""Axis-angle <-> rotation matrix, batched and differentiable (Rodrigues)."""

from __future__ import annotations

import torch


def axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:
    """``[...,3]`` axis-angle (radians) -> ``[...,3,3]``; smooth at zero angle."""
    theta2 = (v * v).sum(-1, keepdim=True).clamp_min(1e-12)
    theta = theta2.sqrt()
    k = v / theta
    kx, ky, kz = k.unbind(-1)
    zero = torch.zeros_like(kx)
    cross = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).reshape(*v.shape[:-1], 3, 3)
    sin = torch.sin(theta)[..., None]
    cos = torch.cos(theta)[..., None]
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(cross)
    return eye + sin * cross + (1 - cos) * (cross @ cross)


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """``[...,3,3]`` rotation -> ``[...,3]`` axis-angle (angles below pi)."""
    cos = ((m.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1 + 1e-7, 1 - 1e-7)
    theta = torch.acos(cos)
    axis = torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    sin = torch.sin(theta)[..., None]
    return axis * (theta[..., None] / (2 * sin.clamp_min(1e-7)))
