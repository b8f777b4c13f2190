"""Write the synthetic set in the FPHA layout (docs/design.md, "FPHA as distributed" and "Synthetic
FPHA-format data"), so that the FPHA loader reads it unchanged.

    <out>/Video_files/Subject_k/<action>/<seq>/color/color_%04d.jpeg
                                              /depth/depth_%04d.png   uint16 mm, 0 invalid
                                              /mask/mask_%04d.png     uint8 0/255, colour pixels
    <out>/Hand_pose_annotation_v1/Subject_k/<action>/<seq>/skeleton.txt   depth-camera mm
    <out>/data_split_action_recognition.txt
    <out>/handmt_camera.json       the synthetic cameras (FPHACamera.save)
    <out>/handmt_synthetic.json    generator version, arguments and the class table

Subjects and sequences are numbered from 1, frames from 0, one action folder per class. Every
video draws its randomness from its own seed (seed, subject, class, sequence), so the output does
not depend on the number of workers or their order.
"""

import hashlib
import inspect
import json
import shutil
import warnings
from dataclasses import asdict
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..cache import cache_home
from ..camera import FPHACamera
from ..fpha import NUM_CLASSES, read_skeleton, read_split
from .motion import gesture_classes, gesture_joints, make_subject, skin_tone
from .render import BACKGROUNDS, render_video

GENERATOR_VERSION = 1
VIDEOS, POSES = "Video_files", "Hand_pose_annotation_v1"
SPLIT_FILE = "data_split_action_recognition.txt"
INFO_FILE = "handmt_synthetic.json"
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 90]
# Fast lossless PNGs: no row filter compresses the stepped depth best, and quickest.
PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def synthetic_camera(size=320):
    """FPHA's cameras scaled for a colour image `size` px wide (16:9, intrinsics scaled by
    size / 1920) and a 4:3 depth image 3/4 as wide (intrinsics scaled by its width / 640, so the
    hand spans about 3/4 as many depth as colour pixels), with FPHA's extrinsic."""
    fpha = FPHACamera()
    depth_width = round(0.75 * size)
    color_scale = np.diag([size / 1920, size / 1920, 1.0])
    depth_scale = np.diag([depth_width / 640, depth_width / 640, 1.0])
    return FPHACamera(color_K=color_scale @ fpha.color_K, depth_K=depth_scale @ fpha.depth_K,
                      extrinsic=fpha.extrinsic, color_size=(size, round(size * 9 / 16)),
                      depth_size=(depth_width, round(depth_width * 3 / 4)))


def write_skeleton(path, joints):
    """skeleton.txt: per line the frame index then 21 x (x, y, z) in mm, space separated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = np.column_stack([np.arange(len(joints)), joints.reshape(len(joints), -1)])
    np.savetxt(path, table, fmt=["%d"] + ["%.4f"] * (table.shape[1] - 1), delimiter=" ")


def write_frames(frames, folder):
    """Write (colour, depth, mask) frames as color/color_%04d.jpeg, depth/depth_%04d.png and
    mask/mask_%04d.png under `folder`."""
    for name in ("color", "depth", "mask"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for index, (color, depth, mask) in enumerate(frames):
        for path, image, params in ((folder / "color" / f"color_{index:04d}.jpeg", color, JPEG),
                                    (folder / "depth" / f"depth_{index:04d}.png", depth, PNG),
                                    (folder / "mask" / f"mask_{index:04d}.png", mask, PNG)):
            if not cv2.imwrite(str(path), image, params):  # OpenCV reports failure, not raises
                raise OSError(f"could not write {path}")


def check_background(caller, background):
    if background not in BACKGROUNDS:
        raise ValueError(f"{caller}: background={background!r}, expected one of "
                         f"{', '.join(BACKGROUNDS)}")


def _video_name(subject, gesture, seq):
    return f"Subject_{subject}/{gesture.name}/{seq}"


def _sequence(video, *, camera, classes, frames, seed, background="clutter"):
    """(joints, frames generator) of one video = (subject, class id, sequence), drawn from the
    video's own seeds: any one video renders alone exactly as within the whole set."""
    subject_index, label, seq = video
    subject = make_subject(seed, subject_index)
    motion_seed, scene_seed = np.random.SeedSequence([seed, 1, subject_index, label, seq]).spawn(2)
    joints = gesture_joints(classes[label], subject, frames, np.random.default_rng(motion_seed),
                            camera)
    return joints, render_video(joints, camera, np.random.default_rng(scene_seed), subject.skin,
                                background)


def _write_video(video, *, root, camera, classes, frames, seed, background):
    """Generate and write one video; `video` = (subject, class id, sequence)."""
    joints, rendered = _sequence(video, camera=camera, classes=classes, frames=frames, seed=seed,
                                 background=background)
    name = _video_name(video[0], classes[video[1]], video[2])
    write_skeleton(root / POSES / name / "skeleton.txt", joints)
    write_frames(rendered, root / VIDEOS / name)


def _single_threaded():
    cv2.setNumThreads(1)  # the workers already fill the cores


def generate_fpha(out, *, classes: int | list = NUM_CLASSES, subjects: int = 6, seqs: int = 2,
                  frames: int = 32, size: int = 320, seed: int = 0,
                  background: str = "clutter", workers: int = 2, progress: bool = True) -> Path:
    """Generate the synthetic FPHA-format set at `out` and return its path.

    `classes` gesture classes (`motion.gesture_classes`: a count, or a list of class names or
    ids), `subjects` hands, `seqs` sequences per (subject, class), each exactly `frames` frames
    long, colour `size` px wide, in a `background` of `render.BACKGROUNDS` ("clutter", "plain").
    Split: within every (subject, class) odd sequences train and even ones test; with seqs=1,
    subjects alternate within every class. Same arguments, same files (whatever `workers`)."""
    table = gesture_classes(classes)
    for name, value, low in (("subjects", subjects, 1), ("seqs", seqs, 1), ("frames", frames, 2),
                             ("size", size, 64), ("workers", workers, 1)):
        if value < low:
            raise ValueError(f"generate_fpha: {name}={value}, must be at least {low}")
    if seqs == 1 and subjects == 1:
        raise ValueError("generate_fpha: with seqs=1 the split alternates subjects, so it needs "
                         "subjects >= 2")
    check_background("generate_fpha", background)
    camera = synthetic_camera(size)
    videos = [(subject, label, seq) for subject in range(1, subjects + 1)
              for label in range(len(table)) for seq in range(1, seqs + 1)]

    def in_training(subject, label, seq):
        return (subject + label) % 2 == 1 if seqs == 1 else seq % 2 == 1

    split = {True: [], False: []}
    for subject, label, seq in videos:
        split[in_training(subject, label, seq)].append((_video_name(subject, table[label], seq),
                                                        label))
    info = {"generator_version": GENERATOR_VERSION,
            "arguments": dict(classes=classes, subjects=subjects, seqs=seqs, frames=frames,
                              size=size, seed=seed, background=background),
            "classes": [{"label": label, **asdict(gesture)} for label, gesture in enumerate(table)]}
    job = partial(_write_video, camera=camera, classes=table, frames=frames, seed=seed,
                  background=background)
    return _write_set(out, videos, job, split[True], split[False], camera, info,
                      workers=workers, progress=progress, desc="synthetic FPHA videos")


def _write_set(out, videos, job, train, test, camera, info, *, workers, progress, desc):
    """Run `job(video, root=...)` for every video into `out`.tmp, then write the split file
    (`train` and `test`: lists of (sequence, label)), the camera and `info`, and rename the
    folder to `out`: an interrupted run leaves no partial set at `out`."""
    out = Path(out).expanduser()
    if out.exists():
        raise FileExistsError(f"{out} exists: remove it or choose another folder")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by an interrupted run
    tmp.mkdir(parents=True)
    job = partial(job, root=tmp)
    bar = tqdm(total=len(videos), desc=desc, disable=not progress or None)  # None: not in a log
    if workers == 1:
        for video in videos:
            job(video)
            bar.update()
    else:
        # spawn, not fork: a fork of a process whose OpenCV/OpenMP thread pools already ran can
        # deadlock in the child (seen when generating after loading data in the same process)
        with get_context("spawn").Pool(workers, initializer=_single_threaded) as pool:
            for _ in pool.imap_unordered(job, videos):
                bar.update()
    bar.close()
    (tmp / SPLIT_FILE).write_text(
        f"Training {len(train)}\n" + "".join(f"{name} {label}\n" for name, label in train)
        + f"Test {len(test)}\n" + "".join(f"{name} {label}\n" for name, label in test))
    camera.save(tmp)
    (tmp / INFO_FILE).write_text(json.dumps(info, indent=1))
    tmp.rename(out)
    return out


def _render_real(video, *, root, camera, seed, background):
    """Render one real sequence; `video` = (index, sequence name, joints)."""
    index, name, joints = video
    rng = np.random.default_rng([seed, 3, index])
    write_skeleton(root / POSES / name / "skeleton.txt", joints)
    write_frames(render_video(joints, camera, rng, skin_tone(rng), background),
                 root / VIDEOS / name)


def subsample(joints, max_frames):
    """At most `max_frames` frames spread evenly over the whole sequence (first and last kept):
    the same motion at a lower frame rate."""
    if max_frames is None or len(joints) <= max_frames:
        return joints
    return joints[np.linspace(0, len(joints) - 1, max_frames).round().astype(int)]


def render_fpha(skeletons, out, *, max_frames: int | None = None, size: int = 320, seed: int = 0,
                background: str = "clutter", workers: int = 2, progress: bool = True) -> Path:
    """Render every sequence of the split file of the FPHA annotation tree `skeletons` (the real
    dataset, or ../shared/fpha-dev) into an FPHA-layout folder `out`: colour, depth and mask
    frames in a random scene per sequence, the (subsampled) skeletons, the same split and labels.
    `max_frames` subsamples longer sequences evenly in time; `background` as `generate_fpha`'s. A
    sequence whose skeleton file is missing or empty is left out with a warning (FPHA's three
    empty files are not in its split)."""
    check_background("render_fpha", background)
    root = Path(skeletons).expanduser()
    split_path = root / SPLIT_FILE
    if not split_path.is_file():
        raise FileNotFoundError(f"{split_path} does not exist: --skeletons must be an FPHA folder "
                                f"holding {SPLIT_FILE} and {POSES}/")
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"render_fpha: max_frames={max_frames}, must be at least 2")
    sections = read_split(split_path)
    videos, kept, skipped = [], {}, []
    for split in ("train", "test"):
        kept[split] = []
        for name, label in sections.get(split, []):
            path = root / POSES / name / "skeleton.txt"
            joints = read_skeleton(path) if path.is_file() else np.zeros((0,))
            if not len(joints):
                skipped.append(str(path))
                continue
            videos.append((len(videos), name, subsample(joints, max_frames)))
            kept[split].append((name, label))
    if skipped:
        warnings.warn(f"{len(skipped)} sequences have no skeleton and are left out: "
                      f"{', '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}",
                      stacklevel=2)
    info = {"generator_version": GENERATOR_VERSION, "rendered_from": str(root.resolve()),
            "arguments": dict(max_frames=max_frames, size=size, seed=seed, background=background),
            "frames": int(sum(len(joints) for _, _, joints in videos))}
    camera = synthetic_camera(size)
    job = partial(_render_real, camera=camera, seed=seed, background=background)
    return _write_set(out, videos, job, kept["train"], kept["test"], camera, info,
                      workers=workers, progress=progress, desc="rendering FPHA skeletons")


def ensure_fpha(cache_root=None, **generate_kwargs) -> Path:
    """The synthetic set for `generate_kwargs` (those of `generate_fpha`, `out` excepted),
    generated on first use under `cache_root` (default: cache.cache_home()) as
    `synthetic-fpha-<hash of the arguments and generator version>` and reused afterwards."""
    bound = inspect.signature(generate_fpha).bind(None, **generate_kwargs)
    bound.apply_defaults()
    content = {k: v for k, v in bound.arguments.items() if k not in ("out", "workers", "progress")}
    key = hashlib.sha1(json.dumps({**content, "generator_version": GENERATOR_VERSION},
                                  sort_keys=True).encode()).hexdigest()[:10]
    root = Path(cache_root or cache_home()).expanduser() / f"synthetic-fpha-{key}"
    if not root.exists():
        try:
            generate_fpha(root, **generate_kwargs)
        except FileExistsError:  # another process finished it first
            pass
    return root


def render_fpha_video(out, *, label: int = 0, subject: int = 1, seq: int = 1,
                      classes: int | list = NUM_CLASSES, frames: int = 32, size: int = 320,
                      seed: int = 0, background: str = "clutter", fps: float = 30.0) -> Path:
    """Write the colour frames of one synthetic sequence as an MP4 file (mp4v) at `out`: the
    sequence Subject_<subject>/<class `label`>/<seq> of `generate_fpha` with the same classes,
    frames, size, seed and background (a `seq` past the set's `seqs` is one it does not hold). A
    whole-frame video with no annotation, the input of `handmt predict`."""
    table = gesture_classes(classes)
    if not 0 <= label < len(table):
        raise ValueError(f"render_fpha_video: label={label}, the set has classes "
                         f"0..{len(table) - 1}")
    for name, value, low in (("subject", subject, 1), ("seq", seq, 1), ("frames", frames, 2),
                             ("size", size, 64)):
        if value < low:
            raise ValueError(f"render_fpha_video: {name}={value}, must be at least {low}")
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    camera = synthetic_camera(size)
    check_background("render_fpha_video", background)
    _, rendered = _sequence((subject, label, seq), camera=camera, classes=table, frames=frames,
                            seed=seed, background=background)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, camera.color_size)
    if not writer.isOpened():
        raise ValueError(f"{out}: OpenCV cannot write an mp4v video there")
    try:
        for color, _, _ in rendered:
            writer.write(color)
    finally:
        writer.release()
    return out


def render_skeleton(skeleton_path, out_dir, camera=None, seed=0):
    """Render the colour, depth and mask frames of any skeleton.txt (depth-camera mm, e.g. real
    FPHA motion) into `out_dir`/{color,depth,mask} in a random scene drawn from `seed`. The camera
    defaults to `synthetic_camera(320)`; pass FPHACamera() for FPHA's full resolution."""
    joints = read_skeleton(skeleton_path)
    if not len(joints):
        raise ValueError(f"{skeleton_path}: no frames to render")
    rng = np.random.default_rng([seed, 2])
    out_dir = Path(out_dir)
    write_frames(render_video(joints, camera or synthetic_camera(), rng, skin_tone(rng)), out_dir)
    return out_dir
