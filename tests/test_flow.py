"""Optical flow (flow.py): Farneback on a translating texture, the frame pairs, the geometry of
augmentation (flip negates x, resize scales), normalization, the cache, and FPHA items on a tiny
synthetic set."""

import warnings

import cv2
import numpy as np
import pytest
import torch
from albumentations import HorizontalFlip, Resize

from handmt.data import build_dataset, check_config, flow
from handmt.data.fpha import FPHADataset
from handmt.data.synthetic import ensure_fpha
from handmt.data.transforms import ClipTransform, build_train_transform, to_tensors

SHIFT = 3  # px per frame, +x
SET = dict(classes=2, subjects=2, seqs=1, frames=5, size=64)  # what a config's `synthetic` sets


def texture(height=96, width=96, seed=0):
    """A random smooth grey image: texture everywhere, so the flow is defined everywhere."""
    noise = np.random.default_rng(seed).normal(size=(height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def translating(count, shift=SHIFT):
    """`count` RGB frames of one texture moving `shift` px to the right per frame (each frame is
    cut from a wider texture, so no content wraps around)."""
    wide = texture(width=96 + shift * count)
    frames = [wide[:, (count - k) * shift:(count - k) * shift + 96] for k in range(count)]
    return [np.repeat(frame[..., None], 3, axis=-1) for frame in frames]


def interior(field, border=16):
    return field[..., border:-border, border:-border, :]


def test_farneback_measures_a_translation():
    first, second = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in translating(2))
    field = interior(flow.farneback(first, second))
    assert field.shape[-1] == 2
    np.testing.assert_allclose(field.mean(axis=(0, 1)), [SHIFT, 0.0], atol=0.15)
    normalized = flow.normalize(field).mean(axis=(0, 1))
    np.testing.assert_allclose(normalized, [SHIFT / 20, 0.0], atol=0.01)


def test_pairs_and_clip_flow():
    # frame t: t -> t + 1; the last frame repeats the flow into it; one frame: none
    assert flow.flow_pairs([0, 2, 4, 4], 5) == [(0, 1), (2, 3), (3, 4), (3, 4)]
    assert flow.flow_pairs([0], 1) == [(0, 0)]
    frames = translating(4)
    reads = []

    def read_rgb(indices):
        reads.append(list(indices))
        return [frames[i] for i in indices]

    out = flow.colour_frames(read_rgb, [1, 3, 3], 4, ("rgb", "flow"))
    assert reads == [[1, 2, 3]]  # each needed frame read once
    assert out["flow"].shape == (3, 96, 96, 2) and out["flow"].dtype == np.float16
    np.testing.assert_array_equal(out["rgb"], np.stack([frames[1], frames[3], frames[3]]))
    means = interior(out["flow"].astype(np.float32)).mean(axis=(1, 2))
    np.testing.assert_allclose(means, [[SHIFT, 0]] * 3, atol=0.15)
    assert set(flow.colour_frames(read_rgb, [0], 4, ("flow",))) == {"flow"}
    still = flow.colour_frames(read_rgb, [0], 1, ("flow",))["flow"]
    assert not still.any()


def transformed(transforms, flow_px):
    """The flow of a clip without pose after `transforms`."""
    return ClipTransform(transforms)({"flow": flow_px})["flow"]


def test_flip_negates_x_and_resize_scales():
    uniform = np.broadcast_to(np.float16([3.0, 1.0]), (2, 32, 48, 2)).copy()
    flipped = transformed([HorizontalFlip(p=1.0)], uniform)
    np.testing.assert_allclose(flipped, np.broadcast_to([-3.0, 1.0], (2, 32, 48, 2)))
    resized = transformed([Resize(16, 12)], uniform)  # x / 4, y / 2
    assert resized.shape == (2, 16, 12, 2)
    np.testing.assert_allclose(resized, np.broadcast_to([0.75, 0.5], (2, 16, 12, 2)))


def test_transformed_flow_matches_the_flow_of_transformed_frames():
    frames = translating(2)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    field = flow.farneback(*grey)[None]
    pipeline = [Resize(64, 64), HorizontalFlip(p=1.0)]
    moved = transformed(pipeline, field)
    images = ClipTransform(pipeline)({"rgb": np.stack(frames)})["rgb"]
    recomputed = flow.farneback(*(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in images))
    expected = [-SHIFT * 64 / 96, 0.0]
    np.testing.assert_allclose(interior(moved[0], 12).mean(axis=(0, 1)), expected, atol=0.15)
    np.testing.assert_allclose(interior(recomputed, 12).mean(axis=(0, 1)), expected, atol=0.15)


def test_to_tensors_clips_and_scales_to_unit_range():
    values = np.float16([[30.0, -10.0], [0.0, -45.0]]).reshape(1, 1, 2, 2)
    tensor = to_tensors({"flow": values}, 1000.0)["flow"]
    assert tensor.shape == (1, 2, 1, 2) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor[0, :, 0], torch.tensor([[1.0, 0.0], [-0.5, -1.0]]))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The tiny set where a config with `root: null` finds it ($HANDMT_CACHE = its parent)."""
    return ensure_fpha(tmp_path_factory.mktemp("handmt-cache"), **SET, workers=1, progress=False)


def load(root, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FPHADataset(str(root), size=32, num_frames=4, **kwargs)


def test_fpha_items_carry_flow(synthetic):
    transform = build_train_transform(32, flip=True)
    dataset = load(synthetic, modalities=["rgb", "depth", "flow"], transform=transform)
    torch.manual_seed(0)
    item = dataset[0]
    assert item["flow"].shape == (4, 2, 32, 32) and item["flow"].dtype == torch.float32
    assert item["rgb"].shape == (4, 3, 32, 32) and item["depth"].shape == (4, 1, 32, 32)
    assert item["flow"].abs().max() <= 1.0 and item["flow"].abs().max() > 0  # the hand moves
    alone = load(synthetic, split="test", modalities=["flow"], crops=3)
    assert set(alone[2]) == {"flow", "label", "video", "pose_valid", "joints3d", "joints2d", "K"}
    assert alone[2]["flow"].shape == (4, 2, 32, 32)


def test_cache_computes_flow_once_and_returns_the_same(synthetic, tmp_path, monkeypatch):
    calls = []
    farneback = flow.farneback
    monkeypatch.setattr(flow, "farneback", lambda *a: calls.append(1) or farneback(*a))
    cached = load(synthetic, split="test", modalities=["flow"], cache_dir=str(tmp_path))
    # one flow per pair of consecutive frames: the last frame's is the pair before it
    assert len(calls) == sum(video.num_frames - 1 for video in cached.videos)
    calls.clear()
    fresh = load(synthetic, split="test", modalities=["flow"])
    for index, video in enumerate(cached.videos):
        every = np.arange(video.num_frames)
        np.testing.assert_array_equal(cached.cache.read(index, every)["flow"],
                                      fresh.read_frames(index, every)["flow"])
    calls.clear()
    item = cached[0]
    assert calls == []  # items read the cache
    torch.testing.assert_close(item["flow"], fresh[0]["flow"])


def test_synthetic_config_path_with_flow(synthetic, monkeypatch):
    monkeypatch.setenv("HANDMT_CACHE", str(synthetic.parent))
    data = {"name": "fpha", "root": None, "synthetic": SET, "modalities": ["flow"], "size": 32,
            "num_frames": 2}
    check_config(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        item = build_dataset(data, "train")[0]
    assert item["flow"].shape == (2, 2, 32, 32) and set(item) >= {"flow", "label"}
