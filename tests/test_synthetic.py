"""The synthetic FPHA-format generator (docs/design.md, "Synthetic FPHA-format data"): layout and
split,
skeleton files, kinematics, determinism, agreement of mask, depth and joints, reversed classes,
the generation cache and re-rendering a skeleton."""

import shutil

import cv2
import numpy as np
import pytest

from handmt.data.camera import FPHACamera
from handmt.data.fpha import FPHADataset, read_skeleton, read_split
from handmt.data.synthetic import ensure_fpha, generate_fpha, render_fpha, render_skeleton, writer
from handmt.data.synthetic.motion import gesture_classes, gesture_joints, make_subject
from handmt.hand import BONES

TINY = dict(classes=3, subjects=2, seqs=2, frames=6, size=128, progress=False)
NAMES = ("open_then_close_index", "close_then_open_index", "tap_index")
VIDEOS = [f"Subject_{s}/{name}/{q}" for s in (1, 2) for name in NAMES for q in (1, 2)]
POSES, FRAMES = "Hand_pose_annotation_v1", "Video_files"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_fpha(tmp_path_factory.mktemp("synthetic") / "fpha", **TINY)


def read(path, flags=cv2.IMREAD_UNCHANGED):
    return cv2.imread(str(path), flags)


def test_layout_names_counts_and_split(tiny):
    assert sorted(p.name for p in (tiny / FRAMES).iterdir()) == ["Subject_1", "Subject_2"]
    assert sorted(p.name for p in (tiny / FRAMES / "Subject_2").iterdir()) == sorted(NAMES)
    for video in VIDEOS:
        for folder, pattern in (("color", "color_{:04d}.jpeg"), ("depth", "depth_{:04d}.png"),
                                ("mask", "mask_{:04d}.png")):
            files = sorted(p.name for p in (tiny / FRAMES / video / folder).iterdir())
            assert files == [pattern.format(i) for i in range(6)]
        assert (tiny / POSES / video / "skeleton.txt").is_file()
    # Odd sequences train, even ones test, in every (subject, class); labels follow the table.
    train = [f"Subject_{s}/{name}/1 {label}" for s in (1, 2) for label, name in enumerate(NAMES)]
    test = [line.replace("/1 ", "/2 ") for line in train]
    expected = "\n".join(["Training 6", *train, "Test 6", *test]) + "\n"
    assert (tiny / "data_split_action_recognition.txt").read_text() == expected
    assert not tiny.with_name("fpha.tmp").exists()


def test_split_alternates_subjects_with_one_sequence(tmp_path):
    root = generate_fpha(tmp_path / "one", **{**TINY, "seqs": 1, "frames": 2})
    lines = (root / "data_split_action_recognition.txt").read_text().splitlines()
    assert lines == ["Training 3", "Subject_1/open_then_close_index/1 0",
                     "Subject_1/tap_index/1 2", "Subject_2/close_then_open_index/1 1", "Test 3",
                     "Subject_1/close_then_open_index/1 1", "Subject_2/open_then_close_index/1 0",
                     "Subject_2/tap_index/1 2"]


def test_cameras_and_image_formats(tiny):
    camera, fpha = FPHACamera.for_dataset(tiny), FPHACamera()
    assert camera.color_size == (128, 72) and camera.depth_size == (96, 72)
    np.testing.assert_allclose(camera.color_K, np.diag([128 / 1920, 128 / 1920, 1]) @ fpha.color_K)
    np.testing.assert_allclose(camera.depth_K, np.diag([96 / 640, 96 / 640, 1]) @ fpha.depth_K)
    np.testing.assert_array_equal(camera.extrinsic, fpha.extrinsic)
    video = tiny / FRAMES / VIDEOS[0]
    color, depth = read(video / "color/color_0003.jpeg"), read(video / "depth/depth_0003.png")
    mask = read(video / "mask/mask_0003.png")
    assert color.shape == (72, 128, 3) and color.dtype == np.uint8
    assert depth.shape == (72, 96) and depth.dtype == np.uint16
    assert mask.shape == (72, 128) and set(np.unique(mask)) == {0, 255}
    # Some holes, and the table/wall plane at 700 mm or more behind the hand.
    assert 0 < (depth == 0).mean() < 0.2 and np.percentile(depth[depth > 0], 90) >= 700


def test_skeleton_files(tiny):
    for video in VIDEOS:
        rows = [line.split() for line in
                (tiny / POSES / video / "skeleton.txt").read_text().splitlines()]
        assert [len(row) for row in rows] == [64] * 6
        assert [row[0] for row in rows] == [str(i) for i in range(6)]


def test_bone_lengths_are_constant_and_the_subjects(tiny):
    parents, children = zip(*BONES, strict=True)
    for video in VIDEOS:
        joints = read_skeleton(tiny / POSES / video / "skeleton.txt")
        lengths = np.linalg.norm(joints[:, children] - joints[:, parents], axis=-1)
        subject = make_subject(0, int(video.split("/")[0].split("_")[1]))
        np.testing.assert_allclose(lengths, np.tile(subject.bone_lengths, (6, 1)), atol=2e-3)
    assert np.abs(make_subject(0, 1).bone_lengths - make_subject(0, 2).bone_lengths).max() > 1.0


def test_hand_is_in_front_of_both_cameras(tiny):
    camera = FPHACamera.for_dataset(tiny)
    for video in VIDEOS:
        joints = read_skeleton(tiny / POSES / video / "skeleton.txt")
        assert 200 < joints[..., 2].min() and joints[..., 2].max() < 650
        for uv, (width, height) in ((camera.project_color(joints), camera.color_size),
                                    (camera.project_depth(joints), camera.depth_size)):
            assert (uv >= 0).all() and (uv[..., 0] < width).all() and (uv[..., 1] < height).all()


def test_same_seed_same_files_other_seed_differs(tiny, tmp_path):
    again = generate_fpha(tmp_path / "again", **{**TINY, "workers": 1})
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (tiny / name).read_bytes() == (again / name).read_bytes(), name
    other = generate_fpha(tmp_path / "other", **{**TINY, "seed": 1, "classes": 2})
    for name in (f"{POSES}/{VIDEOS[0]}/skeleton.txt", f"{FRAMES}/{VIDEOS[0]}/depth/depth_0000.png"):
        assert (tiny / name).read_bytes() != (other / name).read_bytes()


def registered_depth(depth, camera):
    """Depth moved into the colour image: per colour pixel the nearest depth-camera z landing
    within one pixel (the cameras are 26 mm apart, so the hand hides background that the depth
    camera sees; colour pixels are finer than depth ones), inf where none lands."""
    rows, cols = np.nonzero(depth)
    z = depth[rows, cols].astype(float)
    rays = np.stack([cols, rows, np.ones_like(cols)], -1) @ np.linalg.inv(camera.depth_K).T
    u, v = np.rint(camera.project_color(rays * z[:, None])).astype(int).T
    (width, height), inside = camera.color_size, (u >= 0) & (v >= 0)
    inside &= (u < width) & (v < height)
    nearest = np.full(width * height, np.inf, np.float32)
    np.minimum.at(nearest, v[inside] * width + u[inside], z[inside])
    return cv2.erode(nearest.reshape(height, width), np.ones((3, 3), np.uint8))


def test_mask_is_where_the_hand_is_nearer_than_the_background(tiny):
    camera = FPHACamera.for_dataset(tiny)
    for video in VIDEOS[::3]:
        joints = read_skeleton(tiny / POSES / video / "skeleton.txt")
        for frame in range(6):
            depth = read(tiny / FRAMES / video / f"depth/depth_{frame:04d}.png")
            mask = read(tiny / FRAMES / video / f"mask/mask_{frame:04d}.png")
            registered = registered_depth(depth, camera)
            # Depth seen through the (eroded) mask is the hand: within its joints' depth range
            # (+- a finger's thickness), far in front of the background.
            z = registered[cv2.erode(mask, np.ones((3, 3), np.uint8)) == 255]
            z = z[np.isfinite(z)]
            near, far = joints[frame, :, 2].min() - 20, joints[frame, :, 2].max() + 20
            assert len(z) > 20 and ((z > near) & (z < far)).mean() > 0.95
            # And the mask is nowhere else: it stays within the joints' projection, widened
            # by the palm's half thickness and the spread of the metacarpals at the wrist.
            uv = camera.project_color(joints[frame])
            radius = camera.color_K[0, 0] * 35 / joints[frame, :, 2].min()
            rows, cols = np.nonzero(mask)
            assert cols.min() >= uv[:, 0].min() - radius and cols.max() <= uv[:, 0].max() + radius
            assert rows.min() >= uv[:, 1].min() - radius and rows.max() <= uv[:, 1].max() + radius


def test_joints_project_into_the_mask(tiny):
    camera = FPHACamera.for_dataset(tiny)
    hits = []
    for video in VIDEOS:
        joints = read_skeleton(tiny / POSES / video / "skeleton.txt")
        for frame in range(6):
            mask = cv2.dilate(read(tiny / FRAMES / video / f"mask/mask_{frame:04d}.png"),
                              np.ones((3, 3), np.uint8))
            u, v = np.rint(camera.project_color(joints[frame])).astype(int).T
            hits.append(mask[v, u] == 255)
    # The wrist often hides under the sleeve's cuff; the other joints are on the hand.
    assert np.mean(hits) > 0.9 and np.mean(hits, axis=1).min() >= 0.75


def test_reversed_classes_play_the_same_poses_backwards():
    classes, camera, subject = gesture_classes(45), writer.synthetic_camera(128), make_subject(0, 3)
    pairs = [(a, b) for a in classes for b in classes if b.reversed and not a.reversed
             and (a.program, a.args, a.profile) == (b.program, b.args, b.profile)]
    assert {(a.name, b.name) for a, b in pairs} >= {
        ("open_then_close_index", "close_then_open_index"), ("circle_cw", "circle_ccw"),
        ("swipe_right", "swipe_left"), ("swipe_up_constant", "swipe_down"), ("push", "pull"),
        ("pinch", "release"), ("rotate_in", "rotate_out")}
    for forward, backward in pairs:
        a = gesture_joints(forward, subject, 12, np.random.default_rng(7), camera)
        b = gesture_joints(backward, subject, 12, np.random.default_rng(7), camera)
        np.testing.assert_array_equal(b, a[::-1])
        assert np.abs(a - a[::-1]).max() > 10.0, forward.name  # order matters: no palindrome


def test_class_table():
    names = [c.name for c in gesture_classes(45)]
    assert len(set(names)) == 45 and names[:3] == list(NAMES)
    assert len(gesture_classes(95)) == 95
    for bad in (1, 96):
        with pytest.raises(ValueError, match=f"classes={bad}"):
            gesture_classes(bad)


def test_a_list_picks_classes_by_name_or_id_in_its_order():
    table = gesture_classes(["victory", 2, "close_then_open_index"])
    assert [c.name for c in table] == ["victory", "tap_index", "close_then_open_index"]
    for bad, message in ((["victory", "wink"], "'wink' is neither a class name"),
                         ([0, 95], "95 is neither"), ([True, 2], "True is neither"),
                         (["tap_index", 2], "at least 2 distinct classes"),
                         (["victory"], "at least 2 distinct classes")):
        with pytest.raises(ValueError, match=message):
            gesture_classes(bad)


def test_a_set_of_chosen_classes_labels_them_in_the_list_order(tmp_path):
    root = generate_fpha(tmp_path / "fpha", **{**TINY, "classes": ["tap_index", "victory"],
                                               "subjects": 1, "frames": 2})
    split = read_split(root / "data_split_action_recognition.txt")
    train, test = split["train"], split["test"]
    assert train == [("Subject_1/tap_index/1", 0), ("Subject_1/victory/1", 1)]
    assert test == [("Subject_1/tap_index/2", 0), ("Subject_1/victory/2", 1)]


def test_ensure_fpha_generates_once_per_arguments(tmp_path, monkeypatch):
    first = ensure_fpha(tmp_path, **TINY)
    assert first.parent == tmp_path and first.name.startswith("synthetic-fpha-")
    stamp = (first / "data_split_action_recognition.txt").stat().st_mtime_ns
    assert ensure_fpha(tmp_path, **{**TINY, "workers": 1}) == first
    monkeypatch.setenv("HANDMT_CACHE", str(tmp_path))
    assert ensure_fpha(**TINY) == first
    assert (first / "data_split_action_recognition.txt").stat().st_mtime_ns == stamp
    other = ensure_fpha(tmp_path, **{**TINY, "seed": 1, "frames": 2})
    assert other != first and other.parent == tmp_path


def test_interrupted_run_leaves_nothing_and_existing_folder_is_kept(tmp_path, monkeypatch):
    def crash(video, **kwargs):
        raise RuntimeError("interrupted")

    with monkeypatch.context() as patch:
        patch.setattr(writer, "_write_video", crash)
        with pytest.raises(RuntimeError):
            generate_fpha(tmp_path / "set", **{**TINY, "workers": 1})
    assert not (tmp_path / "set").exists()
    generate_fpha(tmp_path / "set", **{**TINY, "frames": 2})
    with pytest.raises(FileExistsError, match="exists"):
        generate_fpha(tmp_path / "set", **TINY)
    with pytest.raises(ValueError, match="frames=1"):
        generate_fpha(tmp_path / "bad", **{**TINY, "frames": 1})


def test_render_skeleton_draws_the_same_hand(tiny, tmp_path):
    video = VIDEOS[5]
    camera = FPHACamera.for_dataset(tiny)
    out = render_skeleton(tiny / POSES / video / "skeleton.txt", tmp_path / "again", camera, seed=4)
    for frame in range(6):
        # The mask depends only on the joints and the camera, not on the scene.
        np.testing.assert_array_equal(read(out / f"mask/mask_{frame:04d}.png"),
                                      read(tiny / FRAMES / video / f"mask/mask_{frame:04d}.png"))
        assert read(out / f"depth/depth_{frame:04d}.png").shape == (72, 96)
    assert len(list((out / "color").iterdir())) == 6


def test_a_plain_background_keeps_the_motion_and_the_masks_and_drops_the_clutter(tiny, tmp_path):
    plain = generate_fpha(tmp_path / "plain", **TINY, background="plain")
    assert read_split(plain / "data_split_action_recognition.txt") == read_split(
        tiny / "data_split_action_recognition.txt")
    for video in VIDEOS[:4]:
        np.testing.assert_array_equal(read_skeleton(plain / POSES / video / "skeleton.txt"),
                                      read_skeleton(tiny / POSES / video / "skeleton.txt"))
        for frame in (0, 5):
            name = f"mask/mask_{frame:04d}.png"
            mask = read(plain / FRAMES / video / name)
            np.testing.assert_array_equal(mask, read(tiny / FRAMES / video / name))
            # around the hand: mostly a wall of one colour (shading, noise; and the sleeve), so
            # the median pixel is close to the median colour; not so in clutter
            spread = {}
            for root in (plain, tiny):
                pixels = read(root / FRAMES / video / f"color/color_{frame:04d}.jpeg")[mask == 0]
                spread[root] = np.median(np.abs(pixels - np.median(pixels, 0)).sum(1))
            assert spread[plain] < 25 < spread[tiny], spread
    with pytest.raises(ValueError, match="background='wall', expected one of clutter, plain"):
        generate_fpha(tmp_path / "other", **TINY, background="wall")


def test_render_fpha_renders_every_split_sequence_of_a_skeleton_tree(tiny, tmp_path):
    """Real motion in, an FPHA-layout set out: same split and labels, the skeletons subsampled
    evenly, the hand drawn where those joints are; a sequence with an empty skeleton is left out
    with a warning that names it."""
    source = tmp_path / "annotations"
    shutil.copytree(tiny / POSES, source / POSES)
    shutil.copy(tiny / writer.SPLIT_FILE, source / writer.SPLIT_FILE)
    (source / POSES / VIDEOS[0] / "skeleton.txt").write_text("")
    with pytest.warns(UserWarning, match=VIDEOS[0]):
        out = render_fpha(source, tmp_path / "rendered", max_frames=4, size=128, workers=1,
                          progress=False)
    expected = read_split(tiny / writer.SPLIT_FILE)
    expected["train"] = [(name, label) for name, label in expected["train"] if name != VIDEOS[0]]
    assert read_split(out / writer.SPLIT_FILE) == expected
    kept = [0, 2, 3, 5]  # 4 of 6 frames, evenly spread, the ends kept
    video = VIDEOS[5]
    np.testing.assert_allclose(read_skeleton(out / POSES / video / "skeleton.txt"),
                               read_skeleton(tiny / POSES / video / "skeleton.txt")[kept],
                               atol=1e-4)
    for new, old in enumerate(kept):  # the mask depends only on the joints and the camera
        np.testing.assert_array_equal(read(out / FRAMES / video / f"mask/mask_{new:04d}.png"),
                                      read(tiny / FRAMES / video / f"mask/mask_{old:04d}.png"))
    dataset = FPHADataset(str(out), split="train", num_frames=4, size=32)
    assert len(dataset) == len(expected["train"])
    with pytest.raises(FileNotFoundError, match="split file|data_split"):
        render_fpha(tmp_path / "nowhere", tmp_path / "other", progress=False)
