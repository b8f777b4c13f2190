"""Frames checked when they are decoded: a bad frame raises `BadFrame`, naming its file.

OpenCV decodes a truncated JPEG to an image whose missing rows are grey, with only a libjpeg
warning on stderr that names no file. `decode_image` therefore refuses, before decoding, a JPEG
whose data does not end with the end-of-image marker (FF D9; trailing zero padding allowed), and
anything OpenCV cannot decode; the readers check the decoded size (fpha.read_image against the
camera, video.read_video_frames against the container). A bit flip
inside a JPEG's compressed data cannot be detected: the format has no checksum (a flip in its
headers fails to decode and is caught).

Datasets catch BadFrame where they can drop a whole video: while the HDF5 cache is built
(cache.py: the video is never cached, and the dataset skips it with a warning, or raises with
`strict`). Read without the cache, a bad frame raises from `__getitem__`, since a dataset cannot
drop a video in the middle of an epoch.
"""

from pathlib import Path

import cv2
import numpy as np

__all__ = ["BadFrame", "decode_image"]

# OpenCV's own thread pool does not survive fork (DataLoader workers can deadlock in their first
# cv2 call), and the loader workers already use the cores.
cv2.setNumThreads(1)

JPEG_SUFFIXES = (".jpg", ".jpeg")
END_OF_IMAGE = b"\xff\xd9"


class BadFrame(ValueError):
    """A frame file that is missing, truncated, undecodable or of an unexpected size."""


def decode_image(path, flags):
    """The image at `path` decoded by OpenCV with `flags`; BadFrame when it cannot be (see the
    module docstring)."""
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
