"""Model construction from a config's `model` section:

    model:
      backbone: {name: resnet_tsn, arch: resnet18}
      heads:
        gesture: {name: clip_classifier, num_classes: 45}

builds a HandModel. With `modalities: [rgb, depth, ...]` and an `ssa` section it builds MTUT's
MultiModalModel: one HandModel per modality from the same backbone and heads, the backbone's
`modality` set per network (multimodal.py).

Heads get `feature_info` from the built backbone: channels are never written in configs.
"""

from ..errors import ConfigError, closest
from . import multimodal
from .backbones import BACKBONES
from .heads import HEADS
from .model import HandModel
from .multimodal import MultiModalModel

KEYS = ("backbone", "heads", "modalities", "ssa")


def check_config(model, path="model"):
    """Check backbone and head arguments against their signatures, building nothing."""
    for key in model:
        if key not in KEYS:
            raise ConfigError(f"{path}.{key}", f"unknown key{closest(key, KEYS)}; "
                              f"valid: {', '.join(KEYS)}")
    backbones = [model.get("backbone")]
    if "modalities" in model or "ssa" in model:
        multimodal.check_config(model, path)
        backbones = [multimodal.backbone_for(model["backbone"], m) for m in model["modalities"]]
    for backbone in backbones:
        BACKBONES.check(backbone, f"{path}.backbone")
    heads = model.get("heads")
    if not isinstance(heads, dict) or not heads:
        raise ConfigError(f"{path}.heads", "expected a mapping of task name -> head config")
    for task, head in heads.items():
        HEADS.check(head, f"{path}.heads.{task}", feature_info=None)


def build(cfg):
    """A HandModel, or a MultiModalModel, from a whole config (or its `model` section)."""
    model = cfg.get("model", cfg)
    check_config(model)
    if "modalities" not in model:
        return build_hand_model(model)
    nets = {m: build_hand_model({**model, "backbone": multimodal.backbone_for(model["backbone"],
                                                                              m)}, modality=m)
            for m in model["modalities"]}
    try:
        return MultiModalModel(nets, model["ssa"])
    except ConfigError as err:  # e.g. an `ssa.feature` the backbone does not have
        raise ConfigError(f"model.ssa.{err.path}", err.message) from None


def build_hand_model(model, **backbone_args):
    backbone = BACKBONES.build(model["backbone"], "model.backbone", **backbone_args)
    heads = {task: HEADS.build(head, f"model.heads.{task}", feature_info=backbone.feature_info)
             for task, head in model["heads"].items()}
    return HandModel(backbone, heads)
