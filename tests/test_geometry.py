"""The pose codec and camera geometry (handmt/geometry.py)."""

import math

import numpy as np
import pytest
import torch

from handmt.geometry import (
    backproject,
    decode_depth,
    decode_heatmaps,
    encode_depth,
    encode_heatmaps,
    from_heatmap,
    gaussian_heatmaps,
    project,
    to_heatmap,
)


def test_heatmap_geometry_by_hand():
    # stride 4: heatmap pixel 0 covers input pixels 0..3, centre 1.5
    assert to_heatmap(torch.tensor([1.5, 5.5]), 4).tolist() == [0.0, 1.0]
    assert from_heatmap(torch.tensor([2.0]), 4).item() == 9.5
    maps = gaussian_heatmaps(torch.tensor([[2.0, 1.0]]), 4, 5, sigma=1.0)[0]
    assert maps[1, 2] == 1.0  # row y = 1, column x = 2
    assert maps[1, 3] == pytest.approx(math.exp(-0.5))
    assert maps[3, 4] == pytest.approx(math.exp(-(4 + 4) / 2))


def test_encoded_peak_sits_on_the_heatmap_pixel_of_the_joint():
    # stride 4: input pixel (x 13.5, y 5.5) is the centre of heatmap pixel (x 3, y 1)
    maps = encode_heatmaps(torch.tensor([[13.5, 5.5], [1.5, 1.5]]), 4, 6, 8, sigma=1.5)
    assert maps.shape == (2, 6, 8)
    assert maps[0, 1, 3] == 1.0 and maps[0].argmax() == 1 * 8 + 3
    assert maps[1, 0, 0] == 1.0 and maps[1].argmax() == 0
    # stride 2: input pixel 5.5 lies half way between heatmap pixels 2 and 3
    row = encode_heatmaps(torch.tensor([5.5, 0.5]), 2, 1, 6, sigma=1.0)[0]
    assert row[2] == row[3] == pytest.approx(math.exp(-0.25 / 2))


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_encode_then_decode_returns_the_joint(stride):
    g = torch.Generator().manual_seed(stride)
    h, w = 12, 16
    # sub-pixel positions at least 4 heatmap pixels from the border, so the Gaussian above the
    # decoding floor lies inside the grid
    centres = torch.rand(2, 3, 21, 2, generator=g) * torch.tensor([w - 8.0, h - 8.0]) + 4
    joints = from_heatmap(centres, stride)
    decoded = decode_heatmaps(encode_heatmaps(joints, stride, h, w, sigma=1.5), stride)
    assert decoded.shape == joints.shape
    assert (decoded - joints).abs().max() < 0.01 * stride  # a hundredth of a heatmap pixel


def test_decode_takes_any_leading_dims():
    joints = torch.tensor([[[20.3, 17.9], [30.0, 25.2]]])  # (1, 2, 2)
    maps = encode_heatmaps(joints, 2, 24, 24, sigma=1.5)
    batched = decode_heatmaps(maps[None, None].expand(3, 2, -1, -1, -1, -1), 2)
    assert batched.shape == (3, 2, 1, 2, 2)
    assert torch.equal(batched[2, 1], decode_heatmaps(maps, 2))


def test_depth_codec_by_hand():
    joints = torch.zeros(1, 1, 21, 3)
    joints[..., 2] = 500.0
    joints[0, 0, 8, 2] = 450.0  # thumb tip 50 mm nearer than the wrist
    rel = encode_depth(joints, 100.0)
    assert rel[0, 0, 0] == 0 and rel[0, 0, 8] == pytest.approx(-0.5)
    assert torch.equal(decode_depth(rel, joints[..., 0, 2], 100.0), joints[..., 2])
    with pytest.raises(ValueError, match=r"root_depth \(1,\) must be the leading dims"):
        decode_depth(rel, torch.zeros(1), 100.0)


def test_project_then_backproject_returns_the_points():
    rng = np.random.default_rng(1)
    points = rng.uniform([-80, -60, 300], [80, 60, 700], size=(2, 3, 21, 3))  # (B, T, 21, 3)
    # One K per clip, as a batch of the data contract carries it.
    K = np.array([[[500.0, 0, 160], [0, 480, 120], [0, 0, 1]],
                  [[300.0, 0, 112], [0, 310, 100], [0, 0, 1]]])
    joints2d = np.stack([project(clip, k) for clip, k in zip(points, K, strict=True)])
    x, y, z = points[0, 0, 5]
    np.testing.assert_allclose(joints2d[0, 0, 5], [500 * x / z + 160, 480 * y / z + 120])
    recovered = backproject(torch.from_numpy(joints2d), torch.from_numpy(points[..., 2]),
                            torch.from_numpy(K))
    np.testing.assert_allclose(recovered.numpy(), points, atol=1e-4)
    # A single (3, 3) K serves every frame.
    single = backproject(torch.from_numpy(joints2d[0]), torch.from_numpy(points[0, ..., 2]),
                         torch.from_numpy(K[0]))
    np.testing.assert_allclose(single.numpy(), points[0], atol=1e-4)


def test_backproject_names_mismatched_shapes():
    joints2d, depth = torch.zeros(2, 3, 21, 2), torch.ones(2, 3, 21)
    with pytest.raises(ValueError, match=r"K \(3, 3, 3\) must be"):
        backproject(joints2d, depth, torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ValueError, match=r"depth \(2, 3\) must be \(2, 3, 21\)"):
        backproject(joints2d, depth[..., 0], torch.eye(3))
