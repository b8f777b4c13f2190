"""ResNet run per frame: TSN, TSM and ACTION-Net from one file (DESIGN.md, "ACTION module and
temporal shift"; the MSD paper, sections III-B and III-D).

A timm ResNet in `features_only` mode runs on every frame of (B, T, C, H, W) clips as one
(B*T, C, H, W) batch. It returns the stem after max-pool ('stem', stride 4: the MSD paper's
local decoder reads it) and the four residual stages ('res2'..'res5'), each as (B, T, C, h, w).

`temporal` picks the recognizer:
- "none": TSN (Wang et al., ECCV 2016), frames independent until the head's temporal average;
- "tsm": TSM (Lin et al., ICCV 2019), the fixed temporal shift before conv1 of every residual
  block (TSM's residual shift);
- "action": ACTION-Net (Wang et al., CVPR 2021), the ACTION module (learnable shift + three
  excitation paths) before conv1 of every block, 16 blocks in ResNet-50.
TEA (Li et al., CVPR 2020) is left out. The clip length T is read from each clip, so a network
trained on 8 frames also runs on 16.
"""

from typing import Literal

import timm
from einops import rearrange
from torch import nn

from ...config import ConfigError
from ...registry import closest
from ..layers import Action, TemporalShift, set_num_segments
from . import BACKBONES, MODALITY_CHANNELS, FeatureSpec

STAGES = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"}


@BACKBONES.register("resnet_tsn")
class ResNetTSN(nn.Module):
    def __init__(self, arch: str = "resnet50", modality: Literal["rgb", "depth", "flow"] = "rgb",
                 temporal: Literal["none", "tsm", "action"] = "none", drop_path_rate: float = 0.0,
                 last_stage: Literal["res2", "res3", "res4", "res5"] = "res5"):
        super().__init__()
        if arch not in timm.list_models("resnet*"):
            raise ConfigError("arch", f"{arch!r} is not a timm ResNet"
                              f"{closest(arch, timm.list_models('resnet*'))}")
        self.modality = modality
        # zero_init_last=False: every block's last BN starts at 1 as in torchvision's ResNet, which
        # TSM's and ACTION-Net's code build on; timm's zero start would make each block the
        # identity, so the temporal layers would neither act nor learn on the first step.
        # Stages past `last_stage` are never built: a pose head reading res3 pays for no more.
        stages = list(STAGES.values()).index(last_stage) + 1
        self.net = timm.create_model(arch, pretrained=False, features_only=True,
                                     out_indices=tuple(range(stages + 1)),
                                     in_chans=MODALITY_CHANNELS[modality],
                                     drop_path_rate=drop_path_rate, zero_init_last=False)
        if temporal != "none":
            for stage in [s for s in STAGES if s in self.net]:
                for block in self.net[stage]:
                    channels = block.conv1.in_channels
                    layer = TemporalShift() if temporal == "tsm" else Action(channels)
                    block.conv1 = nn.Sequential(layer, block.conv1)
        info = self.net.feature_info
        channels = dict(zip(info.module_name(), info.channels(), strict=True))
        strides = dict(zip(info.module_name(), info.reduction(), strict=True))
        self.feature_info = {"stem": FeatureSpec(channels["act1"], 2 * strides["act1"],
                                                 "b t c h w")}
        self.feature_info.update({name: FeatureSpec(channels[module], strides[module], "b t c h w")
                                  for module, name in STAGES.items() if module in channels})

    def forward(self, batch):
        clip = batch[self.modality]
        set_num_segments(self.net, clip.shape[1])
        x = rearrange(clip, "b t c h w -> (b t) c h w")
        features = {}
        for module_name, module in self.net.items():
            x = module(x)
            name = "stem" if module_name == "maxpool" else STAGES.get(module_name)
            if name:
                features[name] = rearrange(x, "(b t) c h w -> b t c h w", b=clip.shape[0])
        return features
