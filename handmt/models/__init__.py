"""Model construction from a config's `model` section:

    model:
      backbone: {name: resnet_tsn, arch: resnet18}
      heads:
        gesture: {name: clip_classifier, num_classes: 45}

Heads get `feature_info` from the built backbone: channels are never written in configs.
"""

from ..config import ConfigError
from .backbones import BACKBONES
from .heads import HEADS
from .model import HandModel

__all__ = ["BACKBONES", "HEADS", "HandModel", "build", "check_config"]


def check_config(model, path="model"):
    """Check backbone and head arguments against their signatures, building nothing."""
    for key in model:
        if key not in ("backbone", "heads"):
            raise ConfigError(f"{path}.{key}", "unknown key; valid: backbone, heads")
    BACKBONES.check(model.get("backbone"), f"{path}.backbone")
    heads = model.get("heads")
    if not isinstance(heads, dict) or not heads:
        raise ConfigError(f"{path}.heads", "expected a mapping of task name -> head config")
    for task, head in heads.items():
        HEADS.check(head, f"{path}.heads.{task}", feature_info=None)


def build(cfg):
    """A HandModel from a whole config (or its `model` section)."""
    model = cfg.get("model", cfg)
    check_config(model)
    backbone = BACKBONES.build(model["backbone"], "model.backbone")
    heads = {task: HEADS.build(head, f"model.heads.{task}", feature_info=backbone.feature_info)
             for task, head in model["heads"].items()}
    return HandModel(backbone, heads)
