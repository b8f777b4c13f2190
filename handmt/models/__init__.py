"""Models: one backbone and task heads (HandModel), or one network per modality coupled by SSA
(MultiModalModel); `build(cfg)` makes either from a config (factory.py)."""

from .backbones import BACKBONES
from .factory import build, check_config
from .heads import HEADS
from .model import HandModel
from .multimodal import MultiModalModel

__all__ = ["BACKBONES", "HEADS", "HandModel", "MultiModalModel", "build", "check_config"]
