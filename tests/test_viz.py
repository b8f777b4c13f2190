import json

import matplotlib.image
import numpy as np
import pytest

from handmt.hand import FINGER_CHAINS, WRIST
from handmt.viz import (
    DPI,
    FINGER_COLORS,
    draw_skeleton,
    plot_confusion,
    plot_curves,
    plot_pck_curves,
    plot_training_log,
)


def read_png(path):
    assert path.stat().st_size > 0
    assert not list(path.parent.glob("*.partial"))  # the temporary file was moved into place
    return matplotlib.image.imread(path)


def test_plot_pck_curves(tmp_path):
    thresholds = np.linspace(0, 50, 21)
    curves = {"ours": (thresholds, np.clip(thresholds / 30, 0, 1)),
              "baseline": (thresholds, np.clip(thresholds / 45, 0, 1))}
    path = plot_pck_curves(curves, tmp_path / "pck.png", title="FPHA")
    assert path == tmp_path / "pck.png"
    image = read_png(path)
    assert image.shape[:2] == (4.5 * DPI, 6 * DPI)
    assert image[..., :3].std() > 0  # something was drawn


def test_plot_confusion_45_classes(tmp_path):
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 5, size=(45, 45)) + np.diag(rng.integers(10, 30, size=45))
    cm[3] = 0  # a class without test samples must not divide by zero
    path = plot_confusion(cm, tmp_path / "sub" / "cm.png",
                          class_names=[f"gesture_{c}" for c in range(45)])
    image = read_png(path)
    side = (0.25 * 45 + 2) * DPI  # grows with the class count so the labels stay readable
    assert image.shape[:2] == (side, side)


def test_plot_curves_with_error_bars(tmp_path):
    path = plot_curves([0.1, 0.5, 1.0], {"gesture": [0.4, 0.6, 0.7], "pose": [0.5, 0.55, 0.6]},
                       tmp_path / "fraction.png", xlabel="label fraction", ylabel="top-1",
                       errors={"gesture": [0.05, 0.03, 0.01]})
    assert read_png(path).shape[:2] == (4.5 * DPI, 6 * DPI)


def test_plot_training_log_handles_missing_keys(tmp_path):
    log = tmp_path / "log.jsonl"
    lines = [{"epoch": 1, "step": 10, "loss": 2.3, "lr": 0.01},
             {"epoch": 1, "step": 20, "loss": 2.0, "lr": 0.01},
             {"epoch": 1, "val_top1": 0.4, "train_loss": 2.1},
             {"epoch": 2, "step": 30, "loss": 1.5, "lr": 0.005, "note": "text"},
             {"epoch": 2, "train_loss": 1.6}]  # no val_top1 this epoch
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    image = read_png(plot_training_log(log, tmp_path / "log.png"))
    # Four panels (loss, lr per step; train_loss, val_top1 per epoch) on a 3-column grid.
    assert image.shape[:2] == (2 * 3 * DPI, 3 * 4 * DPI)


def test_plot_training_log_names_bad_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 1, "step": 1, "loss": 1.0}\n{"epoch": 1, oops\n')
    with pytest.raises(ValueError, match=r"log.jsonl:2: not a JSON line"):
        plot_training_log(log, tmp_path / "log.png")


def hand_in_image():
    """Joints of a hand in a 400 x 400 image: wrist at the bottom, fingers upwards."""
    joints = np.zeros((21, 2))
    joints[WRIST] = (200, 360)
    for finger, chain in enumerate(FINGER_CHAINS):
        x = 80 + 60 * finger
        for depth, joint in enumerate(chain):
            joints[joint] = (x, 260 - 50 * depth)
    return joints


def test_draw_skeleton_draws_along_bones_only():
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    joints = hand_in_image()
    drawn = draw_skeleton(image, joints)
    assert drawn.dtype == np.uint8 and not image.any()  # the input is left untouched
    # Midpoints of the thumb's and the index's PIP-DIP bones, vertical at x = 80 and 140, take the
    # full colour of their finger (the anti-aliased line is 3 px wide at this size).
    for finger in (0, 1):
        _, pip, dip, _ = FINGER_CHAINS[finger]
        x, y = ((joints[pip] + joints[dip]) / 2).astype(int)
        np.testing.assert_array_equal(drawn[y, x], FINGER_COLORS[finger])
    assert not drawn[:40, :].any() and not drawn[:, 380:].any()  # far from every bone
    single = draw_skeleton(image, joints, color=(0, 255, 0))
    assert set(map(tuple, single.reshape(-1, 3))) <= {(0, g, 0) for g in range(256)}
