"""Heads read the backbone features they name, return named outputs and own their losses."""

from ...config import ConfigError
from ...registry import Registry, closest

HEADS = Registry("head")


def feature_spec(feature_info, name):
    """The FeatureSpec of feature `name`, or a ConfigError listing the backbone's features."""
    if name not in feature_info:
        raise ConfigError("feature", f"the backbone has no feature {name!r}"
                          f"{closest(name, feature_info)}; it has: {', '.join(feature_info)}")
    return feature_info[name]


from .classifier import ClipClassifier, TCNClassifier  # noqa: E402
from .collab import CollaborativeGestureHead, CollaborativeHead  # noqa: E402
from .msd import MSDDecoder  # noqa: E402
from .segmentation import SegmentationHead  # noqa: E402

__all__ = ["HEADS", "ClipClassifier", "CollaborativeGestureHead", "CollaborativeHead",
           "MSDDecoder", "SegmentationHead", "TCNClassifier", "feature_spec"]
