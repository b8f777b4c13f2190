"""NVGesture read as distributed: 25 in-car hand gestures, 1050 training and 482 test videos.

Molchanov, Yang, Gupta, Kim, Tyree, Kautz, "Online Detection and Classification of Dynamic Hand
Gestures with Recurrent 3D Convolutional Neural Networks", CVPR 2016.

Layout: the root holds the split lists `nvgesture_{train,test}_correct_cvpr2016_v2.lst` (or the
earlier `..._cvpr2016.lst`), one video per line:
  path:./Video_data/class_01/subject13_r0 depth:sk_depth:46:126 color:sk_color:46:126
  duo_left:duo_left:60:140 label:1
`path` is relative to the root; a sensor field is `<sensor>:<video name>:<start>:<end>`, the
video being `<path>/<video name>.avi`; labels are 1..25 (read as 0..24). rgb reads the `color`
sensor, depth the `depth` one (8-bit, not registered to colour); other sensors are ignored.
Frames follow the dataset's own reader (readdata.py of the release: it seeks to `start` and
reads `range(start, end)`): 0-based video frames start .. end - 1, end exclusive, each sensor
with its own start.

Everything else (sampling, crops, depth scaling, defects) is video.GestureDataset's and
base.ClipDataset's.
"""

from .base import Listed, annotation_lines, gesture_label, register_dataset
from .frames import FrameSource
from .video import GestureDataset

__all__ = ["NVGestureDataset", "read_list"]

NUM_CLASSES = 25
LIST_FILES = {split: (f"nvgesture_{split}_correct_cvpr2016_v2.lst",
                      f"nvgesture_{split}_correct_cvpr2016.lst") for split in ("train", "test")}
SENSORS = {"rgb": "color", "depth": "depth"}


def read_list(path):
    """A split list -> [(line number, path, label 0-based, {sensor: (video name, start, end)})].

    CRLF line endings and blank lines are tolerated; a malformed line raises a ValueError naming
    the file and line."""
    entries = []
    for line_number, line in annotation_lines(path):
        fields, where = line.split(), f"{path}:{line_number}"
        video, label, sensors = None, None, {}
        for field in fields:
            key, _, value = field.partition(":")
            if key == "path" and value:
                video = value
            elif key == "label":
                label = gesture_label(value, where, num_classes=NUM_CLASSES)
            else:
                parts = value.split(":")
                if len(parts) != 3 or not parts[0] or not (parts[1].isdigit()
                                                           and parts[2].isdigit()):
                    raise ValueError(f"{where}: expected 'path:<folder>', 'label:<n>' or "
                                     f"'<sensor>:<video>:<start>:<end>', got {field!r}")
                start, end = int(parts[1]), int(parts[2])
                if end <= start:
                    raise ValueError(f"{where}: {key} ends at frame {end}, not after its "
                                     f"start {start}")
                sensors[key] = (parts[0], start, end)
        missing = [name for name, value in (("path", video), ("label", label))
                   if value is None]
        missing += [f"{sensor} sensor" for sensor in SENSORS.values() if sensor not in sensors]
        if missing:
            raise ValueError(f"{where}: no {', '.join(missing)} in {line.strip()[:120]!r}")
        entries.append((line_number, video, label, sensors))
    return entries


@register_dataset("nvgesture")
class NVGestureDataset(GestureDataset):
    """NVGesture videos as the data contract's dicts (module docstring; video.py)."""

    NUM_CLASSES = NUM_CLASSES
    SPLITS = ("train", "test")

    def list_samples(self):
        names = LIST_FILES[self.split]
        path = next((self.root / n for n in names if (self.root / n).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{self.root}: no {' or '.join(names)}")
        listed = []
        for _, video, label, sensors in read_list(path):
            folder = self.root / video
            sources = {}
            for modality in self.streams:
                name, start, end = sensors[SENSORS[modality]]
                sources[modality] = FrameSource(folder / f"{name}.avi", start,
                                                claimed=end - start)
            listed.append(Listed(video.removeprefix("./"), label, sources))
        return str(path), [path], listed
