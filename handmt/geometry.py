"""Pose geometry: the heatmap and depth codec of the collaborative paper (section 3.1) and the
pinhole camera of its 3D protocol (section 4); docs/design.md, "Pose geometry".

- Heatmaps: `encode_heatmaps` (joints in input pixels -> Gaussian targets), `decode_heatmaps`
  (kornia soft-argmax -> input pixels); `to_heatmap` / `from_heatmap` convert coordinates and
  `gaussian_heatmaps` draws on the heatmap grid.
- Depth: `encode_depth` (z minus the wrist's, in units of depth_scale mm) and `decode_depth`.
- Camera: `project` (numpy, the data pipeline's) and `backproject` (torch, kornia).

A heatmap grid is `stride` times coarser than the input: heatmap pixel i covers input pixels
[i*stride, (i+1)*stride), so its centre is input pixel i*stride + (stride-1)/2.
"""

import numpy as np
import torch
from kornia.geometry.camera import unproject_points
from kornia.geometry.subpix import spatial_soft_argmax2d

from .hand import WRIST

HEATMAP_FLOOR = 0.05  # of the peak value 1; decode_heatmaps ignores what lies below


def to_heatmap(points, stride):
    """Input pixels (..., 2) -> heatmap pixels."""
    return (points - (stride - 1) / 2) / stride


def from_heatmap(points, stride):
    """Heatmap pixels (..., 2) -> input pixels."""
    return points * stride + (stride - 1) / 2


def gaussian_heatmaps(points, height, width, sigma):
    """Unnormalized Gaussians exp(-d^2 / (2 sigma^2)) with peak 1 at `points` (..., 2) in heatmap
    pixels (x, y) -> (..., height, width). A joint outside the grid gives a (near) zero map; a
    grid-normalized Gaussian (kornia's render_gaussian2d) would pile its mass on the border."""
    ys = torch.arange(height, device=points.device, dtype=points.dtype)
    xs = torch.arange(width, device=points.device, dtype=points.dtype)
    dy = (ys - points[..., 1, None]) ** 2
    dx = (xs - points[..., 0, None]) ** 2
    return torch.exp(-(dy[..., :, None] + dx[..., None, :]) / (2 * sigma**2))


def encode_heatmaps(points, stride, height, width, sigma):
    """Joints (..., 2) in input pixels -> target heatmaps (..., height, width), sigma in heatmap
    pixels."""
    return gaussian_heatmaps(to_heatmap(points, stride), height, width, sigma)


def decode_heatmaps(heatmaps, stride):
    """Heatmaps (..., N, h, w) -> joints (..., N, 2) in input pixels: kornia's soft-argmax of
    log(heatmap - HEATMAP_FLOOR), i.e. the mean position of the heatmap above the floor, which is
    the centre of any radially symmetric peak (a Gaussian target decodes to its joint)."""
    maps = heatmaps.reshape(-1, *heatmaps.shape[-3:])
    above = (maps - HEATMAP_FLOOR).clamp_min(1e-12)
    xy = spatial_soft_argmax2d(above.log(), normalized_coordinates=False)
    return from_heatmap(xy.reshape(*heatmaps.shape[:-2], 2), stride)


def encode_depth(joints3d, depth_scale):
    """Joints (..., 21, 3) in mm -> each joint's z minus the wrist's, in units of `depth_scale`
    mm (..., 21)."""
    z = joints3d[..., 2]
    return (z - z[..., WRIST, None]) / depth_scale


def decode_depth(rel_depth, root_depth, depth_scale):
    """Relative depths (..., J) in units of `depth_scale` mm and the wrist's z (...) in mm ->
    each joint's z (..., J) in mm."""
    if root_depth.shape != rel_depth.shape[:-1]:
        raise ValueError(f"root_depth {tuple(root_depth.shape)} must be the leading dims of "
                         f"rel_depth {tuple(rel_depth.shape)}")
    return root_depth[..., None] + rel_depth * depth_scale


def project(points, K):
    """Pinhole projection of camera-frame points (..., 3) with intrinsics K (3, 3) -> pixels
    (..., 2), as float64 numpy arrays."""
    uvw = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def backproject(joints2d, depth, K):
    """Pixels (..., J, 2) and their z (..., J) in mm -> camera-frame points (..., J, 3) in mm:
    X = (u - cx) z / fx, Y = (v - cy) z / fy (kornia's unproject_points). K: (3, 3) or
    (..., 3, 3) whose leading dims are a prefix of those of joints2d (a clip's K (B, 3, 3) serves
    joints (B, T, J, 2))."""
    joints2d = torch.as_tensor(joints2d)
    K = torch.as_tensor(K, device=joints2d.device)
    depth = torch.as_tensor(depth, device=joints2d.device)
    leading = joints2d.shape[:-2]
    if K.shape[-2:] != (3, 3) or K.shape[:-2] != leading[:K.dim() - 2]:
        raise ValueError(f"K {tuple(K.shape)} must be (..., 3, 3) with leading dims a prefix of "
                         f"joints2d's {tuple(leading)}")
    if depth.shape != joints2d.shape[:-1]:
        raise ValueError(f"depth {tuple(depth.shape)} must be {tuple(joints2d.shape[:-1])} for "
                         f"joints2d {tuple(joints2d.shape)}")
    # Give K one axis per leading dim of joints2d; kornia broadcasts it over the joints.
    K = K.reshape(K.shape[:-2] + (1,) * (len(leading) - (K.dim() - 2)) + (3, 3))
    return unproject_points(joints2d, depth[..., None], K)
