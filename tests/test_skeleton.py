"""The joints modality on real FPHA skeletons (../shared/fpha-dev) and on hand-made ones: the
loader, normalisation, augmentation, the skeleton model, and a training run that must learn."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import build_with_warnings, write_skeleton, write_split

import handmt
from handmt.data import build_dataset
from handmt.data.fpha import FPHADataset, read_skeleton
from handmt.data.skeleton import (
    UNIT_MM,
    SkeletonTransform,
    normalize_skeleton,
    resample,
    retarget,
)
from handmt.hand import BONE_LENGTHS_MM, BONES, NUM_JOINTS, PALM, WRIST
from handmt.models import build
from handmt.models.collab.multi_order import MultiOrder

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "fpha-dev"
CONFIG = REPO / "configs" / "fpha_skeleton.yaml"
needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at "
                               f"{DEV} (../shared/fpha-dev beside the repository)")
CRLF = "Subject_5/use_flash/6"  # the one file of fpha-dev with CRLF line ends
EMPTY = ("Subject_2/close_milk/4", "Subject_2/put_tea_bag/2", "Subject_4/flip_sponge/2")


def bone_lengths(joints):
    return np.stack([np.linalg.norm(joints[..., c, :] - joints[..., p, :], axis=-1)
                     for p, c in BONES], axis=-1)


def random_hand(rng, frames=5, scale=1.0):
    """Joints (frames, 21, 3) in mm: the template hand's bone lengths times `scale`, random
    directions, the wrist somewhere in front of the camera."""
    joints = np.zeros((frames, NUM_JOINTS, 3))
    joints[:, WRIST] = rng.normal([0, 0, 400], 50, (frames, 3))
    for (parent, child), length in zip(BONES, BONE_LENGTHS_MM, strict=True):
        direction = rng.normal(size=(frames, 3))
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        joints[:, child] = joints[:, parent] + scale * length * direction
    return joints


# --- normalisation and augmentation ----------------------------------------------------------

def test_resample_interpolates_linearly_between_frames():
    joints = np.arange(5, dtype=np.float64)[:, None, None] * np.ones((5, 21, 3))
    np.testing.assert_allclose(resample(joints, 9)[:, 0, 0], np.arange(9) / 2)
    np.testing.assert_allclose(resample(joints, 3, 0.25, 0.75)[:, 0, 0], [1.0, 2.0, 3.0])
    assert resample(joints[:1], 4).shape == (4, 21, 3)  # one frame repeats


def test_retarget_gives_the_template_lengths_and_keeps_directions():
    rng = np.random.default_rng(0)
    small = random_hand(rng, scale=0.8)
    out = retarget(small)
    np.testing.assert_allclose(bone_lengths(out), np.broadcast_to(BONE_LENGTHS_MM, (5, 20)))
    np.testing.assert_allclose(out[:, WRIST], small[:, WRIST])
    for parent, child in BONES:
        before = small[:, child] - small[:, parent]
        after = out[:, child] - out[:, parent]
        cosine = (before * after).sum(-1) / np.linalg.norm(before, axis=-1) \
            / np.linalg.norm(after, axis=-1)
        np.testing.assert_allclose(cosine, 1.0)


def test_normalisation_removes_subject_size_and_position():
    rng = np.random.default_rng(1)
    hand = random_hand(rng)
    wrist = hand[:, WRIST:WRIST + 1]
    bigger = wrist + 1.2 * (hand - wrist) + np.array([30.0, -20.0, 50.0])
    np.testing.assert_allclose(normalize_skeleton(bigger), normalize_skeleton(hand), atol=1e-9)
    normal = normalize_skeleton(hand)
    np.testing.assert_array_equal(normal[:, WRIST], 0)
    np.testing.assert_allclose(bone_lengths(normal) * UNIT_MM,
                               np.broadcast_to(BONE_LENGTHS_MM, (5, 20)))
    # "sequence" keeps the wrist's travel, "scale" the proportions of the subject's hand
    travel = normalize_skeleton(hand, center="sequence")[:, WRIST] * UNIT_MM
    np.testing.assert_allclose(travel, hand[:, WRIST] - hand[:, WRIST].mean(0))
    scaled = normalize_skeleton(bigger, bones="scale")
    ratio = bone_lengths(scaled) / bone_lengths(bigger)
    np.testing.assert_allclose(ratio, ratio.flat[0])
    with pytest.raises(ValueError, match="center must be one of .* got 'wrist'"):
        normalize_skeleton(hand, center="wrist")


def test_align_puts_the_palm_in_the_canonical_frame():
    rng = np.random.default_rng(2)
    hand = random_hand(rng, frames=1)
    aligned = normalize_skeleton(hand, align=True)[0]
    middle = aligned[PALM[3]] - aligned[WRIST]  # wrist -> middle MCP lies along +y
    np.testing.assert_allclose(middle[[0, 2]], 0, atol=1e-12)
    assert middle[1] > 0
    across = aligned[PALM[2]] - aligned[PALM[5]]  # index MCP - pinky MCP: in the x-y plane
    np.testing.assert_allclose(across[2], 0, atol=1e-12)


def test_augmentation_rotates_scales_and_mirrors_rigidly():
    rng = np.random.default_rng(3)
    hand = normalize_skeleton(random_hand(rng, frames=10))
    plain = SkeletonTransform(min_duration=1.0, rotation=0.0, scale=(1.0, 1.0), noise_mm=0.0)
    np.testing.assert_allclose(plain(hand, 10, rng), hand)  # the whole clip, untouched
    rotate = SkeletonTransform(min_duration=1.0, rotation=30.0, scale=(1.5, 1.5), noise_mm=0.0,
                               mirror=1.0)
    clip = rotate(hand, 10, rng)
    np.testing.assert_allclose(bone_lengths(clip), 1.5 * bone_lengths(hand))
    assert not np.allclose(clip, 1.5 * hand)
    # a mirror is a reflection: the palm's handedness (a triple product) changes sign
    def handedness(j):
        return np.linalg.det(np.stack([j[:, PALM[1]], j[:, PALM[2]], j[:, PALM[5]]], axis=1)
                             - j[:, None, WRIST])
    assert np.all(np.sign(handedness(clip)) == -np.sign(handedness(hand)))
    cropped = SkeletonTransform(min_duration=0.5, rotation=0.0, scale=(1.0, 1.0), noise_mm=0.0)
    assert cropped(hand, 7, rng).shape == (7, 21, 3)


# --- the loader on the real files -------------------------------------------------------------

@needs_dev
def test_real_skeletons_load_without_video_files():
    assert not (DEV / "Video_files").exists()
    train = FPHADataset(str(DEV), "train", modalities=["joints"], num_frames=32)
    test = FPHADataset(str(DEV), "test", modalities=["joints"], num_frames=32)
    assert (len(train), len(test), train.num_classes) == (344, 256, 45)
    lengths = {video.num_frames for video in train.videos}
    assert len(lengths) > 50  # sequences of many lengths, all resampled to 32 frames
    item = test[0]
    assert item["joints"].shape == (32, 21, 3) and item["joints"].dtype == torch.float32
    np.testing.assert_array_equal(item["joints"][:, WRIST], 0)
    # CRLF line ends read like LF ones
    crlf = DEV / "Hand_pose_annotation_v1" / CRLF / "skeleton.txt"
    assert b"\r\n" in crlf.read_bytes()
    rows = np.array([line.split() for line in crlf.read_text().splitlines()], dtype=np.float64)
    np.testing.assert_array_equal(read_skeleton(crlf).reshape(len(rows), -1), rows[:, 1:])


@needs_dev
def test_empty_real_skeletons_are_skipped_and_named(tmp_path):
    root = tmp_path / "fpha"
    shutil.copytree(DEV / "Hand_pose_annotation_v1", root / "Hand_pose_annotation_v1")
    entries = [(EMPTY[0], 3, None), (CRLF, 1, None), ("Subject_1/open_juice_bottle/2", 0, None)]
    write_split(root, entries, entries)
    dataset, messages = build_with_warnings(FPHADataset, root, split="train",
                                            modalities=["joints"], num_frames=8)
    warned = "\n".join(messages)
    assert [video.name for video in dataset.videos] == [CRLF, "Subject_1/open_juice_bottle/2"]
    assert EMPTY[0] in warned and "skipped" in warned


def test_nonfinite_skeleton_values_are_named(tmp_path):
    rng = np.random.default_rng(4)
    joints = random_hand(rng, frames=6)
    joints[2, 5, 1] = np.nan
    sequence = "Subject_1/open_juice_bottle/1"
    write_skeleton(tmp_path / "Hand_pose_annotation_v1" / sequence / "skeleton.txt", joints)
    write_split(tmp_path, [(sequence, 0, None)], [(sequence, 0, None)])
    dataset, messages = build_with_warnings(FPHADataset, tmp_path, split="train",
                                            modalities=["joints"], num_frames=4)
    warned = "\n".join(messages)
    assert "skeleton.txt: 1 of 6 frames hold NaN or infinite values" in warned
    assert dataset.videos[0].joint_valid.tolist() == [True, True, False, True, True, True]
    assert np.isfinite(dataset[0]["joints"].numpy()).all()


@needs_dev
def test_cross_subject_folds_leave_one_subject_out():
    tests = [FPHADataset(str(DEV), "test", modalities=["joints"], fold=k) for k in range(6)]
    for fold, test in enumerate(tests):
        assert {video.name.split("/")[0] for video in test.videos} == {f"Subject_{fold + 1}"}
    assert len({video.name for test in tests for video in test.videos}) == 600
    train = FPHADataset(str(DEV), "train", modalities=["joints"], fold=2)
    assert "Subject_3" not in {video.name.split("/")[0] for video in train.videos}
    assert len(train) + len(tests[2]) == 600
    with pytest.raises(ValueError, match="fold must be in 0..5"):
        FPHADataset(str(DEV), "test", modalities=["joints"], fold=6)


def test_joints_are_read_alone(tmp_path):
    with pytest.raises(ValueError, match="joints modality is read alone"):
        FPHADataset(str(tmp_path), "train", modalities=["joints", "rgb"])


# --- the model ---------------------------------------------------------------------------------

def skeleton_batch(batch=2, frames=8, seed=0):
    rng = np.random.default_rng(seed)
    clips = [normalize_skeleton(random_hand(rng, frames)) for _ in range(batch)]
    return {"joints": torch.tensor(np.stack(clips), dtype=torch.float32),
            "label": torch.arange(batch)}


@pytest.mark.parametrize("head, streams", [
    ({}, 5), ({"orders": [0]}, 1), ({"orders": [0, 2], "slow_fast": "fast"}, 2),
    ({"multi_scale": False}, 5), ({"tcn_input": "joints"}, 5), ({"fd": "clip"}, 5),
    ({"skip": None}, 5), ({"shared_tcn": False}, 5)])
def test_skeleton_model_builds_from_the_config_with_the_papers_switches(head, streams):
    overrides = [f"model.heads.gesture.{key}={'null' if value is None else value}"
                 for key, value in head.items()]
    model = build(handmt.load_config(CONFIG, overrides))
    gesture = model.heads["gesture"].gesture
    assert gesture.multi_order.num_streams == streams
    assert (gesture.relations is None) == (head.get("multi_scale") is False)
    channels = 21 * 16 if head.get("tcn_input") == "joints" else 16  # the config: the hand node
    skip = 0 if "skip" in head else 21 * 6  # the config's TCNs read the normalised inputs too
    assert gesture.tcns[0].project.in_channels == channels + skip
    distinct_tcns = len({id(tcn) for tcn in gesture.tcns})
    assert distinct_tcns == (streams if head.get("shared_tcn") is False else 1)
    outputs = model(skeleton_batch())
    assert outputs["logits"].shape == (2, 45)
    model.losses(outputs, skeleton_batch())["total"].backward()


def test_the_tcns_read_the_normalised_inputs_beside_the_streams():
    """The config's skip: the backbone publishes its normalised inputs (positions and
    velocities), and the logits follow both them and the sub-network's streams (the skip must not
    bypass the sub-network)."""
    model = build(handmt.load_config(CONFIG)).eval()
    batch = skeleton_batch()
    features = model.backbone(batch)
    assert features["inputs"].shape == (2, 8, 21 * 6, 1, 1)
    head = model.heads["gesture"]
    logits = head(features, batch)["logits"]
    for name in ("inputs", "joints"):
        moved = {**features, name: features[name] + 1.0}
        assert not torch.allclose(head(moved, batch)["logits"], logits), name


def test_per_frame_feature_difference_follows_when_each_joint_moves():
    """Joint 1 moves in the first half of the clip, joint 2 in the second: per frame, each is the
    fastest joint exactly while it moves; per clip both get one weight for the whole clip."""
    z = torch.zeros(1, 6, 21, 1, 1, 1)
    z[0, :3, 1] = torch.arange(3.0).view(3, 1, 1, 1)      # frames 0-2: joint 1 moves
    z[0, 3:, 1] = 2.0
    z[0, 3:, 2] = torch.arange(1.0, 4.0).view(3, 1, 1, 1)  # frames 3-5: joint 2 moves
    _, _, first_fast, _, _ = MultiOrder(fd="frame")(z)
    fast = first_fast[0, :, :, 0, 0, 0] / torch.where(z[0, :, :, 0, 0, 0] == 0, 1.0,
                                                      z[0, :, :, 0, 0, 0])
    assert fast[1, 1] == 1 and fast[2, 1] == 1 and fast[4, 2] == 1 and fast[5, 2] == 1
    assert fast[4, 1] == pytest.approx(math.exp(-4.5))  # joint 1 still at frame 4
    _, _, clip_fast, _, _ = MultiOrder(fd="clip")(z)
    weight = clip_fast[0, 3:, 2].flatten() / z[0, 3:, 2].flatten()
    assert torch.allclose(weight, weight[0].expand(3))  # one weight for the whole clip


@needs_dev
def test_full_skeleton_model_learns_real_gestures(tmp_path):
    """The full model (multi-order + multi-scale) trained on the development split's 344
    sequences reaches >= 85 % top-1 on its 256 test sequences (chance 2.2 %). To keep the suite
    short, 20 epochs with the palm alignment and 15-degree rotations, which learn faster than the
    config's 30 degrees: measured 88.3 % with this seed, 87.1 % with seed 1 (the config's
    settings at 20 epochs: 81.6 / 80.9 %; at its 80 epochs: docs/collaborative.md)."""
    from handmt.engine.trainer import train

    cfg = handmt.load_config(CONFIG, [f"data.root={DEV}", "train.tensorboard=false",
                                      "train.epochs=20", "train.eval_every=20",
                                      "data.joint_norm.align=true", "data.augment.rotation=15"])
    record = train(cfg, tmp_path, progress=False)
    assert record["val_top1"] >= 0.85, record
    assert build_dataset(cfg["data"], "test").num_classes == 45
