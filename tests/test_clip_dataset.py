"""base.ClipDataset through a minimal subclass: two listed samples whose frames are constant
images coding (sample, frame), so a test reads back which frames an item holds."""

import numpy as np
import pytest
import torch
from fixtures import build_with_warnings

from handmt.data.base import ClipDataset, Listed
from handmt.data.frames import BadFrame, Counted
from handmt.data.sampling import PaddedSampler, SegmentSampler
from handmt.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_train_transform

SIZE = 8
FRAMES = {"a": 6, "b": 9}  # frames per sample, in every stream


def code(video, frame):
    return 100 * video + 10 + frame


class Constant(ClipDataset):
    """Samples "a" (label 0) and "b" (label 1); frame t of sample v is code(v, t) everywhere
    (depth: code / 2). `counts` overrides a stream's frame count; `bad` samples raise BadFrame."""

    NAME = "constant"
    MODALITIES = ("rgb", "depth", "flow")

    def __init__(self, root, split="train", counts=None, bad=(), **kwargs):
        self.counts, self.bad = counts or {}, bad
        self.num_classes, self.classes = 2, ["a", "b"]
        self.viewed = []
        settings = {"num_frames": 4, "size": SIZE, "modalities": ("rgb", "depth"),
                    "sampling": "segments", "dense_stride": 1, "strict": False,
                    "transform": None, "clips": 1, "crops": 1, "cache_dir": None,
                    "depth_scale": 100.0, **kwargs}
        super().__init__(root, split, **settings)

    def list_samples(self):
        listing = self.root / "list.txt"
        listed = []
        for label, (name, count) in enumerate(FRAMES.items()):
            sources = {m: Counted(self.root / f"{name}-{m}", self.counts.get((name, m), count))
                       for m in self.streams}
            listed.append(Listed(name, label, sources))
        return str(listing), [listing], listed

    def read_stream(self, sample, stream, indices):
        video = list(FRAMES).index(sample.name)
        if sample.name in self.bad:
            raise BadFrame(f"{sample.sources[stream].path}: bad frame")
        shape = (SIZE, SIZE, 3) if stream == "rgb" else (SIZE, SIZE)
        scale = 1 if stream == "rgb" else 2
        return [np.full(shape, code(video, i) // scale, np.uint8) for i in indices]

    def view(self, clip, crop):
        self.viewed.append(crop)
        return clip


@pytest.fixture
def root(tmp_path):
    for name in FRAMES:
        for stream in ("rgb", "depth"):
            (tmp_path / f"{name}-{stream}").write_text("frames")
    (tmp_path / "list.txt").write_text("a\nb\n")
    return tmp_path


def frames_of(item):
    """(sample, frame) of each rgb frame of an item, None for a zero frame."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    levels = ((item["rgb"] * std + mean) * 255).mean(dim=(1, 2, 3))
    return [None if not frame.any() else divmod(round(level.item()) - 10, 100)
            for frame, level in zip(item["rgb"], levels, strict=True)]


def test_training_items_are_tensors_of_the_sampled_frames(root):
    dataset, caught = build_with_warnings(Constant, root)
    assert caught == [] and len(dataset) == 2 and dataset.labels.tolist() == [0, 1]
    assert [(v.name, v.num_frames) for v in dataset.videos] == [("a", 6), ("b", 9)]
    torch.manual_seed(0)
    item = dataset[1]
    assert set(item) == {"rgb", "depth", "label", "video", "pose_valid"}  # no pose keys
    assert item["rgb"].shape == (4, 3, SIZE, SIZE) and item["rgb"].dtype == torch.float32
    assert item["label"].item() == 1 and item["video"].item() == 1
    assert item["pose_valid"].tolist() == [False] * 4
    frames = [frame for _, frame in frames_of(item)]
    assert {video for video, _ in frames_of(item)} == {1}
    # segments of 9 / 4 frames: [0, 2), [2, 4), [4, 6), [6, 9)
    assert all(low <= f < high for f, (low, high) in zip(frames, [(0, 2), (2, 4), (4, 6), (6, 9)],
                                                          strict=True))
    # depth: code / 2 as stored, / depth_scale (100)
    torch.testing.assert_close(item["depth"][:, 0, 0, 0],
                               torch.tensor([code(1, f) // 2 / 100 for f in frames]))
    assert dataset.viewed == [0]  # no transform: the training view of the subclass


def test_test_views_enumerate_clips_and_crops(root):
    dataset, _ = build_with_warnings(Constant, root, split="test", clips=2, crops=3)
    assert len(dataset) == 2 * 2 * 3
    assert dataset.views[:7] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0), (0, 1, 1),
                                 (0, 1, 2), (1, 0, 0)]
    sampler = SegmentSampler(4)
    for index in range(len(dataset)):
        video, clip, crop = dataset.views[index]
        item = dataset[index]
        expected = sampler.test_indices(list(FRAMES.values())[video], clip, 2)
        assert frames_of(item) == [(video, int(f)) for f in expected]
        assert dataset.viewed[-1] == crop and item["video"].item() == video
    # training ignores clips and crops
    train, _ = build_with_warnings(Constant, root, clips=2, crops=3)
    assert train.views == [(0, 0, 0), (1, 0, 0)]


def test_padded_clips_get_zero_frames_and_transforms_need_no_pose(root):
    dataset, _ = build_with_warnings(Constant, root, split="test", sampling="padded",
                                     num_frames=7)
    # "a" (6 frames) is one padded clip; "b" (9) windows at 0 and 2
    assert dataset.views == [(0, 0, 0), (1, 0, 0), (1, 1, 0)]
    padded = PaddedSampler(7, 1).test_indices(6, 0, 1).tolist()
    assert padded == [0, 1, 2, 3, 4, 5, -1]
    item = dataset[0]
    assert frames_of(item) == [(0, f) for f in range(6)] + [None]
    assert not item["depth"][6].any() and item["pose_valid"].tolist() == [False] * 7
    assert frames_of(dataset[2]) == [(1, f) for f in range(2, 9)]
    transform = build_train_transform(SIZE, color_jitter=0.0, flip=True)
    train, _ = build_with_warnings(Constant, root, sampling="padded", num_frames=7,
                                   transform=transform)
    torch.manual_seed(0)
    item = train[0]
    assert set(item) == {"rgb", "depth", "label", "video", "pose_valid"}
    assert [f for f in frames_of(item) if f is not None] == [(0, f) for f in range(6)]
    assert train.viewed == []  # the transform replaced the view


def test_short_and_missing_streams_are_cut_skipped_and_reported_once(root):
    counts = {("a", "depth"): 4, ("b", "rgb"): 0}
    dataset, caught = build_with_warnings(Constant, root, counts=counts)
    assert [(v.name, v.num_frames) for v in dataset.videos] == [("a", 4)]
    assert len(caught) == 1 and f"{root / 'list.txt'} (train): 2 sample(s)" in caught[0]
    assert (f"a: rgb {root / 'a-rgb'}: 6 frames, depth {root / 'a-depth'}: 4 frames -> using 4 "
            "frames") in caught[0]
    assert f"b: rgb {root / 'b-rgb'}: 0 frames, depth" in caught[0]
    assert caught[0].endswith("-> skipped")
    with pytest.raises(ValueError, match="b: rgb .*: 0 frames, .* -> skipped"):
        Constant(root, counts=counts, strict=True)
    with pytest.raises(ValueError, match="no usable sample in split 'train'"):
        build_with_warnings(Constant, root, counts={("a", "rgb"): 0, ("b", "rgb"): 0})


def test_the_cache_reads_the_same_and_drops_samples_with_a_bad_frame(root, tmp_path):
    direct, _ = build_with_warnings(Constant, root, split="test", modalities=("rgb", "flow"))
    cached, _ = build_with_warnings(Constant, root, split="test", modalities=("rgb", "flow"),
                                    cache_dir=str(tmp_path / "cache"))
    assert cached.cache.path.name.startswith("constant-test-")
    for index in range(len(direct)):
        for key, value in direct[index].items():
            torch.testing.assert_close(cached[index][key], value)
    dataset, caught = build_with_warnings(Constant, root, bad=("a",),
                                          cache_dir=str(tmp_path / "cache"))
    assert len(caught) == 1 and f"{root / 'a-depth'}: bad frame" in caught[0]
    assert [v.name for v in dataset.videos] == ["b"] and dataset.labels.tolist() == [1]
    assert dataset.pose_available.tolist() == dataset.mask_available.tolist() == [False]
    assert dataset.views == [(0, 0, 0)] and dataset[0]["label"].item() == 1
    with pytest.raises(ValueError, match="bad frame, skipped and not cached"):
        Constant(root, bad=("a",), cache_dir=str(tmp_path / "cache"), strict=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"modalities": ("rgb", "mask")}, r"modalities must be distinct names among rgb, depth, "
                                      r"flow, got \['rgb', 'mask'\]"),
    ({"split": "val"}, "split must be one of 'train', 'test', got 'val'"),
    ({"num_frames": 0}, "num_frames, size and clips must be positive, got 0"),
    ({"crops": 2}, "crops must be 1 or 3, got 2"),
    ({"sampling": "uniform"}, "sampling must be one of 'segments', 'dense', 'padded'"),
])
def test_bad_arguments(root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Constant(root, **kwargs)
