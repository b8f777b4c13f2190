"""HDF5 cache of decoded frames: `FrameCache(cache_dir, dataset)`, `cache_home()`.

The cache holds every frame of every video as `dataset.read_frames` returns it (flow included,
computed once per pair of frames). The dataset side of the protocol (base.ClipDataset): `split`,
`videos` (records with `num_frames`), `read_frames(video, indices)`, `cache_key()` (JSON-able
settings with "dataset" and "split") and `source_files()`. A mismatch of the sources' path, size
and mtime, of the settings or of FORMAT rebuilds the file. Builds are atomic (atomic.py); every
array carries a fletcher32 checksum, and a damaged file is rebuilt on read. A video with a bad
frame (frames.BadFrame) is never cached: `skipped` names it, and the dataset drops it
(README, "Reliability").
"""

import hashlib
import json
import os
import warnings
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from ..atomic import atomic_write, remove_stale_temps
from .frames import BadFrame

FORMAT = 3  # 2: fletcher32 checksums and skipped videos; 3: frames only, no K
WRITE_CHUNK = 64  # frames decoded at a time while building: bounds the memory of long videos


def cache_home():
    """Where handmt keeps generated data and clip caches: $HANDMT_CACHE, else ~/.cache/handmt."""
    home = Path(os.environ.get("HANDMT_CACHE") or Path.home() / ".cache" / "handmt").expanduser()
    if home.exists() and not home.is_dir():
        raise ValueError(f"the cache folder {home} ($HANDMT_CACHE, else ~/.cache/handmt) is a "
                         "file")
    return home


def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def source_signature(dataset):
    """Digest of the dataset's settings and of the path, size and mtime of every source file."""
    sources = []
    for path in dataset.source_files():
        stat = os.stat(path)
        sources.append((str(path), stat.st_size, stat.st_mtime_ns))
    return digest({"format": FORMAT, "settings": dataset.cache_key(), "sources": sources})


class FrameCache:
    """Frames of `dataset` from `cache_dir/<dataset>-<split>-<settings hash>.h5`, built if
    missing or stale. `read(video, indices)` equals `dataset.read_frames(video, indices)` for the
    videos the build kept; `skipped` maps the index of each video left out (a bad frame) to the
    frame's message."""

    def __init__(self, cache_dir, dataset):
        key = dataset.cache_key()
        self.path = Path(cache_dir) / f"{key['dataset']}-{key['split']}-{digest(key)[:12]}.h5"
        self.signature = source_signature(dataset)
        self.dataset = dataset  # read again when a damaged file is rebuilt
        self._file = self._pid = self._inode = None
        if not self._is_current():
            self._build()
        with h5py.File(self.path, "r") as file:
            self.skipped = {int(k): v for k, v in json.loads(file.attrs["skipped"]).items()}

    def _is_current(self):
        try:
            with h5py.File(self.path, "r") as file:
                return file.attrs.get("signature") == self.signature
        except OSError:  # missing, or not a readable HDF5 file (e.g. an interrupted copy)
            return False

    def _build(self, skipped=None):
        """Decode every video of the dataset into a new file. `skipped`: a rebuild, after the
        dataset dropped these videos: they are recorded again, and a new bad frame raises."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.path.parent)
        videos = self.dataset.videos
        offsets, found = [0], {}
        with atomic_write(self.path) as temp, h5py.File(temp, "w") as file, \
                tqdm(total=sum(v.num_frames for v in videos), desc=f"caching {self.path.name}",
                     unit="frame", disable=None) as progress:  # None: no bar in a log file
            for index, video in enumerate(videos):
                try:
                    self._write_video(file, index, video.num_frames, offsets[-1], progress)
                except BadFrame as err:
                    if skipped is not None:
                        raise
                    found[index] = str(err)  # its rows are overwritten by the next video
                    continue
                offsets.append(offsets[-1] + video.num_frames)
            for key in list(file):
                file[key].resize(offsets[-1], axis=0)
            file.create_dataset("offsets", data=np.array(offsets, np.int64), fletcher32=True)
            file.attrs["signature"] = self.signature
            file.attrs["settings"] = json.dumps(self.dataset.cache_key())
            file.attrs["skipped"] = json.dumps(found if skipped is None else skipped)

    def _write_video(self, file, video_index, count, first_row, progress):
        """Store one video's per-frame arrays from row `first_row` on, in chunks."""
        for start in range(0, count, WRITE_CHUNK):
            indices = np.arange(start, min(start + WRITE_CHUNK, count))
            frames = self.dataset.read_frames(video_index, indices)
            end = first_row + indices[-1] + 1
            for key, value in frames.items():
                if key not in file:
                    # one chunk per frame: reads fetch whole frames; lzf is lossless and fast
                    file.create_dataset(key, (0, *value.shape[1:]), value.dtype,
                                        maxshape=(None, *value.shape[1:]),
                                        chunks=(1, *value.shape[1:]), compression="lzf",
                                        fletcher32=True)
                if file[key].shape[0] < end:
                    file[key].resize(end, axis=0)
                file[key][first_row + start:end] = value
            progress.update(len(indices))

    def _handle(self):
        if self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid, self._inode = os.getpid(), os.stat(self.path).st_ino
        return self._file

    def _close(self):
        if self._pid == os.getpid():
            self._file.close()
        self._file = self._pid = self._inode = None

    def read(self, video_index, frame_indices):
        """The cached frames `frame_indices` (any order, repeats allowed) of one video; a
        damaged file is rebuilt (see the module docstring)."""
        try:
            return self._read(video_index, frame_indices)
        except OSError as err:  # h5py: a checksum mismatch or a damaged file
            opened = self._inode
            self._close()
            if self.path.exists() and os.stat(self.path).st_ino != opened:
                return self._read(video_index, frame_indices)  # rebuilt by another process
            warnings.warn(f"{self.path}: damaged cache ({str(err).splitlines()[0]}); rebuilding "
                          "it", stacklevel=2)
            self._build(self.skipped)
            return self._read(video_index, frame_indices)

    def _read(self, video_index, frame_indices):
        file = self._handle()
        start, end = file["offsets"][video_index:video_index + 2]
        frame_indices = np.asarray(frame_indices, dtype=np.int64)
        if frame_indices.min() < 0 or frame_indices.max() >= end - start:
            raise IndexError(f"frames {frame_indices.tolist()} of video {video_index}, which has "
                             f"{end - start} frames ({self.path})")
        rows = start + frame_indices
        # one plain read per row: h5py's fancy indexing (dataset[list]) is ~300x slower per
        # frame on these one-frame chunks (benchmarks/perf.py, the cache figure)
        return {key: np.stack([file[key][row] for row in rows]) for key in file
                if key != "offsets"}

    def __getstate__(self):
        # An open h5py handle cannot be pickled (DataLoader workers started by spawn): each
        # process opens its own.
        return {**self.__dict__, "_file": None, "_pid": None, "_inode": None}
