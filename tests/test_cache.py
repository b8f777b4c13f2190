import os
import pickle
import warnings

import cv2
import numpy as np
import pytest
from fixtures import MINI_TEST, write_mini_fpha

from handmt.data.fpha import FPHADataset

ALL = ("rgb", "depth", "mask")


def load(root, cache_dir, size=24):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the mini dataset's defects are test_fpha's business
        return FPHADataset(str(root), split="test", size=size, modalities=ALL,
                           cache_dir=str(cache_dir))


def assert_same_frames(first, second):
    assert set(first) == set(second)
    for key in first:
        assert first[key].dtype == second[key].dtype, key
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_round_trip_equals_the_direct_read(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    dataset = load(root, tmp_path / "cache")
    assert dataset.cache.path.parent == tmp_path / "cache"
    assert dataset.cache.path.name.startswith("fpha-test-")
    assert not list((tmp_path / "cache").glob("*.tmp"))  # the temporary file was renamed
    for index, video in enumerate(dataset.videos):
        every = np.arange(video.num_frames)
        assert_same_frames(dataset.cache.read(index, every), dataset.read_frames(index, every))
    # any order, repeats included, as sampling asks for short videos
    assert_same_frames(dataset.cache.read(1, [3, 1, 1, 0]), dataset.read_frames(1, [3, 1, 1, 0]))
    # an item reads the same through the cache as without it
    direct = FPHADataset(str(root), split="test", size=24, modalities=ALL)
    for key, value in dataset[1].items():
        np.testing.assert_array_equal(value.numpy(), direct[1][key].numpy(), err_msg=key)
    with pytest.raises(IndexError, match=r"frames \[4\] of video 1, which has 4 frames"):
        dataset.cache.read(1, [4])


def test_a_changed_source_rebuilds_the_cache(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    dataset = load(root, tmp_path / "cache")
    built = os.stat(dataset.cache.path)
    old = dataset.cache.read(0, [2])

    again = load(root, tmp_path / "cache")  # nothing changed: the same file is used
    assert again.cache.path == dataset.cache.path
    assert os.stat(again.cache.path).st_ino == built.st_ino

    depth_path = root / "Video_files" / MINI_TEST[0][0] / "depth" / "depth_0002.png"
    cv2.imwrite(str(depth_path), np.full((48, 64), 600, np.uint16))  # the card and wall move
    os.utime(depth_path, ns=(built.st_mtime_ns + 10**9, built.st_mtime_ns + 10**9))
    changed = load(root, tmp_path / "cache")
    assert changed.cache.path == dataset.cache.path
    assert os.stat(changed.cache.path).st_ino != built.st_ino
    new = changed.cache.read(0, [2])
    assert_same_frames(new, changed.read_frames(0, [2]))
    assert not np.array_equal(new["depth"], old["depth"])
    np.testing.assert_array_equal(new["rgb"], old["rgb"])


def test_settings_get_their_own_file(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    small, large = load(root, tmp_path / "cache", 16), load(root, tmp_path / "cache", 24)
    assert small.cache.path != large.cache.path
    assert small.cache.read(0, [0])["rgb"].shape == (1, 16, 16, 3)
    assert large.cache.read(0, [0])["rgb"].shape == (1, 24, 24, 3)


def test_each_process_opens_its_own_handle(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    cache = load(root, tmp_path / "cache").cache
    frames = cache.read(0, [1])
    assert cache._pid == os.getpid()
    # what a DataLoader worker started by spawn receives: no handle, opened on first read
    copy = pickle.loads(pickle.dumps(cache))
    assert copy._file is None
    assert_same_frames(copy.read(0, [1]), frames)
    # a forked worker inherits the handle but sees another pid, and opens its own
    inherited = cache._file
    cache._pid = -1
    cache.read(0, [1])
    assert cache._file is not inherited
