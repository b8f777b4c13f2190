"""The dataset registry (docs/design.md, "Data contract")."""

from ..registry import Registry

DATASETS = Registry("dataset")
