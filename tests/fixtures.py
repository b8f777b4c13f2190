"""Small FPHA-layout datasets written into a test's tmp_path.

The scene is known exactly: a rectangular card (PATCH_HALF_SIZE, on the plane z = PATCH_Z mm
of the depth camera) in front of a wall at WALL_Z mm. Depth images hold the card and the wall;
colour images and masks show the card (white, 255) on a dark background, each rendered per pixel
by intersecting the pixel's ray with the card's plane. A hand skeleton floats around the card.
"""

import warnings

import cv2
import numpy as np

from handmt.data.camera import FPHACamera

PATCH_Z = 450.0
PATCH_HALF_SIZE = (40.0, 30.0)  # half width (x) and half height (y) of the card, mm
WALL_Z = 700
BACKGROUND = 50  # colour grey level off the card

# A tenth of FPHA's cameras: 192x108 colour, 64x48 depth, official extrinsic.
MINI_CAMERA = FPHACamera(
    color_K=np.diag([0.1, 0.1, 1.0]) @ FPHACamera().color_K,
    depth_K=np.diag([0.1, 0.1, 1.0]) @ FPHACamera().depth_K,
    color_size=(192, 108), depth_size=(64, 48))

# (sequence, label, frames per source); a None source is not written.
MINI_TRAIN = [
    ("Subject_1/open_juice_bottle/1", 0, {"color": 6, "depth": 6, "mask": 6, "skeleton": 6}),
    ("Subject_1/open_juice_bottle/2", 0, {"color": 5, "depth": 5, "mask": 5, "skeleton": 0}),
    ("Subject_1/pour_milk/1", 1, {"color": 7, "depth": 6, "mask": 6, "skeleton": 6}),
    ("Subject_2/pour_milk/1", 1, {"color": 5, "depth": 5, "mask": 5, "skeleton": 5}),
]
MINI_TEST = [
    ("Subject_2/open_juice_bottle/1", 0, {"color": 6, "depth": 6, "mask": 6, "skeleton": 6}),
    ("Subject_3/pour_milk/1", 1, {"color": 4, "depth": 4, "mask": 4, "skeleton": 4}),
]
CRLF_SEQUENCE = "Subject_1/open_juice_bottle/1"
EMPTY_SEQUENCE = "Subject_1/open_juice_bottle/2"
LONGER_COLOUR_SEQUENCE = "Subject_1/pour_milk/1"


def card_hits(K, depth_from_camera, size, plane_z=PATCH_Z):
    """Per pixel of a camera (intrinsics K, width x height `size`, pose `depth_from_camera` =
    (R, t) with depth-frame point = R @ point + t): whether its ray hits the card, and the z, in
    this camera's frame (mm), of the ray's hit on the depth-frame plane z = `plane_z`."""
    rotation, translation = depth_from_camera
    u, v = np.meshgrid(np.arange(size[0]), np.arange(size[1]))
    rays = np.stack([u, v, np.ones_like(u)], axis=-1) @ np.linalg.inv(K).T  # z = 1
    directions = rays @ rotation.T
    z = (plane_z - translation[2]) / directions[..., 2]
    hit = z[..., None] * directions + translation
    inside = (np.abs(hit[..., :2]) <= PATCH_HALF_SIZE).all(axis=-1)
    return inside, z


def colour_pose(camera):
    """(R, t) taking colour-camera points to the depth camera's frame."""
    rotation, translation = camera.extrinsic[:, :3], camera.extrinsic[:, 3]
    return rotation.T, -rotation.T @ translation


def render_frames(camera):
    """(colour BGR uint8, depth uint16 mm, mask uint8) images of the scene."""
    on_card, _ = card_hits(camera.color_K, colour_pose(camera), camera.color_size)
    colour = np.where(on_card[..., None], 255, BACKGROUND).astype(np.uint8).repeat(3, axis=-1)
    mask = np.where(on_card, 255, 0).astype(np.uint8)
    on_card_depth, _ = card_hits(camera.depth_K, (np.eye(3), np.zeros(3)), camera.depth_size)
    depth = np.where(on_card_depth, PATCH_Z, WALL_Z).astype(np.uint16)
    return colour, depth, mask


def skeleton_frames(num_frames, seed):
    """(num_frames, 21, 3) joints (depth camera, mm) around the card, drifting 3 mm per frame."""
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(-1, 1, size=(21, 3)) * [45.0, 35.0, 15.0]
    drift = np.arange(num_frames)[:, None, None] * np.array([3.0, 0.0, 0.0])
    return offsets + drift + np.array([0.0, 0.0, PATCH_Z - 30.0])


def write_skeleton(path, joints, newline="\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join([str(i)] + [f"{value:.4f}" for value in frame.ravel()])
             for i, frame in enumerate(joints)]
    path.write_bytes("".join(line + newline for line in lines).encode())


def write_sequence(root, sequence, counts, camera, seed=0, newline="\n"):
    """One sequence of the FPHA layout, with `counts` frames per source (None: not written)."""
    colour, depth, mask = render_frames(camera)
    folder = root / "Video_files" / sequence
    images = {"color": ("color_{:04d}.jpeg", colour), "depth": ("depth_{:04d}.png", depth),
              "mask": ("mask_{:04d}.png", mask)}
    for source, (pattern, image) in images.items():
        if counts.get(source) is None:
            continue
        (folder / source).mkdir(parents=True, exist_ok=True)
        for i in range(counts[source]):
            cv2.imwrite(str(folder / source / pattern.format(i)), image)
    if counts.get("skeleton") is not None:
        write_skeleton(root / "Hand_pose_annotation_v1" / sequence / "skeleton.txt",
                       skeleton_frames(counts["skeleton"], seed), newline)


def write_split(root, train, test, newline="\r\n"):
    """The split file (CRLF line endings and a blank line, as real files may have)."""
    lines = [f"Training {len(train)}"] + [f"{name} {label}" for name, label, _ in train]
    lines += ["", f"Test {len(test)}"] + [f"{name} {label}" for name, label, _ in test]
    (root / "data_split_action_recognition.txt").write_bytes(
        "".join(line + newline for line in lines).encode())


def write_mini_fpha(root, camera=MINI_CAMERA):
    """The mini dataset: MINI_TRAIN and MINI_TEST with the defects of the real one (an empty
    skeleton, a CRLF skeleton, a .DS_Store among frames, one colour frame too many)."""
    root.mkdir(parents=True, exist_ok=True)
    camera.save(root)
    for seed, (sequence, _, counts) in enumerate(MINI_TRAIN + MINI_TEST):
        newline = "\r\n" if sequence == CRLF_SEQUENCE else "\n"
        write_sequence(root, sequence, counts, camera, seed, newline)
    (root / "Video_files" / CRLF_SEQUENCE / "color" / ".DS_Store").write_bytes(b"\0\1junk")
    write_split(root, MINI_TRAIN, MINI_TEST)
    return root


def build_with_warnings(cls, root, **kwargs):
    """`cls(str(root), **kwargs)` and the messages of the warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = cls(str(root), **kwargs)
    return dataset, [str(w.message) for w in caught]


def tiny_overrides(root):
    """Overrides that train a config's model small and fast on the set at `root`."""
    return [f"data.root={root}", "data.size=32", "data.num_frames=2",
            "model.heads.gesture.num_classes=3", "model.backbone.arch=resnet10t",
            "train.batch_size=2", "train.workers=0", "data.cache=false"]
