import numpy as np
import pytest

from handmt.data.sampling import DenseSampler, PaddedSampler, SegmentSampler, build_sampler


def test_segment_test_clips_take_the_offset_within_each_segment():
    # 80 frames, 8 segments of 10: one clip takes the middle (offset 5), two clips offsets 2.5, 7.5
    sampler = SegmentSampler(8)
    assert sampler.test_indices(80, 0, 1).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert sampler.test_indices(80, 0, 2).tolist() == [2, 12, 22, 32, 42, 52, 62, 72]
    assert sampler.test_indices(80, 1, 2).tolist() == [7, 17, 27, 37, 47, 57, 67, 77]
    assert sampler.num_test_clips(80, 2) == 2


def test_segment_uneven_length():
    # 10 frames, 4 segments of 2.5: middles at 1.25, 3.75, 6.25, 8.75
    assert SegmentSampler(4).test_indices(10, 0, 1).tolist() == [1, 3, 6, 8]


def test_segment_short_video_repeats_frames_in_order():
    # 3 frames, 8 segments of 0.375: floor((i + 0.5) * 0.375) for i = 0..7
    sampler = SegmentSampler(8)
    assert sampler.test_indices(3, 0, 1).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    # training: segment i is [floor(0.375 i), floor(0.375 (i + 1))), or its start when empty
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert sampler.train_indices(3, rng).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_segment_training_draws_one_frame_inside_each_segment():
    rng = np.random.default_rng(0)
    draws = np.stack([SegmentSampler(8).train_indices(80, rng) for _ in range(500)])
    low = np.arange(8) * 10
    assert ((draws >= low) & (draws < low + 10)).all()
    # every frame of a segment is drawn eventually, not only the first or the middle
    assert all(set(draws[:, i] - low[i]) == set(range(10)) for i in range(8))


def test_dense_test_clips_spread_the_start():
    # 20 frames, 4 frames at stride 2 span 7 frames: starts 0..13
    sampler = DenseSampler(4, 2)
    assert sampler.test_indices(20, 0, 1).tolist() == [6, 8, 10, 12]  # int(0.5 * 13) = 6
    assert sampler.test_indices(20, 0, 2).tolist() == [3, 5, 7, 9]  # int(0.25 * 13)
    assert sampler.test_indices(20, 1, 2).tolist() == [9, 11, 13, 15]  # int(0.75 * 13)
    # stride 1: 4 frames span 4, starts 0..16, int(0.5 * 16) = 8
    assert DenseSampler(4, 1).test_indices(20, 0, 1).tolist() == [8, 9, 10, 11]


def test_dense_short_video_loops():
    # 5 frames, 4 at stride 2: 0, 2, 4, 6 -> 6 loops to 1
    sampler = DenseSampler(4, 2)
    assert sampler.test_indices(5, 0, 1).tolist() == [0, 2, 4, 1]
    assert sampler.train_indices(5, np.random.default_rng(0)).tolist() == [0, 2, 4, 1]


def test_dense_training_start_is_uniform():
    rng = np.random.default_rng(0)
    starts = [DenseSampler(4, 2).train_indices(20, rng)[0] for _ in range(1000)]
    assert set(starts) == set(range(14))


def test_padded_windows_and_zero_frames():
    # 4 frames at stride 2 span 7: a 10-frame video starts anywhere in 0..3
    sampler = PaddedSampler(4, 2)
    rng = np.random.default_rng(0)
    starts = {int(sampler.train_indices(10, rng)[0]) for _ in range(200)}
    assert starts == {0, 1, 2, 3}
    # a 5-frame video: frames 0, 2, 4 and one zero frame (-1) before or after
    draws = {tuple(sampler.train_indices(5, rng).tolist()) for _ in range(200)}
    assert draws == {(-1, 0, 2, 4), (0, 2, 4, -1)}
    # test: 3 frames at stride 1 span 3; 8 frames -> windows at 0, 3 and the last at 5
    covering = PaddedSampler(3, 1)
    assert covering.num_test_clips(8, 1) == 3
    assert [covering.test_indices(8, c, 1).tolist() for c in range(3)] == [
        [0, 1, 2], [3, 4, 5], [5, 6, 7]]
    assert covering.num_test_clips(9, 1) == 3 and covering.test_indices(9, 2, 1).tolist() == [
        6, 7, 8]
    # shorter than the span: one clip, 7 - 4 = 3 zero frames split 1 before, 2 after
    assert PaddedSampler(7, 1).num_test_clips(4, 1) == 1
    assert PaddedSampler(7, 1).test_indices(4, 0, 1).tolist() == [-1, 0, 1, 2, 3, -1, -1]
    with pytest.raises(ValueError, match="clips must be 1, got 2"):
        covering.num_test_clips(8, 2)


def test_build_sampler_from_config_values():
    assert isinstance(build_sampler("segments", 8, 3), SegmentSampler)
    dense = build_sampler("dense", 4, 3)
    assert isinstance(dense, DenseSampler) and dense.stride == 3 and dense.num_frames == 4
    assert isinstance(build_sampler("padded", 4, 1), PaddedSampler)
    with pytest.raises(ValueError, match="sampling must be one of 'segments', 'dense', "
                                         "'padded', got 'uniform'"):
        build_sampler("uniform", 8, 1)
    with pytest.raises(ValueError, match="dense_stride must be positive, got 0"):
        build_sampler("dense", 8, 0)


@pytest.mark.parametrize("call, match", [
    (lambda: SegmentSampler(8).test_indices(0, 0, 1), "0 frames"),
    (lambda: SegmentSampler(0), "at least one frame"),
    (lambda: SegmentSampler(4).test_indices(10, 2, 2), "clip 2"),
    (lambda: DenseSampler(4, 1).train_indices(0, np.random.default_rng(0)), "0 frames"),
    (lambda: PaddedSampler(4, 1).test_indices(10, 3, 1), "clip 3 is not one of the 3"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
