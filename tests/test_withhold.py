import warnings

import numpy as np
import pytest
from fixtures import write_mini_fpha

from handmt.data import withhold
from handmt.data.fpha import FPHADataset


class Videos:
    """The two label arrays `withhold` edits, for 10, 5 and 1 videos of classes 0, 1, 2."""

    def __init__(self):
        self.labels = np.array([0] * 10 + [1] * 5 + [2], dtype=np.int64)
        self.pose_available = np.ones(16, dtype=bool)


def kept_per_class(labels, kept):
    return [int(kept[labels == c].sum()) for c in range(3)]


@pytest.mark.parametrize("fraction, expected", [
    (0.2, [2, 1, 1]),  # round(2.0), round(1.0), round(0.2) = 0 -> at least 1
    (0.6, [6, 3, 1]),  # round(6.0), round(3.0), round(0.6)
    (1.0, [10, 5, 1]),
    (0.0, [0, 0, 0]),
])
def test_gesture_keeps_a_fraction_of_each_class(fraction, expected):
    videos = Videos()
    result = withhold(videos, "gesture", fraction)
    kept = result.labels >= 0
    assert kept_per_class(videos.labels, kept) == expected
    np.testing.assert_array_equal(result.labels[kept], videos.labels[kept])  # true labels kept
    assert (result.labels[~kept] == -1).all() and result.labels.dtype == np.int64
    np.testing.assert_array_equal(result.pose_available, videos.pose_available)


def test_pose_keeps_a_fraction_of_each_class():
    videos = Videos()
    result = withhold(videos, "pose", 0.6)
    assert kept_per_class(videos.labels, result.pose_available) == [6, 3, 1]
    np.testing.assert_array_equal(result.labels, videos.labels)


@pytest.mark.parametrize("fraction, kept", [(0.15, 45), (0.25, 68), (0.40, 108)])
def test_fractions_differ_with_six_videos_per_class(fraction, kept):
    # the default synthetic training split: 45 classes x 6 videos; per-class rounding alone
    # would keep 2 of 6 videos for both 25 % and 40 %
    videos = Videos()
    videos.labels = np.repeat(np.arange(45), 6)
    videos.pose_available = np.ones(270, dtype=bool)
    result = withhold(videos, "pose", fraction)
    per_class = np.bincount(videos.labels[result.pose_available], minlength=45)
    assert result.pose_available.sum() == kept  # 15 %: at least one per class
    assert per_class.max() - per_class.min() <= 1


def test_deterministic_by_seed_and_original_untouched():
    videos = Videos()
    first = withhold(videos, "gesture", 0.6, seed=1)
    np.testing.assert_array_equal(first.labels, withhold(videos, "gesture", 0.6, seed=1).labels)
    others = [withhold(videos, "gesture", 0.6, seed=s).labels for s in range(2, 6)]
    assert any(not np.array_equal(first.labels, other) for other in others)
    assert first is not videos and first.labels is not videos.labels
    np.testing.assert_array_equal(videos.labels, Videos().labels)
    assert videos.pose_available.all()


def test_withheld_videos_stay_withheld():
    videos = Videos()
    once = withhold(videos, "pose", 0.6)
    twice = withhold(once, "pose", 0.5)
    assert not (twice.pose_available & ~once.pose_available).any()
    # of 6, 3, 1: round(0.5 * 10) = 5 = floors 3, 1 and the minimum 1
    assert kept_per_class(videos.labels, twice.pose_available) == [3, 1, 1]


@pytest.mark.parametrize("task, fraction, message", [
    ("depth", 0.5, "task must be one of gesture, pose, mask, got 'depth'"),
    ("pose", 1.5, r"keep_fraction must be in \[0, 1\], got 1.5"),
    ("gesture", -0.1, r"keep_fraction must be in \[0, 1\], got -0.1"),
])
def test_bad_arguments(task, fraction, message):
    with pytest.raises(ValueError, match=message):
        withhold(Videos(), task, fraction)


def test_items_of_a_withheld_dataset(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = FPHADataset(str(write_mini_fpha(tmp_path)), size=16, modalities=("depth",))
    no_labels = withhold(dataset, "gesture", 0.0)
    no_pose = withhold(dataset, "pose", 0.0)
    for index in range(len(dataset)):
        assert no_labels[index]["label"].item() == -1
        assert dataset[index]["label"].item() == dataset.labels[index] >= 0
        assert not no_pose[index]["pose_valid"].any()
        assert dataset[index]["pose_valid"].all()


def test_config_withholds_on_the_training_split_only(tmp_path):
    from handmt.data import build_dataset, check_config
    root = str(write_mini_fpha(tmp_path))
    data = {"name": "fpha", "root": root, "size": 16, "modalities": ["depth"],
            "withhold": [{"task": "gesture", "keep_fraction": 0.0},
                         {"task": "pose", "keep_fraction": 0.0}]}
    check_config(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train, test = build_dataset(data, "train"), build_dataset(data, "test")
    assert (train.labels == -1).all() and not train.pose_available.any()
    assert (test.labels >= 0).all() and test.pose_available.any()
