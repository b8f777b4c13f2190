"""Procedural hand motion: a kinematic 21-joint hand driven by gesture programs.

Implements the motion half of docs/design.md, "Synthetic FPHA-format data". A subject is a hand
(bone lengths, skin tone, speed); a gesture class is a program (keyframed finger closure and
spread, wrist trajectory and rotation) plus a variant (played forwards or reversed, speed
profile). `gesture_joints` turns both into joints (F, 21, 3) in the depth camera's frame, in mm,
FPHA joint order (`handmt.hand`), the hand 300-550 mm in front of the camera and inside the view
of both cameras.

The classes are built to separate methods: a per-frame model that averages frames without order
(TSN) cannot tell apart a program from its reversal (identical frame sets, reversed), a single
from a double tap (same poses, other rhythm) nor, only partly, speed profiles of one path; small
taps need fine finger articulation; wrist trajectories differ only in direction.

Class table (`gesture_classes(45)`, the default; `classes=N` takes the first N rows, a list of
names or ids those rows, labelled in the list's order):

| id | name | program | variant |
|---|---|---|---|
| 0, 1 | open_then_close_index, close_then_open_index | open_close(index) | forward, reversed |
| 2, 3 | tap_index, double_tap_index | tap(index) | 1 tap, 2 taps |
| 4, 5 | circle_cw, circle_ccw | circle (wrist, image plane) | forward, reversed |
| 6, 7, 8 | close_all_constant, _accelerating, _decelerating | close(all) | speed profile |
| 9, 10 | swipe_right, swipe_left | swipe(right) | forward, reversed |
| 11, 12 | open_then_close_middle, close_then_open_middle | open_close(middle) | fwd, rev |
| 13, 14 | tap_middle, double_tap_middle | tap(middle) | 1 tap, 2 taps |
| 15, 16 | rotate_in, rotate_out | pronate (turn about the forearm) | forward, reversed |
| 17, 18, 19 | swipe_up_constant, _accelerating, _decelerating | swipe(up) | speed profile |
| 20, 21 | push, pull | swipe(toward the camera) | forward, reversed |
| 22, 23 | open_then_close_thumb, close_then_open_thumb | open_close(thumb) | fwd, rev |
| 24, 25 | tap_ring, double_tap_ring | tap(ring) | 1 tap, 2 taps |
| 26, 27, 28 | point_index, victory, thumbs_up | hold_shape (form a hand shape) | forward |
| 29, 30 | open_then_close_pinky, close_then_open_pinky | open_close(pinky) | fwd, rev |
| 31, 32 | tap_pinky, double_tap_pinky | tap(pinky) | 1 tap, 2 taps |
| 33, 34 | wave, swipe_down | wave (wrist deviation); swipe(up) | forward; reversed |
| 35, 36 | open_then_close_index_middle, close_then_open_index_middle | open_close | fwd, rev |
| 37, 38 | tap_thumb, double_tap_thumb | tap(thumb) | 1 tap, 2 taps |
| 39, 40 | pinch, release | pinch(thumb, index) | forward, reversed |
| 41, 42 | open_then_close_all, close_then_open_all | open_close(all) | fwd, rev |
| 43, 44 | spread_fingers, join_fingers | spread_fingers | forward, reversed |
| 45... | open_then_close_<fingers>, close_then_open_<fingers> | open_close(others) | fwd, rev |

open_close goes rest -> fully open -> closed; its reversal closed -> open -> rest. Classes past 45
are the remaining finger subsets (25 of them, by size), so at most 95 classes exist.

Per-sequence variation: the gesture occupies a window of the clip whose length follows the
subject's and the sequence's speed and whose start is random (the rest is held), a smooth
monotone timing warp, amplitude jitter, rest pose, wrist position and orientation jitter, and
smooth noise on every articulation parameter (never on joint positions, so bone lengths stay
exactly the subject's).
"""

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.spatial.transform import Rotation

from ...hand import BONE_LENGTHS_MM, BONES, FINGER_CHAINS, FINGERS, NUM_JOINTS, WRIST

# Hand frame: x to the thumb side, y from the wrist along the fingers, z out of the palm. Angles in
# degrees: wrist->MCP bearing in the palm plane (positive toward the thumb) and palmar tilt.
METACARPAL_BEARING = np.array([48.0, 14.0, 1.0, -11.0, -23.0])
METACARPAL_TILT = np.array([28.0, 3.0, 0.0, 3.0, 7.0])
# Finger bearing with the fingers together (spread 0) and fully spread (spread 1).
FINGER_BEARING_TOGETHER = np.array([27.0, 3.0, 0.0, -3.0, -7.0])
FINGER_BEARING_SPREAD = np.array([47.0, 16.0, 2.0, -11.0, -24.0])
# Flexion (degrees) of the three joints of each finger at closure 1 (a fist).
FLEXION_AT_FIST = np.array([
    [25.0, 44.0, 76.0],
    [80.0, 100.0, 60.0],
    [82.0, 100.0, 62.0],
    [84.0, 100.0, 62.0],
    [86.0, 100.0, 62.0],
])
# The four fingers curl toward the palm (z); the thumb curls across the palm, toward the pinky.
THUMB_CURL_TOWARD = np.array([-0.66, 0.29, 0.69])

# Skin tones (BGR, 0-1), light to dark; a subject's is drawn between two neighbours.
SKIN_TONES = np.array([
    [172, 205, 241], [135, 180, 228], [105, 160, 214], [75, 128, 190], [48, 90, 150],
    [35, 60, 100],
]) / 255.0

PROFILES = {
    "constant": lambda u: u,
    "accelerating": lambda u: u ** 2,
    "decelerating": lambda u: 1.0 - (1.0 - u) ** 2,
}
ALL = tuple(range(len(FINGERS)))


@dataclass(frozen=True)
class Subject:
    """A hand: bone lengths (20, mm, `hand.BONES` order), skin colour (BGR, 0-1) and a speed
    factor (> 1: performs gestures faster, in a shorter part of the clip)."""

    index: int
    bone_lengths: np.ndarray
    skin: np.ndarray
    speed: float


def skin_tone(rng):
    """A skin colour (BGR, 0-1) between two neighbouring tones of SKIN_TONES."""
    tone = rng.uniform(0, len(SKIN_TONES) - 1)
    low = int(tone)
    return SKIN_TONES[low] + (tone - low) * (SKIN_TONES[low + 1] - SKIN_TONES[low])


def make_subject(seed, index):
    """Subject `index` of the set generated with `seed`: hand size 0.88-1.12 of the adult means,
    each bone +-5 % on top, a skin tone, speed 0.8-1.25."""
    rng = np.random.default_rng([seed, 0, index])
    lengths = BONE_LENGTHS_MM * rng.uniform(0.88, 1.12) * rng.uniform(0.95, 1.05, len(BONES))
    return Subject(index, lengths, skin_tone(rng), float(rng.uniform(0.8, 1.25)))


@dataclass(frozen=True)
class GestureClass:
    """One class: a program with its arguments, played forwards or reversed, at a speed profile."""

    name: str
    program: str
    args: tuple = ()
    reversed: bool = False
    profile: str = "constant"


def _pair(forward, backward, program, *args):
    return [GestureClass(forward, program, args), GestureClass(backward, program, args, True)]


def _open_close(fingers):
    name = "_".join(FINGERS[f] for f in fingers) if fingers != ALL else "all"
    return _pair(f"open_then_close_{name}", f"close_then_open_{name}", "open_close", fingers)


def _taps(finger):
    name = FINGERS[finger]
    return [GestureClass(f"tap_{name}", "tap", (finger, 1)),
            GestureClass(f"double_tap_{name}", "tap", (finger, 2))]


def _speeds(name, program, *args):
    return [GestureClass(f"{name}_{profile}", program, args, profile=profile)
            for profile in PROFILES]


RIGHT, UP, TOWARD_CAMERA = (90.0, 0.0, 0.0), (0.0, -60.0, 0.0), (0.0, 0.0, -80.0)
BASE_CLASSES = [
    *_open_close((1,)), *_taps(1), *_pair("circle_cw", "circle_ccw", "circle"),
    *_speeds("close_all", "close"), *_pair("swipe_right", "swipe_left", "swipe", RIGHT),
    *_open_close((2,)), *_taps(2), *_pair("rotate_in", "rotate_out", "pronate"),
    *_speeds("swipe_up", "swipe", UP), *_pair("push", "pull", "swipe", TOWARD_CAMERA),
    *_open_close((0,)), *_taps(3),
    GestureClass("point_index", "hold_shape", ((0.7, 0.0, 1.0, 1.0, 1.0), 0.2)),
    GestureClass("victory", "hold_shape", ((0.8, 0.0, 0.0, 1.0, 1.0), 1.0)),
    GestureClass("thumbs_up", "hold_shape", ((-0.1, 1.0, 1.0, 1.0, 1.0), 0.0)),
    *_open_close((4,)), *_taps(4),
    GestureClass("wave", "wave"), GestureClass("swipe_down", "swipe", (UP,), True),
    *_open_close((1, 2)), *_taps(0), *_pair("pinch", "release", "pinch"),
    *_open_close(ALL), *_pair("spread_fingers", "join_fingers", "spread_fingers"),
]
USED_SUBSETS = {c.args[0] for c in BASE_CLASSES if c.program == "open_close"}
EXTRA_CLASSES = [cls for size in range(1, 6) for fingers in combinations(range(5), size)
                 if fingers not in USED_SUBSETS for cls in _open_close(fingers)]
CLASS_CATALOGUE = BASE_CLASSES + EXTRA_CLASSES


def gesture_classes(classes=45):
    """The gesture classes of a set, labelled 0, 1, ... in this order: an int N takes the first N
    rows of the class table (module docstring), a list the rows it names (class names or ids)."""
    if isinstance(classes, int):
        if not 2 <= classes <= len(CLASS_CATALOGUE):
            raise ValueError(f"classes={classes}: the synthetic generator has 2 to "
                             f"{len(CLASS_CATALOGUE)} gesture classes")
        return CLASS_CATALOGUE[:classes]
    ids = {cls.name: i for i, cls in enumerate(CLASS_CATALOGUE)}
    table = []
    for item in classes:
        if item in ids:
            table.append(CLASS_CATALOGUE[ids[item]])
        elif type(item) is int and 0 <= item < len(CLASS_CATALOGUE):  # not a bool
            table.append(CLASS_CATALOGUE[item])
        else:
            raise ValueError(f"classes: {item!r} is neither a class name of the synthetic "
                             f"generator nor an id 0..{len(CLASS_CATALOGUE) - 1}")
    if len({cls.name for cls in table}) != len(table) or len(table) < 2:
        raise ValueError(f"classes={classes}: a list needs at least 2 distinct classes")
    return table


@dataclass
class Articulation:
    """Per-frame hand parameters: finger closure (F, 5; 0 open, 1 fist), spread (F,; 0 together,
    1 wide), wrist offset (F, 3; mm, camera axes) and wrist turn (F, 3; rotation vector, rad,
    hand axes)."""

    closure: np.ndarray
    spread: np.ndarray
    offset: np.ndarray
    turn: np.ndarray


def keyframes(phase, times, values):
    """Smoothstep-eased interpolation of `values` (K, ...) at `times` (K,) for `phase` (F,)."""
    times, values = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    i = np.clip(np.searchsorted(times, phase, side="right") - 1, 0, len(times) - 2)
    u = np.clip((phase - times[i]) / (times[i + 1] - times[i]), 0.0, 1.0)
    u = (u * u * (3.0 - 2.0 * u)).reshape(-1, *([1] * (values.ndim - 1)))
    return values[i] + u * (values[i + 1] - values[i])


# Programs: (phase (F,), articulation at rest, amplitude jitter, *args) -> articulation. Phase runs
# 0 -> 1 over the gesture; each program edits the parameters it drives.
def open_close(phase, art, amp, fingers):
    fingers = list(fingers)
    rest = art.closure[0, fingers]
    opened, closed = np.full_like(rest, -0.05), np.full_like(rest, min(0.95 * amp, 1.05))
    art.closure[:, fingers] = keyframes(phase, [0.0, 0.4, 1.0], [rest, opened, closed])
    return art


def tap(phase, art, amp, finger, count):
    art.closure[:, finger] += 0.22 * amp * 0.5 * (1.0 - np.cos(2 * np.pi * count * phase))
    return art


def close(phase, art, amp):
    # Linear in phase: the class's speed profile alone shapes the timing.
    art.closure[:] = 0.95 * amp * phase[:, None]
    return art


def circle(phase, art, amp):
    angle = np.pi / 2 + 2 * np.pi * phase  # starts at the bottom, clockwise in the image
    art.offset[:, :2] += 30.0 * amp * np.stack([np.cos(angle), np.sin(angle) - 1.0], axis=1)
    return art


def swipe(phase, art, amp, displacement):
    art.offset += amp * (phase[:, None] - 0.5) * np.asarray(displacement)
    return art


def pronate(phase, art, amp):
    art.turn[:, 1] += np.radians(70.0) * amp * (phase - 0.5)  # about the forearm axis
    return art


def wave(phase, art, amp):
    art.turn[:, 2] += np.radians(22.0) * amp * np.sin(4 * np.pi * phase)
    return art


def hold_shape(phase, art, amp, closure, spread):
    art.closure = keyframes(phase, [0.0, 0.35, 1.0], [art.closure[0], closure, closure])
    art.spread = keyframes(phase, [0.0, 0.35, 1.0], [art.spread[0], spread, spread])
    art.offset[:, 1] += 8.0 * amp * np.sin(2 * np.pi * phase)  # the shape is shown, held up
    return art


PINCH_CLOSURE = (0.65, 0.52)  # thumb, index closures at which the two tips meet


def pinch(phase, art, amp):
    start = art.closure[0, :2]
    art.closure[:, :2] = keyframes(phase, [0.0, 0.6, 1.0], [start, PINCH_CLOSURE, PINCH_CLOSURE])
    return art


def spread_fingers(phase, art, amp):
    art.closure[:] = np.minimum(art.closure, 0.1)
    art.spread = keyframes(phase, [0.0, 1.0], [-0.2, np.minimum(1.1 * amp, 1.2)])
    return art


PROGRAMS = {fn.__name__: fn for fn in (open_close, tap, close, circle, swipe, pronate, wave,
                                       hold_shape, pinch, spread_fingers)}


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _bearing(degrees, tilt=0.0):
    """Unit vectors in the hand frame at a bearing in the palm plane, tilted toward the palm."""
    b, t = np.radians(degrees), np.radians(tilt)
    return np.stack([np.sin(b) * np.cos(t), np.cos(b) * np.cos(t),
                     np.broadcast_to(np.sin(t), np.shape(b))], axis=-1)


def hand_joints(bone_lengths, closure, spreads):
    """Forward kinematics: bone lengths (20,), closure (F, 5) and spread (F,) -> joints (F, 21, 3)
    in mm in the hand frame, wrist at the origin.

    Each finger flexes in the plane spanned by its bearing direction and its curl direction
    (the palm normal for the four fingers, across the palm for the thumb)."""
    frames = len(closure)
    lengths = dict(zip(BONES, bone_lengths, strict=True))
    joints = np.zeros((frames, NUM_JOINTS, 3))
    z_axis = np.array([0.0, 0.0, 1.0])
    # Closed fingers cannot spread much.
    spreads = np.clip(spreads, -0.3, 1.3)[:, None] * (1.0 - 0.6 * np.clip(closure, 0.0, 1.0))
    bearing = FINGER_BEARING_TOGETHER + spreads * (FINGER_BEARING_SPREAD - FINGER_BEARING_TOGETHER)
    metacarpal = _bearing(METACARPAL_BEARING, METACARPAL_TILT)
    for finger, chain in enumerate(FINGER_CHAINS):
        joints[:, chain[0]] = lengths[(WRIST, chain[0])] * metacarpal[finger]
        base = _bearing(bearing[:, finger])
        curl = _unit(THUMB_CURL_TOWARD - (base @ THUMB_CURL_TOWARD)[:, None] * base) \
            if finger == 0 else z_axis
        angles = np.cumsum(np.radians(FLEXION_AT_FIST[finger]) * closure[:, finger, None], axis=1)
        for k in range(3):
            direction = np.cos(angles[:, k, None]) * base + np.sin(angles[:, k, None]) * curl
            joints[:, chain[k + 1]] = (joints[:, chain[k]]
                                       + lengths[(chain[k], chain[k + 1])] * direction)
    return joints


# Base orientation (hand axes as columns, depth-camera frame): the fingers point up in the image
# and FINGER_ELEVATION degrees away from the camera, the back of the hand faces the camera; then
# rolled about the fingers' axis so that the thumb side is raised and flexion shows.
FINGER_ELEVATION = np.radians(35.0)
BASE_ROTATION = Rotation.from_matrix(np.array([
    [-1.0, 0.0, 0.0],
    [0.0, -np.cos(FINGER_ELEVATION), np.sin(FINGER_ELEVATION)],
    [0.0, np.sin(FINGER_ELEVATION), np.cos(FINGER_ELEVATION)],
])) * Rotation.from_euler("y", 35.0, degrees=True)


def smooth_noise(rng, frames, dims, scale, knots=5):
    """Smooth random curves (frames, *dims): eased interpolation of normal knots."""
    return keyframes(np.linspace(0.0, 1.0, frames), np.linspace(0.0, 1.0, knots),
                     rng.normal(0.0, scale, (knots, *dims)))


def gesture_timing(rng, frames, speed, profile):
    """Program phase (F,) per frame: the gesture runs in a window of the clip (longer for slower
    subjects, at a random start, held before and after), with a smooth monotone timing warp."""
    duration = np.clip(0.8 * rng.uniform(0.9, 1.1) / speed, 0.55, 0.95)
    start = rng.uniform(0.0, 1.0 - duration)
    u = np.clip((np.linspace(0.0, 1.0, frames) - start) / duration, 0.0, 1.0)
    u = u + rng.uniform(-0.25, 0.25) * np.sin(2 * np.pi * u) / (2 * np.pi)
    return PROFILES[profile](u)


def fit_in_view(joints, camera, margin=0.06):
    """Translate the sequence parallel to the image plane so that every joint projects inside
    both images with `margin` (a fraction of the width) to spare. Two rounds: a shift that fits
    one camera can push the hand out of the other one's narrower side."""
    depth = np.median(joints[..., 2])
    for _ in range(2):
        for project, K, (width, height) in (
                (camera.project_depth, camera.depth_K, camera.depth_size),
                (camera.project_color, camera.color_K, camera.color_size)):
            uv = project(joints).reshape(-1, 2)
            pad = margin * width
            limit = np.array([width, height]) - pad
            shift = np.maximum(pad - uv.min(0), 0.0) - np.maximum(uv.max(0) - limit, 0.0)
            joints = joints + np.append(shift * depth / K[[0, 1], [0, 1]], 0.0)
    return joints


def gesture_joints(gesture, subject, frames, rng, camera):
    """Joints (frames, 21, 3) in the depth camera's frame (mm) of one performance of `gesture`
    by `subject`; all randomness comes from `rng`. A reversed class is the same performance with
    the frame order reversed."""
    phase = gesture_timing(rng, frames, subject.speed * rng.uniform(0.9, 1.1), gesture.profile)
    rest = Articulation(
        closure=np.tile(rng.uniform([0.2, 0.15, 0.15, 0.2, 0.25], [0.4, 0.35, 0.35, 0.4, 0.45]),
                        (frames, 1)),
        spread=np.full(frames, rng.uniform(0.2, 0.5)),
        offset=np.zeros((frames, 3)), turn=np.zeros((frames, 3)))
    art = PROGRAMS[gesture.program](phase, rest, rng.uniform(0.85, 1.15), *gesture.args)
    closure = np.clip(art.closure + smooth_noise(rng, frames, (5,), 0.03), -0.1, 1.05)
    spreads = art.spread + smooth_noise(rng, frames, (), 0.05)
    offset = art.offset + smooth_noise(rng, frames, (3,), 3.0)
    turn = Rotation.from_rotvec(art.turn + smooth_noise(rng, frames, (3,), 0.03))

    rotation = (BASE_ROTATION * Rotation.from_rotvec(rng.normal(0.0, 0.2, 3)) * turn).as_matrix()
    wrist = rng.uniform([-40.0, 45.0, 300.0], [40.0, 75.0, 380.0]) + offset
    local = hand_joints(subject.bone_lengths, closure, spreads)
    joints = fit_in_view(np.einsum("fij,fkj->fki", rotation, local) + wrist[:, None], camera)
    return joints[::-1].copy() if gesture.reversed else joints
