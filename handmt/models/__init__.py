"""Models: one backbone and task heads (HandModel), or one network per modality coupled by SSA
(MultiModalModel), both `Model`s returning a `Prediction` (base.py); `build(cfg)` makes either
from a config (factory.py)."""

from .backbones import BACKBONES
from .base import Model, Prediction
from .factory import build, check_config
from .heads import HEADS
from .model import HandModel
from .multimodal import MultiModalModel

__all__ = ["BACKBONES", "HEADS", "HandModel", "Model", "MultiModalModel", "Prediction", "build",
           "check_config"]
