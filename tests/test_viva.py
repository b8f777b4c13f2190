"""VIVA (viva.py) on a tiny tree in the layout the module assumes: 2 subjects x 2 gestures, MJPG
videos whose solid frames encode their frame number (grey level 4 + 8 * frame), depth videos with
another code, so a test reads back which frames (and which zero frames) an item holds."""


import cv2
import numpy as np
import pytest
import torch
from fixtures import build_with_warnings

from handmt.data import DATASETS, VIVADataset, build_dataset, check_config
from handmt.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_train_transform
from handmt.engine.evaluate import video_predictions

SIZE, WIDTH = 12, 16  # 4:3 frames: stored as they are
# (subject, gesture, repetition) -> frames; fold 0 tests on subject 1, fold 1 on subject 2
VIDEOS = {(1, 1, 1): 10, (1, 19, 1): 4, (2, 1, 2): 6, (2, 19, 1): 8}


def name(subject, gesture, repetition):
    return f"{subject:02d}_{gesture:02d}_{repetition}.avi"


def write_video(path, count, depth=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, SIZE))
    assert writer.isOpened()
    for frame in range(count):
        writer.write(np.full((SIZE, WIDTH, 3), 250 - 8 * frame if depth else 4 + 8 * frame,
                             np.uint8))
    writer.release()


def write_viva(root, videos=VIDEOS):
    for key, count in videos.items():
        write_video(root / "intensity" / name(*key), count)
        write_video(root / "depth" / name(*key), count, depth=True)
    (root / "intensity" / ".DS_Store").write_bytes(b"junk")
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_viva(tmp_path_factory.mktemp("viva"))


def load(root, split="train", **kwargs):
    return build_with_warnings(VIVADataset, root, split=split, size=SIZE, **kwargs)


def frame_numbers(item):
    """Frame numbers of an item's rgb and depth frames; None for a zero frame."""
    rgb, depth = item["rgb"], item["depth"]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    levels = ((rgb * std + mean) * 255).mean(dim=(1, 2, 3))
    numbers = []
    for t in range(len(rgb)):
        if not rgb[t].any():
            assert not depth[t].any()  # a zero frame is zero in every modality
            numbers.append(None)
            continue
        number = round((levels[t].item() - 4) / 8)
        assert round((250 - depth[t].mean().item() * 255) / 8) == number
        numbers.append(number)
    return numbers


def test_folds_hold_out_one_subject(root):
    for fold, test_subject, train_subject in ((0, 1, 2), (1, 2, 1)):
        train, caught = load(root, "train", fold=fold)
        test, _ = load(root, "test", fold=fold)
        assert caught == []
        assert [v.name for v in train.videos] == [
            f"intensity/{name(*key)}" for key in VIDEOS if key[0] == train_subject]
        assert [v.name for v in test.videos] == [
            f"intensity/{name(*key)}" for key in VIDEOS if key[0] == test_subject]
        assert train.labels.tolist() == test.labels.tolist() == [0, 18]
        assert train.num_classes == 19 and train.labels.dtype == np.int64
    assert DATASETS["viva"] is VIVADataset


def test_training_clips_are_zero_padded_on_both_sides(root):
    dataset, _ = load(root, "train", fold=1, num_frames=8)  # subject 1: 10 and 4 frames
    torch.manual_seed(0)
    starts, befores = set(), set()
    for _ in range(12):
        long, short = frame_numbers(dataset[0]), frame_numbers(dataset[1])
        assert None not in long and np.diff(long).tolist() == [1] * 7 and 0 <= long[0] <= 2
        starts.add(long[0])
        real = [f for f in short if f is not None]
        assert real == [0, 1, 2, 3]  # the whole short video, in order, padded around
        before = short.index(0)
        assert short[:before] == [None] * before and short[before + 4:] == [None] * (4 - before)
        befores.add(before)
    # random starts and random splits of the padding, some with zero frames on both sides
    assert len(starts) > 1 and len(befores) > 1 and any(0 < b < 4 for b in befores)
    item = dataset[1]
    assert item["pose_valid"].tolist() == [False] * 8 and item["label"].item() == 18


def test_testing_covers_whole_videos(root):
    dataset, _ = load(root, "test", fold=0, num_frames=4)  # 10 frames: windows 0, 4, 6
    views = [frame_numbers(dataset[i]) for i in range(len(dataset))]
    assert views == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9], [0, 1, 2, 3]]
    assert [dataset[i]["video"].item() for i in range(len(dataset))] == [0, 0, 0, 1]
    short, _ = load(root, "test", fold=0, num_frames=7)  # 4 frames: centred, 1 + 2 zeros
    assert len(short) == 3 and frame_numbers(short[2]) == [None, 0, 1, 2, 3, None, None]
    # evaluation averages the views of each video (engine.evaluate)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    labels = torch.stack([dataset[i]["label"] for i in range(len(dataset))])
    videos = torch.stack([dataset[i]["video"] for i in range(len(dataset))])
    ids, probs, video_labels = video_predictions(logits, labels, videos)
    assert ids.tolist() == [0, 1] and video_labels.tolist() == [0, 18]
    np.testing.assert_allclose(probs[0], logits[:3].softmax(1).mean(0).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="clips must be 1, got 2"):
        VIVADataset(str(root), "test", clips=2)


def test_flow_and_augmented_items(root):
    transform = build_train_transform(SIZE, flip=True)
    dataset, _ = load(root, "train", fold=1, num_frames=6, transform=transform,
                      modalities=["rgb", "depth", "flow"])
    torch.manual_seed(0)
    item = dataset[1]  # 4 frames + 2 zero frames
    assert set(item) == {"rgb", "depth", "flow", "label", "video", "pose_valid"}
    assert item["flow"].shape == (6, 2, SIZE, SIZE) and item["flow"].abs().max() <= 1
    assert sum(not frame.any() for frame in item["rgb"]) == 2
    alone, _ = load(root, "test", modalities=["flow"], num_frames=4)
    assert set(alone[0]) == {"flow", "label", "video", "pose_valid"}


def test_config_and_build(root):
    data = {"name": "viva", "root": str(root), "fold": 1, "num_frames": 4, "size": SIZE,
            "modalities": ["depth", "flow"]}
    check_config(data)
    dataset = build_dataset(data, "test")
    assert [v.name for v in dataset.videos] == [f"depth/{name(2, 1, 2)}", f"depth/{name(2, 19, 1)}"]
    assert dataset[0]["depth"].shape == (4, 1, SIZE, SIZE)


def test_errors_name_the_file(root, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=f"{missing}: no such folder"):
        VIVADataset(str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'empty' / 'intensity'}: no such"):
        VIVADataset(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match=f"{root / 'intensity'}: no video of subject 6 "):
        VIVADataset(str(root), "test", fold=5)
    with pytest.raises(ValueError, match="fold must be in 0..7"):
        VIVADataset(str(root), fold=8)
    for bad in ("01_01.avi", "01_20_1.avi", "09_01_1.avi", "notes.txt"):
        tree = write_viva(tmp_path / bad, {(1, 1, 1): 2, (2, 1, 1): 2})
        (tree / "intensity" / bad).write_bytes(b"")
        with pytest.raises(ValueError, match=f"{tree / 'intensity' / bad}: expected a video "
                                             "named <subject>_<gesture>_<repetition>.avi"):
            VIVADataset(str(tree))


def test_unreadable_and_missing_videos_are_named(tmp_path):
    root = write_viva(tmp_path, {(1, 1, 1): 3, (2, 1, 1): 3, (2, 2, 1): 3, (2, 3, 1): 3})
    broken = root / "depth" / name(2, 1, 1)
    broken.write_bytes(b"garbage")
    (root / "depth" / name(2, 2, 1)).unlink()
    dataset, caught = load(root, "train", fold=0)
    assert len(dataset) == 1 and len(caught) == 1
    assert f"depth {broken}: missing or unreadable -> skipped" in caught[0]
    assert f"depth {root / 'depth' / name(2, 2, 1)}: missing or unreadable" in caught[0]
    with pytest.raises(ValueError, match=f"depth {broken}: missing or unreadable"):
        VIVADataset(str(root), strict=True)
    only_rgb, caught = load(root, "train", fold=0, modalities=["rgb"])
    assert len(only_rgb) == 3 and caught == []
