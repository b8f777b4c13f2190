"""Frames read by index and checked as they are decoded: `FrameSource` (numbered image files or
an OpenCV video), `Counted` (an annotation counted when listed), `Probe` (frames present),
`read_video_frames`, `video_frame_count`, `decode_image`. A bad frame (missing, truncated JPEG,
undecodable, wrong size) raises `BadFrame` naming its file; the cache build skips its video
(docs/design.md, "Data contract").
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = ["BadFrame", "Counted", "FrameSource", "Probe", "decode_image",
           "read_video_frames", "video_frame_count"]

PROBE_THREADS = 8  # opening videos waits on the disk more than on the CPU

# OpenCV's own thread pool does not survive fork (DataLoader workers can deadlock in their first
# cv2 call), and the loader workers already use the cores.
cv2.setNumThreads(1)

JPEG_SUFFIXES = (".jpg", ".jpeg")
END_OF_IMAGE = b"\xff\xd9"


class BadFrame(ValueError):
    """A frame file that is missing, truncated, undecodable or of an unexpected size."""


def decode_image(path, flags):
    """The image at `path` decoded by OpenCV with `flags`; BadFrame when it cannot be. OpenCV
    decodes a truncated JPEG to a half-grey image with only a libjpeg warning, so a JPEG whose
    data does not end with the end-of-image marker (FF D9, zero padding allowed) is refused
    before decoding. A bit flip in compressed JPEG data cannot be detected (no checksum)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise BadFrame(f"{path}: cannot be read ({err.strerror})") from None
    if path.suffix.lower() in JPEG_SUFFIXES and not data.rstrip(b"\0").endswith(END_OF_IMAGE):
        raise BadFrame(f"{path}: truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise BadFrame(f"{path}: not an image OpenCV can decode")
    return image


def video_frame_count(path):
    """Frames in a video according to its container (decoded and counted when the header has
    no count); None when OpenCV cannot open it."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = 0
            while capture.grab():
                count += 1
        return count
    finally:
        capture.release()


def read_video_frames(path, indices, gray=False):
    """Frames `indices` (0-based, any order, repeats allowed) of a video as uint8 arrays: BGR
    (H,W,3), or (H,W) grey when `gray`. Decoded from the first frame up to the last one asked
    for (grab, then retrieve only the frames kept): exact for every codec."""
    indices = [int(i) for i in indices]
    wanted = set(indices)
    capture = cv2.VideoCapture(str(path))
    frames = {}
    try:
        if not capture.isOpened():
            raise BadFrame(f"{path}: missing, or not a video OpenCV can open")
        # the container's frame size; when it reports none, the first decoded frame's
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        for position in range(max(indices) + 1):
            if not capture.grab():
                raise BadFrame(f"{path}: decoded only {position} frames, frame {max(indices)} "
                               "was asked for (the file has fewer frames than its header or "
                               "the list says)")
            if position in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    raise BadFrame(f"{path}: cannot decode frame {position}")
                if 0 in size:
                    size = frame.shape[1::-1]
                if frame.shape[1::-1] != size:
                    raise BadFrame(f"{path}: frame {position} is {frame.shape[1]}x"
                                   f"{frame.shape[0]}, the video {size[0]}x{size[1]}")
                frames[position] = frame
    finally:
        capture.release()
    if gray:
        frames = {i: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) if f.ndim == 3 else f
                  for i, f in frames.items()}
    return [frames[i] for i in indices]


@dataclass(frozen=True)
class FrameSource:
    """Frames of one stream of one sample. `pattern` None: a video file, frame i of the sample
    is the video's frame `first + i` (0-based). Otherwise a folder of images, frame i is
    `path / pattern.format(first + i)` (the dataset's own numbering). `claimed`: the frames the
    annotation says the sample has (None: as many as exist)."""

    path: Path
    first: int = 0
    pattern: str | None = None
    claimed: int | None = None

    def file(self, index):
        """The file of frame `index` of the source's own numbering."""
        return self.path if self.pattern is None else self.path / self.pattern.format(index)

    def files(self, count):
        """The files of the sample's first `count` frames, each once."""
        return list(dict.fromkeys(self.file(self.first + i) for i in range(count)))

    def span(self, count):
        """Frames first .. first + count - 1 in the source's numbering, for messages."""
        last = self.first + count - 1
        if self.pattern is None:
            return f"{self.first}..{last}"
        return f"{self.pattern.format(self.first)}..{self.pattern.format(last)}"

    @property
    def video(self):
        """The video file to open, None for image files."""
        return self.path if self.pattern is None else None

    def present(self, probe):
        """Frames present from the first on (image files by index, never in listing order,
        other files ignored); None when missing or unreadable."""
        if self.pattern is None:
            total = probe.totals[self.path]
            return None if total is None else max(0, total - self.first)
        names = probe.listing(self.path)
        if names is None:
            return None
        count = 0
        while self.pattern.format(self.first + count) in names:
            count += 1
        return count

    def read(self, indices, flags=cv2.IMREAD_COLOR):
        """Frames `indices` (0-based within the sample) decoded with `flags` (colour BGR or
        grey)."""
        indices = self.first + np.asarray(indices, dtype=np.int64)
        if self.pattern is None:
            return read_video_frames(self.path, indices, gray=flags == cv2.IMREAD_GRAYSCALE)
        return [decode_image(self.file(index), flags) for index in indices]


@dataclass(frozen=True)
class Counted:
    """A source whose frames were counted when it was listed (an annotation file: FPHA's
    skeleton.txt); `count` None: missing. Like FrameSource it has `claimed`, `video`,
    `files(count)` and `present(probe)`."""

    path: Path
    count: int | None
    claimed = None
    video = None

    def files(self, count):
        return [self.path]

    def present(self, probe):
        return self.count


class Probe:
    """Frames present in `sources` (FrameSource, Counted): `present(source)`, None when missing
    or unreadable. Videos are opened in parallel; each folder is listed once."""

    def __init__(self, sources):
        videos = sorted({s.video for s in sources if s.video is not None})
        with ThreadPoolExecutor(PROBE_THREADS) as pool:
            self.totals = dict(zip(videos, pool.map(video_frame_count, videos), strict=True))
        self.listings = {}

    def listing(self, folder):
        """The names in `folder`, None when it is not one."""
        if folder not in self.listings:
            self.listings[folder] = set(os.listdir(folder)) if folder.is_dir() else None
        return self.listings[folder]

    def present(self, source):
        return source.present(self)
