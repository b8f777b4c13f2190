"""Heads read the backbone features they name, return named outputs and own their losses."""

from ..collab import CollaborativeGestureHead, CollaborativeHead
from .base import HEADS, feature_spec
from .classifier import ClipClassifier, TCNClassifier
from .msd import MSDDecoder
from .segmentation import SegmentationHead

__all__ = ["HEADS", "ClipClassifier", "CollaborativeGestureHead", "CollaborativeHead",
           "MSDDecoder", "SegmentationHead", "TCNClassifier", "feature_spec"]
