
import json

import cv2
import numpy as np
import pytest
import torch
from fixtures import (
    CRLF_SEQUENCE,
    EMPTY_SEQUENCE,
    LONGER_COLOUR_SEQUENCE,
    MINI_CAMERA,
    MINI_TEST,
    MINI_TRAIN,
    PATCH_Z,
    WALL_Z,
    build_with_warnings,
    card_hits,
    colour_pose,
    write_mini_fpha,
    write_sequence,
    write_skeleton,
    write_split,
)

from handmt.data import DATASETS, camera
from handmt.data.fpha import (
    FPHACamera,
    FPHADataset,
    crop_affine,
    read_crop_boxes,
    read_skeleton,
    read_split,
    write_crop_boxes,
)
from handmt.data.sampling import DenseSampler, SegmentSampler
from handmt.data.transforms import build_train_transform

SIZE = 32
ALL = ("rgb", "depth", "mask")


@pytest.fixture(scope="module")
def mini_root(tmp_path_factory):
    return write_mini_fpha(tmp_path_factory.mktemp("fpha"))


def load(root, split="train", **kwargs):
    """The dataset, with the warnings it emitted."""
    return build_with_warnings(FPHADataset, root, split=split, size=SIZE, **kwargs)


def skeleton_of(root, sequence):
    return read_skeleton(root / "Hand_pose_annotation_v1" / sequence / "skeleton.txt")


# --- file readers ---------------------------------------------------------------------------

def test_read_skeleton_tolerates_crlf_and_empty_files(tmp_path):
    joints = np.arange(2 * 63, dtype=np.float64).reshape(2, 21, 3) / 8
    write_skeleton(tmp_path / "crlf.txt", joints, newline="\r\n")
    np.testing.assert_array_equal(read_skeleton(tmp_path / "crlf.txt"), joints)
    (tmp_path / "empty.txt").write_text("")
    assert read_skeleton(tmp_path / "empty.txt").shape == (0, 21, 3)


@pytest.mark.parametrize("second_line, message", [
    ("1 " + "0 " * 62, ":2: expected 64 columns"),
    ("2 " + "0 " * 63, ":2: frame index 2, expected 1"),
    ("1 " + "0 " * 62 + "x", ":2: not a number"),
])
def test_read_skeleton_errors_name_file_and_line(tmp_path, second_line, message):
    path = tmp_path / "skeleton.txt"
    path.write_text("0 " + "1 " * 63 + "\n" + second_line + "\n")
    with pytest.raises(ValueError, match=f"{path}{message}"):
        read_skeleton(path)


@pytest.mark.parametrize("text, message", [
    ("Training 1\nSubject_1/a/1 0 extra\nTest 0\n", ":2: expected 'Subject_k/<action>/<seq> <"),
    ("Training 1\nSubject_1/a 0\nTest 0\n", ":2: expected 'Subject_k"),
    ("Training 1\nSubject_1/a/1 minus\nTest 0\n", ":2: label 'minus' is not a class number"),
    ("Subject_1/a/1 0\n", ":1: expected a header"),
    ("Training 2\nSubject_1/a/1 0\n\nTest 0\n", ":1: the header announces 2 sequences"),
    ("Training 1\nSubject_1/a/1 0\nTraining 0\n", ":3: expected one header"),
])
def test_read_split_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "split.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{path}{message}"):
        read_split(path)


def test_read_split_with_crlf_and_blank_lines(mini_root):
    sections = read_split(mini_root / "data_split_action_recognition.txt")
    assert sections == {"train": [(name, label) for name, label, _ in MINI_TRAIN],
                        "test": [(name, label) for name, label, _ in MINI_TEST]}


def test_projection_with_the_official_constants():
    official = FPHACamera()
    point = np.array([40.0, -20.0, 500.0])  # depth-camera mm
    # depth pixel: u = 475.065948 * 40 / 500 + 315.944855 = 38.00527584 + 315.944855
    #              v = 475.065857 * -20 / 500 + 245.287079 = -19.00263428 + 245.287079
    np.testing.assert_allclose(official.project_depth(point), [353.95013084, 226.28444472],
                               atol=1e-6)
    # colour camera: R @ p + t, row by row
    # x = 0.999988496304*40 - 0.00468848412856*-20 + 0.000982563360594*500 + 25.7
    #   = 39.99953985 + 0.09376968 + 0.49128168 + 25.7 = 66.28459122
    # y = 0.00469115935266*40 + 0.999985218048*-20 - 0.00273845880292*500 + 1.22
    #   = 0.18764637 - 19.99970436 - 1.36922940 + 1.22 = -19.96128739
    # z = -0.000969709653873*40 + 0.00274303671904*-20 + 0.99999576807*500 + 3.902
    #   = -0.03878839 - 0.05486073 + 499.99788404 + 3.902 = 503.80623491
    np.testing.assert_allclose(official.to_color(point), [66.28459122, -19.96128739, 503.80623491],
                               atol=1e-6)
    # colour pixel: u = 1395.749023 * 66.28459122 / 503.80623491 + 935.732544
    #                 = 183.63538801 + 935.732544
    #               v = 1395.749268 * -19.96128739 / 503.80623491 + 540.681030
    #                 = -55.30092788 + 540.681030
    np.testing.assert_allclose(official.project_color(point), [1119.36793201, 485.38010212],
                               atol=1e-6)


# --- the dataset ----------------------------------------------------------------------------

def test_registered_and_reexported():
    assert DATASETS["fpha"] is FPHADataset
    assert FPHACamera is camera.FPHACamera


def test_defects_are_trimmed_skipped_and_warned_once(mini_root):
    dataset, caught = load(mini_root, modalities=ALL)
    assert len(caught) == 1
    empty = mini_root / "Video_files" / EMPTY_SEQUENCE
    skeleton = mini_root / "Hand_pose_annotation_v1" / EMPTY_SEQUENCE / "skeleton.txt"
    assert (f"{EMPTY_SEQUENCE}: rgb {empty / 'color'}: 5 frames, depth {empty / 'depth'}: 5 "
            f"frames, mask {empty / 'mask'}: 5 frames, skeleton {skeleton}: 0 frames -> skipped"
            ) in caught[0]
    longer = mini_root / "Video_files" / LONGER_COLOUR_SEQUENCE
    assert (f"{LONGER_COLOUR_SEQUENCE}: rgb {longer / 'color'}: 7 frames, depth "
            f"{longer / 'depth'}: 6 frames, mask") in caught[0]
    assert "skeleton.txt: 6 frames -> using 6 frames" in caught[0]
    assert [v.name for v in dataset.videos] == [
        CRLF_SEQUENCE, LONGER_COLOUR_SEQUENCE, "Subject_2/pour_milk/1"]
    # the CRLF skeleton reads fine; the .DS_Store among its colour frames is ignored
    assert [v.num_frames for v in dataset.videos] == [6, 6, 5]
    assert dataset.labels.tolist() == [0, 1, 1] and dataset.labels.dtype == np.int64
    assert dataset.pose_available.tolist() == [True] * 3
    assert dataset.num_classes == 2 and dataset.classes == ["open_juice_bottle", "pour_milk"]
    assert len(dataset) == 3


def test_strict_raises_naming_the_sequences(mini_root):
    with pytest.raises(ValueError, match=f"{EMPTY_SEQUENCE}: rgb .* skipped"):
        FPHADataset(str(mini_root), size=SIZE, strict=True)


def test_only_requested_modalities_count_and_are_decoded(tmp_path):
    root = write_mini_fpha(tmp_path)
    sequence = MINI_TEST[0][0]
    for path in (root / "Video_files" / sequence / "mask").iterdir():
        path.unlink()
    (root / "Video_files" / sequence / "mask").rmdir()
    (root / "Video_files" / sequence / "color" / "color_0000.jpeg").write_bytes(b"not a jpeg")
    (root / "Hand_pose_annotation_v1" / MINI_TEST[1][0] / "skeleton.txt").unlink()

    dataset, caught = load(root, "test", modalities=("depth",))
    missing = root / "Hand_pose_annotation_v1" / MINI_TEST[1][0] / "skeleton.txt"
    assert len(caught) == 1 and (f"{MINI_TEST[1][0]}: depth "
                                 f"{root / 'Video_files' / MINI_TEST[1][0] / 'depth'}: 4 frames, "
                                 f"skeleton {missing}: missing or unreadable") in caught[0]
    assert sequence not in caught[0]
    item = dataset[0]
    assert set(item) == {"depth", "joints3d", "joints2d", "K", "label", "video", "pose_valid"}

    with pytest.raises(ValueError, match=f"{sequence}: rgb .*: 6 frames, depth .*: 6 frames, "
                                         "mask .*mask: missing or unreadable, skeleton "
                                         ".*: 6 frames -> skipped"):
        FPHADataset(str(root), "test", modalities=ALL, strict=True)


def test_corrupt_image_error_names_the_file(tmp_path):
    root = write_mini_fpha(tmp_path)
    bad = root / "Video_files" / MINI_TEST[0][0] / "color" / "color_0003.jpeg"
    bad.write_bytes(b"\xff\xd8 truncated garbage")
    dataset, _ = load(root, "test", modalities=("rgb",))
    dataset.read_frames(0, [0, 1, 2])
    with pytest.raises(ValueError, match=f"{bad}: truncated JPEG"):
        dataset.read_frames(0, [2, 3])


def test_joints_K_and_crop(mini_root):
    dataset, _ = load(mini_root, modalities=ALL)
    for index, video in enumerate(dataset.videos):
        frames = dataset.read_pose(index, np.arange(video.num_frames))
        skeleton = skeleton_of(mini_root, video.name)[:video.num_frames]
        np.testing.assert_allclose(frames["joints3d"], MINI_CAMERA.to_color(skeleton), atol=1e-3)
        # K @ joints3d lands on joints2d, which is the colour projection mapped by the crop
        np.testing.assert_allclose(camera.project(frames["joints3d"], frames["K"]),
                                   frames["joints2d"], atol=1e-3)
        crop = crop_affine(video.crop, SIZE)
        direct = MINI_CAMERA.project_color(skeleton) @ crop[:2, :2].T + crop[:2, 2]
        np.testing.assert_allclose(frames["joints2d"], direct, atol=1e-3)
        # the box holds every joint with the margin: 25% of the joints' extent on each side
        low, high = direct.min(axis=(0, 1)), direct.max(axis=(0, 1))
        extent = (high - low).max()
        assert (low > -0.5).all() and (high < SIZE - 0.5).all()
        np.testing.assert_allclose(extent / SIZE, 1 / 1.5, atol=2 / SIZE)


def test_frame_crop_is_the_centred_square_of_the_whole_frame(mini_root):
    # crop: frame uses no ground truth: every video gets the same box, the frame's centred
    # square (192 x 108 colour frames: side 192, from y = 54 - 96 = -42), and K maps onto it
    dataset, _ = load(mini_root, modalities=ALL, crop="frame")
    width, height = MINI_CAMERA.color_size
    assert {video.crop for video in dataset.videos} == {(0, (height - width) // 2, width)}
    frames = dataset.read_pose(0, np.arange(dataset.videos[0].num_frames))
    np.testing.assert_allclose(camera.project(frames["joints3d"], frames["K"]),
                               frames["joints2d"], atol=1e-3)
    joints_crop, _ = load(mini_root, modalities=ALL)
    assert dataset.cache_key() != joints_crop.cache_key()
    with pytest.raises(ValueError, match="crop must be one of joints, frame, boxes, got 'box'"):
        load(mini_root, crop="box")


def test_boxes_crop_reads_each_sequence_box_from_its_file(mini_root, tmp_path):
    # crop: boxes takes each sequence's square from a crop-box file (a detector's, a model's)
    joints_crop, _ = load(mini_root, modalities=ALL)
    boxes = {video.name: (video.crop[0] + 3, video.crop[1] - 2, video.crop[2] + 5)
             for video in joints_crop.videos}
    path = tmp_path / "boxes.json"
    write_crop_boxes(path, boxes)
    assert read_crop_boxes(path) == boxes
    dataset, _ = load(mini_root, modalities=ALL, crop="boxes", crop_boxes=str(path))
    assert {video.name: video.crop for video in dataset.videos} == boxes
    video = dataset.videos[0]
    np.testing.assert_allclose(video.K, crop_affine(boxes[video.name], SIZE) @
                               MINI_CAMERA.color_K)
    assert dataset.cache_key() != joints_crop.cache_key()  # other boxes, other cached frames
    # the file and the sequence are named when a box is missing or malformed
    name = joints_crop.videos[0].name
    write_crop_boxes(path, {k: v for k, v in boxes.items() if k != name})
    with pytest.raises(ValueError, match=f"{path} has no box for sequence {name}"):
        load(mini_root, crop="boxes", crop_boxes=str(path))
    path.write_text(json.dumps({name: [1, 2]}))
    with pytest.raises(ValueError, match=f"{path}: {name}: expected \\[x0, y0, side\\]"):
        read_crop_boxes(path)
    with pytest.raises(ValueError, match="data.crop_boxes: give a crop-box file"):
        load(mini_root, crop="boxes")


def test_depth_and_colour_are_registered(mini_root):
    dataset, _ = load(mini_root, modalities=ALL)
    video = dataset.videos[0]
    frames = dataset.read_frames(0, [0, 2])
    # Where the input camera K sees the card, and at which colour-camera z (the fixture's
    # analytic renderer): the card in rgb, mask and registered depth must all sit there.
    on_card, card_z = card_hits(video.K, colour_pose(MINI_CAMERA), (SIZE, SIZE))
    _, wall_z = card_hits(video.K, colour_pose(MINI_CAMERA), (SIZE, SIZE), plane_z=WALL_Z)
    kernel = np.ones((5, 5), np.uint8)  # 2 px of slack at the card's border
    inside = cv2.erode(on_card.astype(np.uint8), kernel).astype(bool)
    outside = ~cv2.dilate(on_card.astype(np.uint8), kernel).astype(bool)
    assert inside.sum() > 50 and outside.sum() > 500
    for depth, rgb, mask in zip(frames["depth"], frames["rgb"], frames["mask"], strict=True):
        np.testing.assert_allclose(depth[inside], card_z[inside], atol=1.0)  # mm, rounded
        assert abs(card_z[inside].mean() - (PATCH_Z + 3.902)) < 1  # colour z = depth z + t_z
        seen = outside & (depth > 0)
        assert seen.sum() > 0.9 * outside.sum()
        np.testing.assert_allclose(depth[seen], wall_z[seen], atol=1.0)
        assert (rgb[inside] > 200).all() and (rgb[outside] < 100).all()
        assert (mask[inside] == 255).all() and (mask[outside] == 0).all()


def test_official_constants_and_sizes(tmp_path):
    sequences = [("Subject_1/open_juice_bottle/1", 0, {"color": 2, "depth": 2, "skeleton": 2})]
    write_sequence(tmp_path, sequences[0][0], sequences[0][2], FPHACamera())
    write_split(tmp_path, sequences, sequences)
    dataset, caught = load(tmp_path, modalities=("rgb", "depth"))
    assert caught == []
    video = dataset.videos[0]
    np.testing.assert_allclose(video.K, crop_affine(video.crop, SIZE) @ FPHACamera().color_K)
    frames = dataset.read_frames(0, [1])
    # the card's centre (0, 0, 450) in depth-camera mm has colour z
    # -0.000969709653873*0 + 0.00274303671904*0 + 0.99999576807*450 + 3.902 = 453.9001
    centre = np.rint(camera.project(FPHACamera().to_color([0, 0, PATCH_Z]), video.K)).astype(int)
    assert frames["depth"][0, centre[1], centre[0]] == 454
    assert (frames["rgb"][0, centre[1], centre[0]] > 200).all()
    # a mini-size camera file would not match these images: the error names file and sizes
    MINI_CAMERA.save(tmp_path)
    dataset, _ = load(tmp_path, modalities=("rgb",))
    with pytest.raises(ValueError, match="color_0000.jpeg: expected a 192x108 uint8 image .* "
                                         "got 1920x1080"):
        dataset.read_frames(0, [0])


def test_unannotated_frames_are_not_pose_valid(tmp_path):
    root = write_mini_fpha(tmp_path)
    path = root / "Hand_pose_annotation_v1" / MINI_TEST[0][0] / "skeleton.txt"
    joints = read_skeleton(path)
    joints[2] = 0
    joints[4, 3] = np.nan
    write_skeleton(path, joints)
    dataset, _ = load(root, "test", num_frames=6)
    item = dataset[0]  # 6 frames, 6 segments: every frame once
    assert item["pose_valid"].tolist() == [True, True, False, True, False, True]
    assert (item["joints3d"][[2, 4]] == 0).all() and (item["joints2d"][[2, 4]] == 0).all()
    assert torch.isfinite(item["joints3d"]).all()
    # the crop box comes from the annotated frames only
    direct = MINI_CAMERA.project_color(joints[[0, 1, 3, 5]])
    x0, y0, side = dataset.videos[0].crop
    assert side == round((direct.max(axis=(0, 1)) - direct.min(axis=(0, 1))).max() * 1.5)


def test_train_items_follow_the_contract(mini_root):
    transform = build_train_transform(SIZE, flip=True)
    dataset, _ = load(mini_root, modalities=ALL, num_frames=4, transform=transform,
                      max_depth_mm=500.0)
    torch.manual_seed(0)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["rgb"].shape == (4, 3, SIZE, SIZE) and item["rgb"].dtype == torch.float32
        assert item["depth"].shape == item["mask"].shape == (4, 1, SIZE, SIZE)
        assert item["joints3d"].shape == (4, 21, 3) and item["joints2d"].shape == (4, 21, 2)
        assert item["label"].item() == dataset.labels[index] and item["video"].item() == index
        assert item["pose_valid"].tolist() == [True] * 4
        # depth / 500 mm: the card (454 mm) below 1, the wall (704 mm) clipped to 1
        values = np.unique(item["depth"].numpy())
        assert np.isclose(values[:, None], [0.0, 454 / 500, 1.0]).any(axis=1).all()
        assert set(np.unique(item["mask"].numpy())) <= {0.0, 1.0}
        projected = camera.project(item["joints3d"].double().numpy(), item["K"].double().numpy())
        np.testing.assert_allclose(projected, item["joints2d"].numpy(), atol=1e-2)
    torch.manual_seed(0)
    again = dataset[1]
    torch.manual_seed(0)
    for key, value in dataset[1].items():
        torch.testing.assert_close(value, again[key])


def test_test_items_enumerate_clips_and_crops(mini_root):
    dataset, _ = load(mini_root, "test", modalities=("rgb",), num_frames=4, clips=2, crops=3)
    assert len(dataset) == 2 * 2 * 3
    for index in range(len(dataset)):
        item = dataset[index]
        video, clip, crop = index // 6, index // 3 % 2, index % 3
        assert item["video"].item() == video and item["label"].item() == MINI_TEST[video][1]
        frames = SegmentSampler(4).test_indices(dataset.videos[video].num_frames, clip, 2)
        np.testing.assert_allclose(item["joints3d"], dataset.videos[video].joints[frames])
        corner = (0, 2, 5)[crop]  # 32 px resized to round(32 * 8 / 7) = 37: corners 0, 2, 5
        np.testing.assert_allclose(item["K"][0, 2], dataset.videos[video].K[0, 2] * 37 / 32
                                   - corner, atol=1e-3)
    dense, _ = load(mini_root, "test", modalities=("rgb",), num_frames=3, sampling="dense")
    frames = DenseSampler(3, 2).test_indices(dense.videos[0].num_frames, 0, 1)
    np.testing.assert_allclose(dense[0]["joints3d"], dense.videos[0].joints[frames])


@pytest.mark.parametrize("kwargs, message", [
    ({"modalities": ("rgb", "ir")}, "modalities must be distinct names among rgb, depth, "
                                    r"flow, mask, joints, got \['rgb', 'ir'\]"),
    ({"split": "val"}, "split must be one of 'train', 'test', got 'val'"),
    ({"sampling": "uniform"}, "sampling must be one of 'segments', 'dense', 'padded', got "
                              "'uniform'"),
    ({"split": "test", "crops": 5}, "crops must be 1 or 3, got 5"),
])
def test_bad_arguments(mini_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        FPHADataset(str(mini_root), **kwargs)
