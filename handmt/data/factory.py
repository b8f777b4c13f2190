"""How a config's `data` section builds a dataset.

A config's `data` section is {name, root, cache, augment, synthetic, withhold, **dataset
arguments}: `root: null` means the synthetic FPHA-format set described by `synthetic` (generated
once into cache_home()), `augment` configures the training clip augmentation, `cache: true` keeps
decoded clips in an HDF5 file under cache_home()/clips, and `withhold: [{task, keep_fraction,
seed}, ...]` hides labels of the training split (weak supervision, `withhold.withhold`);
`labels: FILE.csv` overrides the labels of listed videos (labels.py).
"""

from pathlib import Path

from ..errors import ConfigError, closest
from ..registry import check_arguments
from .base import DATASETS
from .cache import cache_home
from .labels import apply_labels
from .skeleton import SkeletonTransform, normalize_skeleton
from .synthetic import ensure_fpha, generate_fpha
from .transforms import build_train_transform
from .withhold import withhold

BUILDER_KEYS = ("name", "root", "cache", "augment", "synthetic", "withhold", "labels")
PROVIDED = ("root", "split", "transform", "cache_dir", "clips", "crops")
POSITIVE = ("num_frames", "size", "dense_stride")  # integer dataset arguments (type-checked)


def check_config(data, path="data"):
    """Check the `data` section: the dataset's own arguments (modality names among the
    dataset's MODALITIES, when it declares them), augmentation and generator keys."""
    fn, _ = DATASETS.check({k: v for k, v in data.items() if k not in BUILDER_KEYS[1:]}, path,
                           **dict.fromkeys(PROVIDED))
    for key in POSITIVE:
        if key in data and data[key] < 1:
            raise ConfigError(f"{path}.{key}", f"must be at least 1, got {data[key]}")
    known = getattr(fn, "MODALITIES", None)
    for i, modality in enumerate(data.get("modalities") or []):
        if known is not None and modality not in known:
            raise ConfigError(f"{path}.modalities[{i}]", f"unknown modality {modality!r}"
                              f"{closest(modality, known)}; {data['name']} provides "
                              f"{', '.join(known)}")
    if data.get("labels") is not None and not isinstance(data["labels"], str):
        raise ConfigError(f"{path}.labels", "expected the path of a video,gesture,pose CSV or "
                          f"null, got {data['labels']!r}")
    if data.get("root") is not None and not isinstance(data["root"], str):
        raise ConfigError(f"{path}.root", f"expected a folder path or null, got {data['root']!r}")
    if not isinstance(data.get("cache", False), bool):
        raise ConfigError(f"{path}.cache", f"expected true or false, got {data['cache']!r}")
    for key, fn, provided in (("augment", *augmentation(data)),
                              ("synthetic", generate_fpha, ("out", "progress", "workers")),
                              ("joint_norm", normalize_skeleton, ("joints",))):
        section = data.get(key) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{path}.{key}", "expected a mapping")
        check_arguments(fn, section, f"{path}.{key}", provided=provided)
    rules = data.get("withhold") or []
    if not isinstance(rules, list):
        raise ConfigError(f"{path}.withhold", "expected a list of {task, keep_fraction, seed}")
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise ConfigError(f"{path}.withhold[{i}]", "expected {task, keep_fraction, seed}")
        check_arguments(withhold, rule, f"{path}.withhold[{i}]", provided=("dataset",))


def skeleton_only(data):
    return list(data.get("modalities") or []) == ["joints"]


def augmentation(data):
    """(builder of the training transform, the arguments it gets from the dataset's): skeleton
    augmentation for the joints modality, the clip pipeline otherwise."""
    return (SkeletonTransform, ()) if skeleton_only(data) else (build_train_transform, ("size",))


def dataset_root(data):
    """The dataset folder: `data.root`, or the synthetic set (generated on first use)."""
    if data.get("root") is None and data["name"] != "fpha":
        raise ConfigError("data.root", f"the {data['name']} dataset is not embedded: set "
                          f"data.root=DIR to its folder (only fpha has a synthetic stand-in)")
    if data.get("root") is not None:
        root = Path(data["root"]).expanduser()
        if not root.is_dir():
            raise ConfigError("data.root", f"folder {root} does not exist")
        return root
    return ensure_fpha(**(data.get("synthetic") or {}))


def training_transform(data, augment):
    """The training transform of the `data` section with the arguments `augment` (a mapping of
    `data.augment`'s kind): skeleton augmentation for joints, the clip pipeline otherwise."""
    if skeleton_only(data):
        return SkeletonTransform(**augment)
    return build_train_transform(size=data.get("size", 224), **augment)


def build_dataset(data, split, clips=1, crops=1, size=None):
    """The dataset of one split; training clips get the `augment` transform; `size` replaces
    `data.size` (a test resolution above the training one)."""
    root = dataset_root(data)
    kwargs = {k: v for k, v in data.items() if k not in BUILDER_KEYS}
    if size is not None:
        kwargs["size"] = size
    fn = DATASETS.get(data["name"], "data.name")
    transform = None
    if split == "train" and data.get("augment") is not None:
        transform = training_transform(data, data["augment"])
    cache_dir = str(cache_home() / "clips") if data.get("cache", False) else None
    dataset = fn(root=str(root), split=split, transform=transform, cache_dir=cache_dir,
                 clips=clips, crops=crops, **kwargs)
    if data.get("labels") is not None:
        labels = Path(data["labels"]).expanduser()
        if not labels.is_file():
            raise ConfigError("data.labels", f"file {labels} does not exist")
        dataset = apply_labels(dataset, labels)
    for rule in (data.get("withhold") or []) if split == "train" else []:
        dataset = withhold(dataset, **rule)
    return dataset

