"""Samplers: which frames of a video make a clip (docs/design.md, "Data contract").

`SegmentSampler` (TSN, MSD paper section IV-B), `DenseSampler` (a window at a stride, the input
of 3D backbones), `PaddedSampler` (MTUT section 4: a window, short videos zero-padded, index -1
for a zero frame; testing covers the whole video). Each has `train_indices(num_total, rng)`,
`test_indices(num_total, clip, num_clips)` and `num_test_clips(num_total, num_clips)`;
`build_sampler` makes one from a config's `sampling` and `dense_stride`.
"""

import numpy as np

__all__ = ["SAMPLINGS", "DenseSampler", "PaddedSampler", "Sampler", "SegmentSampler",
           "build_sampler"]


class Sampler:
    """Frame indices of the clips of a video of `num_total` frames, `num_frames` per clip."""

    def __init__(self, num_frames):
        if num_frames < 1:
            raise ValueError(f"a clip needs at least one frame, got {num_frames}")
        self.num_frames = num_frames

    def train_indices(self, num_total, rng):
        """A random clip, drawn with the numpy Generator `rng`."""
        raise NotImplementedError

    def test_indices(self, num_total, clip, num_clips):
        """Test clip `clip` of `num_test_clips(num_total, num_clips)`, deterministic."""
        raise NotImplementedError

    def num_test_clips(self, num_total, num_clips):
        """How many test clips a video of `num_total` frames has when `num_clips` are asked."""
        return num_clips


class SegmentSampler(Sampler):
    """One frame per segment of `num_total` frames cut into `num_frames` equal parts: a
    uniformly random frame of each (training) or the frame at offset (clip + 0.5) / num_clips
    of each (test). Segments shorter than a frame repeat frames, in order."""

    def train_indices(self, num_total, rng):
        _check_counts(num_total, 0, 1)
        length = num_total / self.num_frames
        starts = np.floor(np.arange(self.num_frames) * length).astype(np.int64)
        ends = np.floor(np.arange(1, self.num_frames + 1) * length).astype(np.int64)
        return rng.integers(starts, np.maximum(ends, starts + 1))

    def test_indices(self, num_total, clip, num_clips):
        _check_counts(num_total, clip, num_clips)
        offset = (clip + 0.5) / num_clips
        length = num_total / self.num_frames
        return np.floor((np.arange(self.num_frames) + offset) * length).astype(np.int64)


class DenseSampler(Sampler):
    """`num_frames` indices `stride` apart from a uniformly random start (training) or the start
    at fraction (clip + 0.5) / num_clips of the possible starts (test). A video shorter than the
    span loops back to its first frame (mmaction2's `out_of_bound_opt="loop"`)."""

    def __init__(self, num_frames, stride):
        super().__init__(num_frames)
        self.stride = stride

    def train_indices(self, num_total, rng):
        _check_counts(num_total, 0, 1)
        return self._window(num_total, int(rng.integers(0, self._last_start(num_total) + 1)))

    def test_indices(self, num_total, clip, num_clips):
        _check_counts(num_total, clip, num_clips)
        return self._window(num_total,
                            int((clip + 0.5) / num_clips * self._last_start(num_total)))

    def _last_start(self, num_total):
        return max(0, num_total - ((self.num_frames - 1) * self.stride + 1))

    def _window(self, num_total, start):
        return (start + self.stride * np.arange(self.num_frames)) % num_total


class PaddedSampler(Sampler):
    """`num_frames` indices `stride` apart, -1 for zero frames. Training: a window at a uniformly
    random start; a video shorter than the span gives all its frames at that stride, the missing
    ones as zero frames split at random between both sides. Test: windows one span apart that
    together cover the video, the last ending at its end (it may overlap its predecessor); a
    video shorter than the span is one clip, zero-padded evenly. `num_clips` must be 1."""

    def __init__(self, num_frames, stride):
        super().__init__(num_frames)
        self.stride = stride
        self.span = (num_frames - 1) * stride + 1

    def train_indices(self, num_total, rng):
        _check_counts(num_total, 0, 1)
        if num_total >= self.span:
            return self._window(int(rng.integers(0, num_total - self.span + 1)))
        return self._padded(num_total, rng)

    def test_indices(self, num_total, clip, num_clips):
        starts = self._starts(num_total, num_clips)
        if not 0 <= clip < len(starts):
            raise ValueError(f"clip {clip} is not one of the {len(starts)} test clips")
        return self._padded(num_total, None) if num_total < self.span else \
            self._window(starts[clip])

    def num_test_clips(self, num_total, num_clips):
        return len(self._starts(num_total, num_clips))

    def _starts(self, num_total, num_clips):
        if num_clips != 1:
            raise ValueError(f"sampling 'padded' tests on the clips that cover each video: clips "
                             f"must be 1, got {num_clips}")
        _check_counts(num_total, 0, 1)
        if num_total <= self.span:
            return [0]
        starts = list(range(0, num_total - self.span + 1, self.span))
        if starts[-1] != num_total - self.span:
            starts.append(num_total - self.span)
        return starts

    def _window(self, start):
        return start + self.stride * np.arange(self.num_frames)

    def _padded(self, num_total, rng):
        """All frames at the stride, zero frames around them (random split with `rng`, else
        even)."""
        frames = np.arange(0, num_total, self.stride)
        missing = self.num_frames - len(frames)
        before = missing // 2 if rng is None else int(rng.integers(0, missing + 1))
        return np.concatenate([np.full(before, -1), frames,
                               np.full(missing - before, -1)]).astype(np.int64)


SAMPLINGS = ("segments", "dense", "padded")


def build_sampler(sampling, num_frames, dense_stride):
    """The sampler a config's `sampling` names; dense and padded windows use `dense_stride`."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(map(repr, SAMPLINGS))}, got "
                         f"{sampling!r}")
    if dense_stride < 1:
        raise ValueError(f"dense_stride must be positive, got {dense_stride}")
    if sampling == "segments":
        return SegmentSampler(num_frames)
    return (DenseSampler if sampling == "dense" else PaddedSampler)(num_frames, dense_stride)


def _check_counts(num_total, clip, num_clips):
    if num_total < 1:
        raise ValueError(f"cannot sample frames from a video of {num_total} frames")
    if not 0 <= clip < num_clips:
        raise ValueError(f"clip {clip} is not one of the {num_clips} test clips")
