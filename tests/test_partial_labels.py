"""Partial labels as users have them (issue 19, item 1): unknown gestures (-1) in the split
files, sequences without a skeleton kept without pose, a labels CSV over any dataset, and the
one-line count a build prints; on the real FPHA skeletons and on the mini fixture."""

import shutil
from pathlib import Path

import pytest
from fixtures import EMPTY_SEQUENCE, MINI_TRAIN, build_with_warnings, write_mini_fpha

from handmt.data import FPHADataset, build_dataset
from handmt.data.egogesture import read_labels as read_egogesture_labels
from handmt.data.fpha import read_split
from handmt.data.labels import apply_labels, label_counts, read_labels
from handmt.data.nvgesture import read_list as read_nvgesture_list
from handmt.errors import ConfigError

DEV = Path(__file__).resolve().parents[2] / "shared" / "fpha-dev"
needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at {DEV}")
SPLIT = "data_split_action_recognition.txt"


@pytest.fixture
def dev_copy(tmp_path):
    """A copy of the real development split whose first 10 training sequences have lost their
    gesture label (-1) and whose next 2 have lost their skeleton file."""
    root = tmp_path / "fpha"
    shutil.copytree(DEV / "Hand_pose_annotation_v1", root / "Hand_pose_annotation_v1")
    lines = (DEV / SPLIT).read_text().splitlines()
    for i in range(1, 11):
        lines[i] = lines[i].rsplit(" ", 1)[0] + " -1"
    for i in (11, 12):
        (root / "Hand_pose_annotation_v1" / lines[i].split()[0] / "skeleton.txt").unlink()
    (root / SPLIT).write_text("\n".join(lines) + "\n")
    return root


@needs_dev
def test_real_split_with_unknown_gestures_and_missing_skeletons(dev_copy):
    sections = read_split(dev_copy / SPLIT)
    assert sum(label == -1 for _, label in sections["train"]) == 10
    train, messages = build_with_warnings(FPHADataset, dev_copy, split="train",
                                          modalities=["joints"], num_frames=8)
    # skeleton-only: a sequence without its skeleton has nothing to read and is skipped, named
    assert len(train) == 344 - 2
    assert any("skeleton" in m and "skipped" in m for m in messages)
    assert (train.labels == -1).sum() == 10 and train.num_classes == 45
    item = train[0]
    assert item["label"] == -1


@needs_dev
def test_a_labels_csv_blanks_gestures_of_real_sequences(dev_copy, tmp_path):
    names = [name for name, _ in read_split(DEV / SPLIT)["train"]][20:25]
    csv = tmp_path / "labels.csv"
    csv.write_text("video,gesture,pose\n" + "".join(f"{n},,1\n" for n in names[:3])
                   + f"{names[3]},7,\n{names[4]},-1,0\n")
    data = {"name": "fpha", "root": str(DEV), "modalities": ["joints"], "num_frames": 8,
            "labels": str(csv)}
    train = build_dataset(data, "train")
    by_name = {video.name: i for i, video in enumerate(train.videos)}
    assert [train.labels[by_name[n]] for n in names] == [-1, -1, -1, 7, -1]
    assert [bool(train.pose_available[by_name[n]]) for n in names] == [True] * 3 + [False] * 2
    assert label_counts(train) == "344 videos: 340 with a gesture label, 342 with pose"


def test_missing_skeleton_is_kept_without_pose_or_skipped(tmp_path):
    root = write_mini_fpha(tmp_path / "mini")
    skipped, messages = build_with_warnings(FPHADataset, root, split="train", num_frames=4,
                                            size=32, modalities=["rgb"])
    assert EMPTY_SEQUENCE not in [v.name for v in skipped.videos]
    kept, messages = build_with_warnings(FPHADataset, root, split="train", num_frames=4, size=32,
                                         modalities=["rgb"], missing_pose="keep")
    assert [v.name for v in kept.videos] == [name for name, _, _ in MINI_TRAIN]
    assert any(EMPTY_SEQUENCE in m and "kept without pose" in m for m in messages)
    index = [v.name for v in kept.videos].index(EMPTY_SEQUENCE)
    assert kept.pose_available.tolist() == [i != index for i in range(len(MINI_TRAIN))]
    item = kept[index]
    assert not item["pose_valid"].any() and item["rgb"].shape == (4, 3, 32, 32)
    assert item["label"] == 0  # its gesture label is still there
    with pytest.raises(ValueError, match="missing_pose"):
        FPHADataset(str(root), split="train", missing_pose="maybe")


@pytest.mark.parametrize("text, message", [
    ("video,class,pose\n", "labels.csv:1: expected the header video,gesture,pose"),
    ("video,gesture,pose\na,x,1\n", "labels.csv:2: gesture 'x'"),
    ("video,gesture,pose\na,1,maybe\n", "labels.csv:2: pose 'maybe'"),
    ("video,gesture,pose\na,1,1\na,2,1\n", "labels.csv:3: video 'a' is listed twice"),
])
def test_labels_csv_errors_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_labels(path)


def test_labels_beyond_the_classes_and_a_missing_csv_are_named(tmp_path):
    path = tmp_path / "labels.csv"
    root = write_mini_fpha(tmp_path / "mini")
    dataset = FPHADataset(str(root), split="train", num_frames=4, size=32, modalities=["rgb"])
    path.write_text(f"video,gesture,pose\n{dataset.videos[0].name},9,1\n")
    with pytest.raises(ValueError, match="gesture 9 .* not below the dataset's 2 classes"):
        apply_labels(dataset, path)
    with pytest.raises(ConfigError, match="data.labels: file .*nowhere.csv does not exist"):
        build_dataset({"name": "fpha", "root": str(root), "modalities": ["rgb"],
                       "labels": str(tmp_path / "nowhere.csv")}, "train")


def test_gesture_datasets_keep_unknown_labels(tmp_path):
    ego = tmp_path / "Group1.csv"
    ego.write_text("3,1,10\n-1,11,20\n")
    assert [row[0] for row in read_egogesture_labels(ego)] == [2, -1]
    ego.write_text("0,1,10\n")
    with pytest.raises(ValueError, match=r"Group1.csv:1: label '0' is not a class \(1..83\)"):
        read_egogesture_labels(ego)
    nv = tmp_path / "list.txt"
    nv.write_text("path:./a depth:d:0:10 color:c:0:10 label:-1\n"
                  "path:./b depth:d:0:10 color:c:0:10 label:25\n")
    assert [entry[2] for entry in read_nvgesture_list(nv)] == [-1, 24]
    nv.write_text("path:./a depth:d:0:10 color:c:0:10 label:26\n")
    with pytest.raises(ValueError, match=r"list.txt:1: label '26' is not a class \(1..25\)"):
        read_nvgesture_list(nv)
