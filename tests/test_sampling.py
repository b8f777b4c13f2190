import numpy as np
import pytest

from handmt.data.sampling import dense_indices, segment_indices


def test_segment_test_clips_take_the_offset_within_each_segment():
    # 80 frames, 8 segments of 10: one clip takes the middle (offset 5), two clips offsets 2.5, 7.5
    assert segment_indices(80, 8).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert segment_indices(80, 8, clip=0, num_clips=2).tolist() == [2, 12, 22, 32, 42, 52, 62, 72]
    assert segment_indices(80, 8, clip=1, num_clips=2).tolist() == [7, 17, 27, 37, 47, 57, 67, 77]


def test_segment_uneven_length():
    # 10 frames, 4 segments of 2.5: middles at 1.25, 3.75, 6.25, 8.75
    assert segment_indices(10, 4).tolist() == [1, 3, 6, 8]


def test_segment_short_video_repeats_frames_in_order():
    # 3 frames, 8 segments of 0.375: floor((i + 0.5) * 0.375) for i = 0..7
    assert segment_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    # training: segment i is [floor(0.375 i), floor(0.375 (i + 1))), or its start when empty
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert segment_indices(3, 8, rng).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_segment_training_draws_one_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    draws = np.stack([segment_indices(80, 8, rng) for _ in range(500)])
    low = np.arange(8) * 10
    assert ((draws >= low) & (draws < low + 10)).all()
    # every frame of a segment is drawn eventually, not only the first or the middle
    assert all(set(draws[:, i] - low[i]) == set(range(10)) for i in range(8))


def test_dense_test_clips_spread_the_start():
    # 20 frames, 4 frames at stride 2 span 7 frames: starts 0..13
    assert dense_indices(20, 4).tolist() == [6, 8, 10, 12]  # int(0.5 * 13) = 6
    assert dense_indices(20, 4, clip=0, num_clips=2).tolist() == [3, 5, 7, 9]  # int(0.25 * 13)
    assert dense_indices(20, 4, clip=1, num_clips=2).tolist() == [9, 11, 13, 15]  # int(0.75 * 13)
    assert dense_indices(20, 4, stride=1).tolist() == [8, 9, 10, 11]  # int(0.5 * 16) = 8


def test_dense_short_video_loops():
    # 5 frames, 4 at stride 2: 0, 2, 4, 6 -> 6 loops to 1
    assert dense_indices(5, 4).tolist() == [0, 2, 4, 1]
    assert dense_indices(5, 4, rng=np.random.default_rng(0)).tolist() == [0, 2, 4, 1]


def test_dense_training_start_is_uniform():
    rng = np.random.default_rng(0)
    starts = [dense_indices(20, 4, rng=rng)[0] for _ in range(1000)]
    assert set(starts) == set(range(14))


@pytest.mark.parametrize("args, match", [
    ((0, 8), "0 frames"), ((10, 0), "at least one frame"), ((10, 4, None, 2, 2), "clip 2")])
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        segment_indices(*args)
