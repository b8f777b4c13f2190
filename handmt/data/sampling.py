"""Which frames of a video make a clip.

Segment sampling is TSN's (used by the MSD paper, section IV-B: "divide it into T segments of
equal duration, one frame is randomly selected from each segment"); dense sampling takes frames at
a fixed stride, the input of 3D backbones. With a random generator the sample is a training one;
without, it is deterministic, and `clip` of `num_clips` picks one of the test-time views.

Padded sampling is MTUT's (section 4, implementation details): "64 consecutive frames are picked
randomly from the videos. Shorter videos are randomly padded with zero frames on both sides";
testing applies the model "over the full video" and averages predictions, here as clips that
cover the video (`covering_clips`), whose predictions evaluation averages per video. Index -1
stands for a zero frame.
"""

import numpy as np


def segment_indices(num_total, num_segments, rng=None, clip=0, num_clips=1):
    """One frame index per segment of `num_total` frames cut into `num_segments` equal parts.

    Training (`rng` given): a uniformly random frame of each segment. Test: the frame at offset
    (clip + 0.5) / num_clips of each segment. Segments shorter than a frame (a video with fewer
    frames than segments) repeat frames, in order.
    """
    _check_counts(num_total, num_segments, clip, num_clips)
    length = num_total / num_segments
    starts = np.floor(np.arange(num_segments) * length).astype(np.int64)
    if rng is None:
        offset = (clip + 0.5) / num_clips
        return np.floor((np.arange(num_segments) + offset) * length).astype(np.int64)
    ends = np.floor(np.arange(1, num_segments + 1) * length).astype(np.int64)
    return rng.integers(starts, np.maximum(ends, starts + 1))


def dense_indices(num_total, num_frames, stride=2, rng=None, clip=0, num_clips=1):
    """`num_frames` indices `stride` apart from one start frame.

    Training (`rng` given): a uniformly random start. Test: the start at fraction
    (clip + 0.5) / num_clips of the possible starts. A video shorter than the span loops back to
    its first frame (mmaction2's `out_of_bound_opt="loop"`).
    """
    _check_counts(num_total, num_frames, clip, num_clips)
    last_start = max(0, num_total - ((num_frames - 1) * stride + 1))
    if rng is None:
        start = int((clip + 0.5) / num_clips * last_start)
    else:
        start = int(rng.integers(0, last_start + 1))
    return (start + stride * np.arange(num_frames)) % num_total


def padded_indices(num_total, num_frames, stride=1, rng=None):
    """`num_frames` indices `stride` apart, -1 for zero frames.

    A video that holds the span gives a window at a uniformly random start (training, `rng`
    given) or the centred one. A shorter video gives all its frames at that stride, with the
    missing frames as zero frames split between both sides at random (training) or evenly.
    """
    _check_counts(num_total, num_frames, 0, 1)
    span = (num_frames - 1) * stride + 1
    if num_total >= span:
        last_start = num_total - span
        start = last_start // 2 if rng is None else int(rng.integers(0, last_start + 1))
        return start + stride * np.arange(num_frames)
    frames = np.arange(0, num_total, stride)
    missing = num_frames - len(frames)
    before = missing // 2 if rng is None else int(rng.integers(0, missing + 1))
    return np.concatenate([np.full(before, -1), frames,
                           np.full(missing - before, -1)]).astype(np.int64)


def covering_clips(num_total, num_frames, stride=1):
    """Test clips of `padded_indices` that together cover the whole video: windows one span
    apart, the last one ending at the video's end (so it may overlap its predecessor); a video
    shorter than the span is one centred, zero-padded clip."""
    _check_counts(num_total, num_frames, 0, 1)
    span = (num_frames - 1) * stride + 1
    if num_total <= span:
        return [padded_indices(num_total, num_frames, stride)]
    starts = list(range(0, num_total - span + 1, span))
    if starts[-1] != num_total - span:
        starts.append(num_total - span)
    return [start + stride * np.arange(num_frames) for start in starts]


def _check_counts(num_total, num_samples, clip, num_clips):
    if num_total < 1:
        raise ValueError(f"cannot sample frames from a video of {num_total} frames")
    if num_samples < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_samples}")
    if not 0 <= clip < num_clips:
        raise ValueError(f"clip {clip} is not one of the {num_clips} test clips")
