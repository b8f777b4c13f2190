"""HDF5 cache of decoded clips: every frame of every video as `read_frames` returns it.

Decoding full-size JPEGs, registering depth and computing optical flow dominate data loading;
the cache does them once: flow (flow.py) is a per-frame array like the others, computed once per
pair of frames while the cache is built.
A dataset that uses it provides `videos` (records with `num_frames`), `read_frames(video,
indices)`, `cache_key()` (a JSON-able dict of the settings the frames depend on, with at least
"dataset" and "split") and `source_files()` (the files the frames are read from).

The file holds a signature of the sources (path, size, mtime of each) and of the settings; a
mismatch rebuilds it. Builds go to a temporary file in the same folder that is then renamed, so
a reader never sees a half-written cache. Each process (each DataLoader worker) opens its own
read handle on first use.
"""

import hashlib
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

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
    return digest({"settings": dataset.cache_key(), "sources": sources})


class FrameCache:
    """Frames of `dataset` from `cache_dir/<dataset>-<split>-<settings hash>.h5`, built if
    missing or stale. `read(video, indices)` equals `dataset.read_frames(video, indices)`."""

    def __init__(self, cache_dir, dataset):
        key = dataset.cache_key()
        self.path = Path(cache_dir) / f"{key['dataset']}-{key['split']}-{digest(key)[:12]}.h5"
        self.signature = source_signature(dataset)
        self._file = None
        self._pid = None
        if not self._is_current():
            self._build(dataset)

    def _is_current(self):
        try:
            with h5py.File(self.path, "r") as file:
                return file.attrs.get("signature") == self.signature
        except OSError:  # missing, or not a readable HDF5 file (e.g. an interrupted copy)
            return False

    def _build(self, dataset):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        counts = [video.num_frames for video in dataset.videos]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        handle, temp_path = tempfile.mkstemp(dir=self.path.parent, suffix=".h5.tmp")
        os.close(handle)
        try:
            with h5py.File(temp_path, "w") as file, \
                    tqdm(total=int(offsets[-1]), desc=f"caching {self.path.name}",
                         unit="frame") as progress:
                file.attrs["signature"] = self.signature
                file.attrs["settings"] = json.dumps(dataset.cache_key())
                file["offsets"] = offsets
                for video_index, count in enumerate(counts):
                    for start in range(0, count, WRITE_CHUNK):
                        indices = np.arange(start, min(start + WRITE_CHUNK, count))
                        frames = dataset.read_frames(video_index, indices)
                        self._write(file, frames, offsets, video_index, indices)
                        progress.update(len(indices))
            os.replace(temp_path, self.path)
        except BaseException:
            os.unlink(temp_path)
            raise

    @staticmethod
    def _write(file, frames, offsets, video_index, indices):
        """Store one chunk: per-frame arrays at their rows, K once per video."""
        num_videos, total = len(offsets) - 1, int(offsets[-1])
        for key, value in frames.items():
            if key == "K":
                if key not in file:
                    file.create_dataset(key, (num_videos, *value.shape), value.dtype)
                file[key][video_index] = value
                continue
            if key not in file:
                # one chunk per frame: reads fetch whole frames; lzf is lossless and fast
                file.create_dataset(key, (total, *value.shape[1:]), value.dtype,
                                    chunks=(1, *value.shape[1:]), compression="lzf")
            rows = offsets[video_index] + indices
            file[key][rows[0]:rows[-1] + 1] = value

    def _handle(self):
        if self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def read(self, video_index, frame_indices):
        """The cached frames `frame_indices` (any order, repeats allowed) of one video."""
        file = self._handle()
        start, end = file["offsets"][video_index:video_index + 2]
        frame_indices = np.asarray(frame_indices, dtype=np.int64)
        if frame_indices.min() < 0 or frame_indices.max() >= end - start:
            raise IndexError(f"frames {frame_indices.tolist()} of video {video_index}, which has "
                             f"{end - start} frames ({self.path})")
        rows = start + frame_indices
        # one plain read per row: h5py's fancy indexing (dataset[list]) is ~300x slower per
        # frame on these one-frame chunks (benchmarks/perf.py, the cache figure)
        frames = {key: np.stack([file[key][row] for row in rows]) for key in file
                  if key not in ("K", "offsets")}
        frames["K"] = file["K"][video_index]
        return frames

    def __getstate__(self):
        # An open h5py handle cannot be pickled (DataLoader workers started by spawn): each
        # process opens its own.
        return {**self.__dict__, "_file": None, "_pid": None}
