"""Datasets that return the data contract of docs/design.md, and how configs build them
(factory.py)."""

from .base import DATASETS
from .egogesture import EgoGestureDataset
from .factory import build_dataset, check_config, dataset_root, skeleton_only
from .fpha import FPHADataset
from .isogd import IsoGDDataset
from .nvgesture import NVGestureDataset
from .synthetic import ensure_fpha, generate_fpha
from .viva import VIVADataset
from .withhold import withhold

__all__ = ["DATASETS", "EgoGestureDataset", "FPHADataset", "IsoGDDataset", "NVGestureDataset",
           "VIVADataset", "build_dataset", "check_config", "dataset_root", "ensure_fpha",
           "generate_fpha", "skeleton_only", "withhold"]
