"""EgoGesture, NVGesture and IsoGD loaders on tiny trees in their published layouts.

Every frame is a solid grey image whose level encodes its frame number (CODE), depth frames
with another code (DEPTH_CODE), so a test reads back which frames an item holds.
"""


import cv2
import numpy as np
import pytest
import torch
from fixtures import build_with_warnings

from handmt.data import (
    DATASETS,
    EgoGestureDataset,
    IsoGDDataset,
    NVGestureDataset,
    build_dataset,
    check_config,
    egogesture,
    isogd,
    nvgesture,
    withhold,
)
from handmt.data.frames import read_video_frames, video_frame_count
from handmt.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_train_transform

SIZE = 12  # frames are written 16 x 12 (4:3): stored frames need no resize
WIDTH = 16


def code(frame):
    return 4 + 8 * frame


def depth_code(frame):
    return 250 - 8 * frame


def grey(value, channels=3):
    return np.full((SIZE, WIDTH, channels) if channels else (SIZE, WIDTH), value, np.uint8)


def write_video(path, frames, depth=False):
    """An MJPG AVI of solid frames coding 0-based frame numbers `frames`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, SIZE))
    assert writer.isOpened()
    for frame in frames:
        writer.write(grey(depth_code(frame) if depth else code(frame)))
    writer.release()


def write_images(folder, numbers, depth=False):
    folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        image = grey(depth_code(number), 0) if depth else grey(code(number))
        cv2.imwrite(str(folder / f"{number:06d}.jpg"), image)


def decode(item):
    """Frame numbers of an item's rgb (and depth) frames, from their grey levels."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    levels = ((item["rgb"] * std + mean) * 255).mean(dim=(1, 2, 3))
    rgb = torch.round((levels - 4) / 8).long().tolist()
    if "depth" not in item:
        return rgb, None
    depth = torch.round((250 - item["depth"].mean(dim=(1, 2, 3)) * 255) / 8).long().tolist()
    return rgb, depth


def all_frames(dataset, index):
    """Frame numbers of every frame of sample `index`, read directly."""
    frames = dataset.read_frames(index, np.arange(dataset.videos[index].num_frames))
    rgb = np.rint((frames["rgb"].mean(axis=(1, 2, 3)) - 4) / 8).astype(int).tolist()
    if "depth" not in frames:
        return rgb, None
    return rgb, np.rint((250 - frames["depth"].mean(axis=(1, 2))) / 8).astype(int).tolist()


def load(cls, root, split="train", **kwargs):
    """The dataset, with the warnings it emitted."""
    return build_with_warnings(cls, root, split=split, size=SIZE, **kwargs)


def test_mjpg_round_trips(tmp_path):
    write_video(tmp_path / "v.avi", range(5))
    assert video_frame_count(tmp_path / "v.avi") == 5
    frames = read_video_frames(tmp_path / "v.avi", [3, 1, 3])
    assert [int(f.mean()) for f in frames] == [code(3), code(1), code(3)]
    with pytest.raises(ValueError, match=f"{tmp_path / 'v.avi'}: decoded only 5 frames, frame 7"):
        read_video_frames(tmp_path / "v.avi", [7])
    (tmp_path / "bad.avi").write_bytes(b"not a video")
    assert video_frame_count(tmp_path / "bad.avi") is None
    with pytest.raises(ValueError, match=f"{tmp_path / 'bad.avi'}: missing, or not a video"):
        read_video_frames(tmp_path / "bad.avi", [0])


def test_registered():
    assert DATASETS["egogesture"] is EgoGestureDataset
    assert DATASETS["nvgesture"] is NVGestureDataset
    assert DATASETS["isogd"] is IsoGDDataset


# --- EgoGesture -----------------------------------------------------------------------------

# subject -> scene -> group -> (frames in the recording, [(1-based label, start, end)])
EGO = {
    1: {1: {1: (20, [(5, 2, 9), (83, 12, 19)])}},  # val
    2: {2: {1: (12, [(1, 1, 12)])}},  # test
    3: {1: {1: (24, [(10, 3, 10), (11, 14, 21)]), 2: (10, [(2, 4, 7)])}},  # train
}


def write_egogesture(root, spec=EGO, newline="\n", images="images_320-240"):
    """Frames under root/`images` (the release's folder) or, with images="", under the root."""
    top = root / images if images else root
    for subject, scenes in spec.items():
        for scene, groups in scenes.items():
            frames = top / f"Subject{subject:02d}" / f"Scene{scene}"
            labels = root / "labels-final-revised1" / f"subject{subject:02d}" / f"Scene{scene}"
            labels.mkdir(parents=True, exist_ok=True)
            for group, (count, rows) in groups.items():
                write_images(frames / "Color" / f"rgb{group}", range(1, count + 1))
                write_images(frames / "Depth" / f"depth{group}", range(1, count + 1), depth=True)
                text = newline.join(f"{label},{start},{end}" for label, start, end in rows)
                (labels / f"Group{group}.csv").write_text(text + newline, newline="")
    return root


@pytest.fixture(scope="module")
def ego_root(tmp_path_factory):
    return write_egogesture(tmp_path_factory.mktemp("egogesture"), newline="\r\n", images="")


def test_egogesture_splits_are_by_subject(ego_root):
    assert sorted(sum(egogesture.SUBJECTS.values(), ())) == list(range(1, 51))
    for split, subject in (("train", 3), ("val", 1), ("test", 2)):
        dataset, caught = load(EgoGestureDataset, ego_root, split)
        missing = len(egogesture.SUBJECTS[split]) - 1
        assert len(caught) == 1 and f"{missing} sample(s)" in caught[0]
        assert f"of subject {subject} (" not in caught[0]
        assert "subject47: no Scene*/Group*.csv of subject 47 (`subjects`" in caught[0] or \
            split != "test"
        assert {v.name.split("/")[1] for v in dataset.videos} == {f"subject{subject:02d}"}
    dataset, caught = load(EgoGestureDataset, ego_root, "train", subjects=[3, 1])
    assert caught == []
    assert [v.name for v in dataset.videos] == [
        "labels-final-revised1/subject01/Scene1/Group1.csv:1",
        "labels-final-revised1/subject01/Scene1/Group1.csv:2",
        "labels-final-revised1/subject03/Scene1/Group1.csv:1",
        "labels-final-revised1/subject03/Scene1/Group1.csv:2",
        "labels-final-revised1/subject03/Scene1/Group2.csv:1"]
    assert dataset.labels.tolist() == [4, 82, 9, 10, 1] and dataset.labels.dtype == np.int64
    assert [v.num_frames for v in dataset.videos] == [8, 8, 8, 8, 4]
    assert dataset.num_classes == 83 and dataset.pose_available.tolist() == [False] * 5


def test_egogesture_frames_stay_in_the_gesture(ego_root):
    dataset, _ = load(EgoGestureDataset, ego_root, "val", subjects=[1, 3], num_frames=8)
    rows = [(2, 9), (12, 19), (3, 10), (14, 21), (4, 7)]
    for index, (start, end) in enumerate(rows):
        rgb, depth = decode(dataset[index])  # test: one frame from each of 8 segments
        expected = list(range(start, end + 1))
        assert rgb == depth == (expected if len(expected) == 8 else
                                [f for f in expected for _ in range(2)])
    train, _ = load(EgoGestureDataset, ego_root, "train", subjects=[1, 3], num_frames=3)
    torch.manual_seed(0)
    for _ in range(4):
        for index, (start, end) in enumerate(rows):
            rgb, depth = decode(train[index])
            assert rgb == depth and all(start <= f <= end for f in rgb)
            assert rgb == sorted(rgb)


@pytest.mark.parametrize("text, message", [
    ("5,2,9\n5,2\n", ":2: expected 'label,start_frame,end_frame'"),
    ("5,2,x\n", ":1: expected 'label,start_frame,end_frame'"),
    ("84,2,9\n", ":1: label '84' is not a class"),
    ("0,2,9\n", ":1: label '0' is not a class"),
    ("5,0,9\n", ":1: expected 1 <= start_frame <= end_frame, got 0, 9"),
    ("\n5,9,2\n", ":2: expected 1 <= start_frame <= end_frame, got 9, 2"),
])
def test_egogesture_label_errors_name_file_and_line(tmp_path, text, message):
    root = write_egogesture(tmp_path, {1: {1: {1: (10, [(5, 2, 9)])}}})
    path = root / "labels-final-revised1" / "subject01" / "Scene1" / "Group1.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{path}{message}"):
        EgoGestureDataset(str(root), "val", size=SIZE, subjects=[1])


def test_egogesture_short_recording_is_trimmed(tmp_path):
    # the second row ends at frame 19; the colour recording stops at 15
    root = write_egogesture(tmp_path, {7: {1: {1: (20, [(1, 2, 9), (2, 12, 19)])}},
                                       12: {1: {1: (6, [(3, 1, 4)])}}})
    rgb = root / "images_320-240" / "Subject07" / "Scene1" / "Color" / "rgb1"
    for number in range(16, 21):
        (rgb / f"{number:06d}.jpg").unlink()
    (rgb / ".DS_Store").write_bytes(b"")
    dataset, caught = load(EgoGestureDataset, root, "val", subjects=[7], num_frames=4)
    assert len(caught) == 1
    assert (f"subject07/Scene1/Group1.csv:2: rgb {rgb}: 4 of the 8 listed frames "
            "000012.jpg..000019.jpg present, depth") in caught[0]
    assert "-> using 4 frames" in caught[0] and "Group1.csv:1" not in caught[0]
    assert [v.num_frames for v in dataset.videos] == [8, 4]
    assert all_frames(dataset, 1) == ([12, 13, 14, 15], [12, 13, 14, 15])
    with pytest.raises(ValueError, match="Group1.csv:2: rgb .* -> using 4 frames"):
        EgoGestureDataset(str(root), "val", size=SIZE, subjects=[7], strict=True)
    # a recording whose frames are all gone is skipped
    for path in rgb.glob("*.jpg"):
        path.unlink()
    dataset, caught = load(EgoGestureDataset, root, "val", subjects=[7, 12], modalities=["rgb"])
    assert [v.name.split("/")[1] for v in dataset.videos] == ["subject12"]
    assert caught[0].count("-> skipped") == 2


# --- NVGesture ------------------------------------------------------------------------------

NV_TRAIN = [  # (folder, label 1-based, colour frames [start, end), depth frames, frames written)
    ("class_01/subject13_r0", 5, (1, 18), (2, 19), 20),
    ("class_02/subject13_r1", 25, (0, 6), (0, 6), 8),
]
NV_TEST = [("class_03/subject1_r0", 1, (3, 11), (3, 11), 12)]
NV_LIST = "nvgesture_{}_correct_cvpr2016_v2.lst"


def nv_line(folder, label, colour, depth):
    return (f"path:./Video_data/{folder} depth:sk_depth:{depth[0]}:{depth[1]} "
            f"color:sk_color:{colour[0]}:{colour[1]} duo_left:duo_left:9:26 label:{label}")


def write_nvgesture(root):
    for split, entries in (("train", NV_TRAIN), ("test", NV_TEST)):
        lines = []
        for folder, label, colour, depth, count in entries:
            write_video(root / "Video_data" / folder / "sk_color.avi", range(count))
            write_video(root / "Video_data" / folder / "sk_depth.avi", range(count), depth=True)
            lines.append(nv_line(folder, label, colour, depth))
        (root / NV_LIST.format(split)).write_text("\r\n".join(lines) + "\r\n\r\n", newline="")
    return root


@pytest.fixture(scope="module")
def nv_root(tmp_path_factory):
    return write_nvgesture(tmp_path_factory.mktemp("nvgesture"))


def test_nvgesture_labels_and_sensor_segments(nv_root):
    dataset, caught = load(NVGestureDataset, nv_root, "train", num_frames=17)
    assert caught == []
    assert [v.name for v in dataset.videos] == ["Video_data/" + e[0] for e in NV_TRAIN]
    assert dataset.labels.tolist() == [4, 24] and dataset.num_classes == 25
    assert [v.num_frames for v in dataset.videos] == [17, 6]
    # frames start .. end - 1 of each sensor: colour 1..17, depth 2..18 for the same items
    assert all_frames(dataset, 0) == (list(range(1, 18)), list(range(2, 19)))
    test, _ = load(NVGestureDataset, nv_root, "test", num_frames=8)
    assert test.labels.tolist() == [0]
    assert decode(test[0]) == (list(range(3, 11)), list(range(3, 11)))
    dense, _ = load(NVGestureDataset, nv_root, "train", num_frames=4, sampling="dense")
    torch.manual_seed(0)
    for _ in range(5):
        rgb, depth = decode(dense[0])
        assert np.diff(rgb).tolist() == [1, 1, 1] and 1 <= rgb[0] and rgb[-1] <= 17
        assert depth == [f + 1 for f in rgb]


def test_nvgesture_padded_clips_and_flow(nv_root):
    # MTUT's protocol: a short video is zero-padded on both sides; testing covers whole videos
    dataset, _ = load(NVGestureDataset, nv_root, "train", num_frames=9, sampling="padded",
                      modalities=["rgb", "flow"])
    torch.manual_seed(0)
    item = dataset[1]  # 6 frames
    real = [bool(frame.any()) for frame in item["rgb"]]
    assert real.count(True) == 6 and "".join("x" if r else "." for r in real).strip(".") == "x" * 6
    assert item["flow"].shape == (9, 2, SIZE, SIZE) and not item["flow"][~torch.tensor(real)].any()
    test, _ = load(NVGestureDataset, nv_root, "test", num_frames=3, sampling="padded")
    assert len(test) == 3  # 8 frames: windows at 0, 3 and 5
    assert [decode(test[i])[0] for i in range(3)] == [[3, 4, 5], [6, 7, 8], [8, 9, 10]]


@pytest.mark.parametrize("line, message", [
    ("path:./a depth:sk_depth:2:19 color:sk_color:1:18 label:0", ":2: label '0' is not a class"),
    ("path:./a depth:sk_depth:2:19 color:sk_color:1:18 label:26", ":2: label '26' is not a class"),
    ("path:./a depth:sk_depth:2:19 color:sk_color:1 label:3", ":2: expected 'path:<folder>'"),
    ("path:./a depth:sk_depth:2:19 color:sk_color:1:x label:3", ":2: expected 'path:<folder>'"),
    ("path:./a depth:sk_depth:19:19 color:sk_color:1:18 label:3", ":2: depth ends at frame 19"),
    ("path:./a color:sk_color:1:18 label:3", ":2: no depth sensor"),
    ("depth:sk_depth:2:19 color:sk_color:1:18", ":2: no path, label in"),
])
def test_nvgesture_list_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / NV_LIST.format("train")
    path.write_text(nv_line(*NV_TRAIN[0][:4]) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=f"{path}{message}"):
        NVGestureDataset(str(tmp_path))


def test_nvgesture_short_and_unreadable_videos(tmp_path):
    root = write_nvgesture(tmp_path)
    short = root / "Video_data" / NV_TRAIN[0][0] / "sk_color.avi"
    write_video(short, range(10))  # the list wants colour frames 1..17
    broken = root / "Video_data" / NV_TRAIN[1][0] / "sk_depth.avi"
    broken.write_bytes(b"garbage")
    dataset, caught = load(NVGestureDataset, root, "train", num_frames=9)
    assert len(caught) == 1
    depth = short.with_name("sk_depth.avi")
    assert (f"Video_data/{NV_TRAIN[0][0]}: rgb {short}: 9 of the 17 listed frames 1..17 present, "
            f"depth {depth}: 17 of the 17 listed frames 2..18 present -> using 9 frames"
            ) in caught[0]
    assert f"depth {broken}: missing or unreadable -> skipped" in caught[0]
    assert [v.num_frames for v in dataset.videos] == [9]
    assert all_frames(dataset, 0) == (list(range(1, 10)), list(range(2, 11)))
    with pytest.raises(ValueError, match=f"{short}: 9 of the 17 listed frames"):
        NVGestureDataset(str(root), size=SIZE, strict=True)
    only_rgb, caught = load(NVGestureDataset, root, "train", modalities=["rgb"])
    assert len(only_rgb) == 2 and str(broken) not in caught[0]


# --- IsoGD ----------------------------------------------------------------------------------

ISO_TRAIN = [("train/001/M_00001.avi", "train/001/K_00001.avi", 1, 7),
             ("train/001/M_00002.avi", "train/001/K_00002.avi", 249, 5)]
ISO_VALID = [("valid/001/M_00001.avi", "valid/001/K_00001.avi", None, 6)]


def write_isogd(root):
    for name, entries in (("train_list.txt", ISO_TRAIN), ("valid_list.txt", ISO_VALID)):
        lines = []
        for colour, depth, label, count in entries:
            write_video(root / colour, range(count))
            write_video(root / depth, range(count), depth=True)
            lines.append(f"{colour} {depth}" + ("" if label is None else f" {label}"))
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def test_isogd_labels_whole_videos_and_mismatched_counts(tmp_path):
    root = write_isogd(tmp_path)
    dataset, caught = load(IsoGDDataset, root, "train", num_frames=7)
    assert caught == []
    assert dataset.labels.tolist() == [0, 248] and dataset.num_classes == 249
    assert [v.num_frames for v in dataset.videos] == [7, 5]
    assert all_frames(dataset, 0) == (list(range(7)), list(range(7)))
    valid, caught = load(IsoGDDataset, root, "val")
    assert caught == [] and valid.labels.tolist() == [-1]
    depth = root / ISO_TRAIN[0][1]
    write_video(depth, range(4))
    dataset, caught = load(IsoGDDataset, root, "train", num_frames=4)
    assert len(caught) == 1 and (f"{ISO_TRAIN[0][0]}: rgb {root / ISO_TRAIN[0][0]}: 7 frames, "
                                 f"depth {depth}: 4 frames -> using 4 frames") in caught[0]
    assert [v.num_frames for v in dataset.videos] == [4, 5]
    with pytest.raises(FileNotFoundError, match="test_list.txt"):
        IsoGDDataset(str(root), "test")


@pytest.mark.parametrize("text, message", [
    ("a.avi b.avi 1\na.avi b.avi\n", ":2: expected '<M video> <K video> <label>' \\(3 "),
    ("a.avi\n", ":1: expected '<M video> <K video> <label>' \\(2 or 3"),
    ("a.avi b.avi 250\n", ":1: label '250' is not a class"),
    ("a.avi b.avi one\n", ":1: label 'one' is not a class"),
])
def test_isogd_list_errors_name_file_and_line(tmp_path, text, message):
    (tmp_path / "train_list.txt").write_text(text)
    with pytest.raises(ValueError, match=f"{tmp_path / 'train_list.txt'}{message}"):
        isogd.read_list(tmp_path / "train_list.txt")


# --- the contract, shared by the three ------------------------------------------------------

def test_items_follow_the_contract(nv_root):
    transform = build_train_transform(SIZE, color_jitter=0.0, flip=True)
    dataset, _ = load(NVGestureDataset, nv_root, "train", num_frames=4, transform=transform)
    torch.manual_seed(0)
    item = dataset[1]
    assert set(item) == {"rgb", "depth", "label", "video", "pose_valid"}
    assert item["rgb"].shape == (4, 3, SIZE, SIZE) and item["rgb"].dtype == torch.float32
    assert item["depth"].shape == (4, 1, SIZE, SIZE) and item["depth"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].item() == 24
    assert item["video"].item() == 1 and item["pose_valid"].tolist() == [False] * 4
    rgb, depth = decode(item)  # the crop and flip keep solid frames solid
    assert rgb == depth and all(0 <= f <= 5 for f in rgb)
    # depth is the 8-bit value / 255
    values = item["depth"][:, 0, 0, 0] * 255
    torch.testing.assert_close(values, torch.tensor([float(depth_code(f)) for f in rgb]),
                               atol=1.5, rtol=0)

    test, _ = load(NVGestureDataset, nv_root, "test", modalities=("depth",), clips=2, crops=3)
    assert len(test) == 6 and set(test[5]) == {"depth", "label", "video", "pose_valid"}
    assert test[5]["depth"].shape == (8, 1, SIZE, SIZE)
    columns = {"depth": np.broadcast_to(np.arange(WIDTH), (2, SIZE, WIDTH))}
    views = [test.view(columns, crop)["depth"] for crop in range(3)]
    assert all(view.shape == (2, SIZE, SIZE) for view in views)
    # left, centre and right squares of the 16 px long side
    assert [int(view[0, 0, 0]) for view in views] == [0, 2, 4]
    single, _ = load(NVGestureDataset, nv_root, "test", modalities=("depth",))
    assert int(single.view(columns, 0)["depth"][0, 0, 0]) == 2


def test_cache_config_and_withhold(nv_root, tmp_path):
    data = {"name": "nvgesture", "root": str(nv_root), "num_frames": 3, "size": SIZE,
            "modalities": ["rgb", "depth"], "sampling": "dense"}
    check_config(data)
    dataset = build_dataset(data, "test")
    cached = NVGestureDataset(str(nv_root), "test", num_frames=3, size=SIZE, sampling="dense",
                              cache_dir=str(tmp_path))
    for key, value in dataset[0].items():
        torch.testing.assert_close(cached[0][key], value)
    assert len(list(tmp_path.glob("nvgesture-test-*.h5"))) == 1
    assert withhold(dataset, "gesture", 0.0).labels.tolist() == [-1]
    assert nvgesture.read_list(nv_root / NV_LIST.format("test"))[0][2] == 0


def test_bad_arguments(nv_root):
    with pytest.raises(ValueError, match="split must be one of 'train', 'test', got 'val'"):
        NVGestureDataset(str(nv_root), "val")
    with pytest.raises(ValueError, match="modalities must be distinct names among rgb, depth"):
        NVGestureDataset(str(nv_root), modalities=["rgb", "mask"])
    with pytest.raises(ValueError, match="crops must be 1 or 3, got 2"):
        NVGestureDataset(str(nv_root), "test", crops=2)
