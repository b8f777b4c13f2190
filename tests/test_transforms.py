import cv2
import numpy as np
import pytest
import torch
from albumentations import HorizontalFlip

from handmt.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipTransform,
    MultiScaleCornerCrop,
    build_train_transform,
    multi_crop_transforms,
    to_tensors,
)
from handmt.geometry import project

SIZE = 48
K = np.array([[60.0, 0.0, 23.5], [0.0, 62.0, 24.0], [0.0, 0.0, 1.0]])
# Joints drawn as dots: integer pixel positions, each with its own depth marker value.
DOTS = {0: (8, 10), 5: (38, 9), 9: (24, 24), 14: (10, 37), 20: (36, 36)}


def dotted_clip(num_frames=3, seed=0):
    """A clip whose joints sit exactly on dots drawn in rgb, depth and mask."""
    rng = np.random.default_rng(seed)
    joints2d = rng.uniform(4, SIZE - 4, size=(num_frames, 21, 2))
    for joint, position in DOTS.items():
        joints2d[:, joint] = position
    z = rng.uniform(300, 600, size=(num_frames, 21, 1))
    rays = np.concatenate([joints2d, np.ones_like(z)], axis=-1) @ np.linalg.inv(K).T
    joints3d = rays * z
    rgb = np.zeros((num_frames, SIZE, SIZE, 3), np.uint8)
    depth = np.zeros((num_frames, SIZE, SIZE), np.uint16)
    mask = np.zeros((num_frames, SIZE, SIZE), np.uint8)
    for joint, (x, y) in DOTS.items():
        rgb[:, y - 1:y + 2, x - 1:x + 2] = 255
        depth[:, y - 1:y + 2, x - 1:x + 2] = 1000 + joint
        mask[:, y - 1:y + 2, x - 1:x + 2] = 255
    return {"rgb": rgb, "depth": depth, "mask": mask, "joints3d": joints3d.astype(np.float32),
            "joints2d": joints2d.astype(np.float32), "K": K.astype(np.float32)}


def centroid(weights):
    ys, xs = np.nonzero(weights)
    w = weights[ys, xs].astype(np.float64)
    return np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])


def test_train_transform_moves_K_joints_and_pixels_together():
    transform = build_train_transform(SIZE, color_jitter=0.0, flip=True)
    clip = dotted_clip()
    flips = checked = 0
    for seed in range(40):
        out = transform(clip, np.random.default_rng(seed))
        # K @ joints3d lands on joints2d, K stays a camera (positive focal lengths)
        np.testing.assert_allclose(project(out["joints3d"], out["K"]), out["joints2d"], atol=1e-3)
        assert out["K"][0, 0] > 0 and out["K"][1, 1] > 0
        # a flip mirrors x of joints3d and keeps the joint order; y, z never change
        flips += np.sign(out["joints3d"][0, 0, 0]) != np.sign(clip["joints3d"][0, 0, 0])
        np.testing.assert_allclose(np.abs(out["joints3d"]), np.abs(clip["joints3d"]), rtol=1e-6)
        np.testing.assert_allclose(out["joints3d"][..., 1:], clip["joints3d"][..., 1:])
        # each visible dot is drawn where joints2d says, in every target (within 1 px)
        for joint in DOTS:
            expected = out["joints2d"][0, joint]
            if not (2 <= expected).all() or not (expected <= SIZE - 3).all():
                continue
            near = np.zeros((SIZE, SIZE), bool)
            x, y = np.rint(expected).astype(int)
            near[max(y - 4, 0):y + 5, max(x - 4, 0):x + 5] = True
            for frame in range(3):
                depth_dot = out["depth"][frame] == 1000 + joint
                assert np.abs(centroid(depth_dot) - expected).max() <= 1.0
                assert np.abs(centroid(out["rgb"][frame, ..., 0] * near) - expected).max() <= 1.0
                assert np.abs(centroid(out["mask"][frame] * near) - expected).max() <= 1.0
            checked += 1
        # nearest interpolation: depth keeps its values, the mask stays binary
        assert set(np.unique(out["depth"])) <= {0, *(1000 + j for j in DOTS)}
        assert set(np.unique(out["mask"])) <= {0, 255}
    assert 5 < flips < 35  # flips happen about half the time
    assert checked > 100  # most dots stay inside the crops


def test_flip_maps_K_exactly():
    out = ClipTransform([HorizontalFlip(p=1.0)])(dotted_clip())
    # x' = (W - 1) - x in pixels; with x mirrored in 3D: fx' = fx, cx' = W - 1 - cx
    np.testing.assert_allclose(out["K"], [[60, 0, 47 - 23.5], [0, 62, 24], [0, 0, 1]], atol=1e-4)
    np.testing.assert_array_equal(out["depth"], dotted_clip()["depth"][:, :, ::-1])


def test_a_clip_without_pose_gets_no_pose_keys():
    clip = dotted_clip()
    plain = {"depth": clip["depth"], "mask": clip["mask"], "pose_valid": np.zeros(3, bool)}
    out = ClipTransform([HorizontalFlip(p=1.0)])(plain)
    assert set(out) == {"depth", "mask", "pose_valid"}
    np.testing.assert_array_equal(out["depth"], clip["depth"][:, :, ::-1])
    np.testing.assert_array_equal(out["mask"], clip["mask"][:, :, ::-1])
    # the same geometry as a clip with pose
    np.testing.assert_array_equal(out["depth"],
                                  ClipTransform([HorizontalFlip(p=1.0)])(clip)["depth"])


def test_multi_scale_corner_crop_choices():
    crop = MultiScaleCornerCrop()
    crop.set_random_seed(0)
    sizes = [224, 196, 168, 149]  # int(224 * s) for s in 1, 7/8, 3/4, 2/3
    seen = set()
    for _ in range(2000):
        x0, y0, x1, y1 = crop.get_params_dependent_on_data({"shape": (224, 224)}, {})["crop_coords"]
        w, h = x1 - x0, y1 - y0
        assert abs(sizes.index(w) - sizes.index(h)) <= 1
        assert (x0, y0) in {(0, 0), (224 - w, 0), (0, 224 - h), (224 - w, 224 - h),
                            ((224 - w) // 2, (224 - h) // 2)}
        seen.add((w, h))
    assert len(seen) == 10  # 4 square pairs + 2 * 3 neighbouring-scale pairs


def test_color_jitter_touches_rgb_only_and_all_frames_alike():
    transform = build_train_transform(SIZE, scales=(1,), color_jitter=1.0)
    clip = dotted_clip()
    clip["rgb"] = np.broadcast_to(np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3),
                                                                     dtype=np.uint8),
                                  clip["rgb"].shape).copy()
    out = transform(clip, np.random.default_rng(3))
    np.testing.assert_array_equal(out["depth"], clip["depth"])
    np.testing.assert_array_equal(out["mask"], clip["mask"])
    np.testing.assert_allclose(out["K"], K, atol=1e-4)
    assert np.abs(out["rgb"].astype(int) - clip["rgb"]).mean() > 1
    assert (out["rgb"] == out["rgb"][:1]).all()


def test_same_seed_same_clip():
    transform = build_train_transform(SIZE, flip=True)
    first = transform(dotted_clip(), np.random.default_rng(7))
    second = transform(dotted_clip(), np.random.default_rng(7))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_three_crops():
    size = 56  # resized to round(56 * 8 / 7) = 64; crops at 0, (64 - 56) // 2 = 4, 64 - 56 = 8
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    joints3d = np.tile(np.array([10.0, -5.0, 400.0], np.float32), (2, 21, 1))
    clip = {"rgb": rgb, "joints3d": joints3d, "K": K.astype(np.float32),
            "joints2d": project(joints3d, K).astype(np.float32)}
    crops = multi_crop_transforms(size, 3)
    resized = cv2.resize(rgb[0], (64, 64), interpolation=cv2.INTER_LINEAR)
    for transform, corner in zip(crops, (0, 4, 8), strict=True):
        out = transform(clip)
        np.testing.assert_array_equal(out["rgb"][0], resized[corner:corner + size,
                                                             corner:corner + size])
        # scale 64 / 56 then shift by the corner: fx' = fx * 8 / 7, cx' = cx * 8 / 7 - corner
        expected_K = [[60 * 8 / 7, 0, 23.5 * 8 / 7 - corner], [0, 62 * 8 / 7, 24 * 8 / 7 - corner],
                      [0, 0, 1]]
        np.testing.assert_allclose(out["K"], expected_K, atol=1e-4)
        np.testing.assert_allclose(out["joints2d"], project(joints3d, expected_K), atol=1e-3)
    assert multi_crop_transforms(size, 1) == [None]
    with pytest.raises(ValueError, match="crops must be 1 or 3, got 2"):
        multi_crop_transforms(size, 2)


def test_to_tensors_values():
    sample = {"rgb": np.array([[[[255, 0, 128]]]], np.uint8),
              "depth": np.array([[[0, 500, 1500]]], np.uint16),
              "mask": np.array([[[0, 255]]], np.uint8),
              "label": np.int64(3), "pose_valid": np.array([True])}
    out = to_tensors(sample, max_depth_mm=1000.0)
    expected_rgb = (np.array([1, 0, 128 / 255]) - IMAGENET_MEAN) / IMAGENET_STD
    assert out["rgb"].shape == (1, 3, 1, 1) and out["rgb"].dtype == torch.float32
    np.testing.assert_allclose(out["rgb"].flatten(), expected_rgb, rtol=1e-6)
    assert out["depth"].shape == (1, 1, 1, 3)
    np.testing.assert_allclose(out["depth"].flatten(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(out["mask"].flatten(), [0.0, 1.0])
    assert out["label"].dtype == torch.int64 and out["label"].item() == 3
    assert out["pose_valid"].dtype == torch.bool
