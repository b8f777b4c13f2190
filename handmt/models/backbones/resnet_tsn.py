"""ResNet run per frame: TSN, TSM, ACTION-Net and TEA from one file (docs/design.md, "ACTION
module and temporal shift"; the MSD paper, sections III-B and III-D).

A timm ResNet in `features_only` mode runs on every frame of (B, T, C, H, W) clips as one
(B*T, C, H, W) batch. It returns the stem after max-pool ('stem', stride 4: the MSD paper's
local decoder reads it) and the four residual stages ('res2'..'res5'), each as (B, T, C, h, w).

`temporal` picks the recognizer:
- "none": TSN (Wang et al., ECCV 2016), frames independent until the head's temporal average;
- "tsm": TSM (Lin et al., ICCV 2019), the fixed temporal shift before conv1 of every residual
  block (TSM's residual shift);
- "action": ACTION-Net (Wang et al., CVPR 2021), the ACTION module (learnable shift + three
  excitation paths) before conv1 of every block, 16 blocks in ResNet-50;
- "tea": TEA (Li et al., CVPR 2020), motion excitation and multiple temporal aggregation in
  every block of a Res2Net (layers/tea.py); `arch` must be a timm Res2Net (res2net50_26w_4s,
  the public TEA code's backbone).
The clip length T is read from each clip, so a network trained on 8 frames also runs on 16.

`pretrained` (pretrained.py) accepts timm's weights for `arch`, a timm or torchvision state dict
of the same architecture (its `fc` is dropped with a note, as are stages past `last_stage`), a
handmt checkpoint's backbone, and ACTION-Net's official checkpoints (V-Sense/ACTION-Net:
`module.base_model.` + a torchvision ResNet whose blocks' conv1 is `Action(net)` with
`action_shift`, `action_p1_conv1`, ...; its `module.new_fc` classifier is dropped with a
note). Image weights leave the temporal layers at their initialization (the shifts at TSM's
shift); ACTION-Net's checkpoints load them too.
"""

import re
from typing import Literal

import timm
from einops import rearrange
from torch import nn

from ...errors import ConfigError, closest
from ..layers import Action, TEABottleneck, TemporalShift, set_num_segments
from ..pretrained import adapt_first_conv, drop, load_weights, origin_of, read_weights
from .base import BACKBONES, MODALITY_CHANNELS, FeatureSpec

STAGES = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"}

# ACTION-Net's module names inside a block's conv1 -> ours (layers/action.py), in `conv1.0`.
ACTION_NET_NAMES = {"action_shift": "shift.conv", "action_p1_conv1": "ste_conv",
                    "action_p2_squeeze": "ce_squeeze", "action_p2_conv1": "ce_temporal",
                    "action_p2_expand": "ce_expand", "action_p3_squeeze": "me_squeeze",
                    "action_p3_bn1": "me_bn", "action_p3_conv1": "me_conv",
                    "action_p3_expand": "me_expand"}


@BACKBONES.register("resnet_tsn")
class ResNetTSN(nn.Module):
    @staticmethod
    def requires(args):  # the data it reads (backbones/base.py)
        return {args["modality"]}

    def __init__(self, arch: str = "resnet50", modality: Literal["rgb", "depth", "flow"] = "rgb",
                 temporal: Literal["none", "tsm", "action", "tea"] = "none",
                 drop_path_rate: float = 0.0,
                 last_stage: Literal["res2", "res3", "res4", "res5"] = "res5",
                 pretrained: bool | str | None = None):
        super().__init__()
        family, name = (("res2net", "Res2Net, which temporal 'tea' needs (res2net50_26w_4s)")
                        if temporal == "tea" else ("resnet", "ResNet"))
        if arch not in timm.list_models(f"{family}*"):
            raise ConfigError("arch", f"{arch!r} is not a timm {name}"
                              f"{closest(arch, timm.list_models(f'{family}*'))}")
        self.modality, self.temporal = modality, temporal
        # zero_init_last=False: every block's last BN starts at 1 as in torchvision's ResNet, which
        # TSM's and ACTION-Net's code build on; timm's zero start would make each block the
        # identity, so the temporal layers would neither act nor learn on the first step.
        # Stages past `last_stage` are never built: a pose head reading res3 pays for no more.
        stages = list(STAGES.values()).index(last_stage) + 1
        self.net = timm.create_model(arch, pretrained=False, features_only=True,
                                     out_indices=tuple(range(stages + 1)),
                                     in_chans=MODALITY_CHANNELS[modality],
                                     drop_path_rate=drop_path_rate, zero_init_last=False)
        image_keys = {self.layout_key(k) for k in self.net.state_dict()}
        for stage in [s for s in STAGES if s in self.net]:
            blocks = self.net[stage]
            for i, block in enumerate(blocks):
                if temporal == "tea":
                    blocks[i] = TEABottleneck(block)
                elif temporal != "none":
                    channels = block.conv1.in_channels
                    layer = TemporalShift() if temporal == "tsm" else Action(channels)
                    block.conv1 = nn.Sequential(layer, block.conv1)
        if pretrained:
            self.load_pretrained(pretrained, arch, new_layers=self.net.state_dict().keys()
                                 - image_keys)
        info = self.net.feature_info
        channels = dict(zip(info.module_name(), info.channels(), strict=True))
        strides = dict(zip(info.module_name(), info.reduction(), strict=True))
        self.feature_info = {"stem": FeatureSpec(channels["act1"], 2 * strides["act1"],
                                                 "b t c h w")}
        self.feature_info.update({name: FeatureSpec(channels[module], strides[module], "b t c h w")
                                  for module, name in STAGES.items() if module in channels})

    def layout_key(self, key):
        """This network's key for `key` of a plain timm/torchvision ResNet: tsm and action put
        their layer before each block's conv1, in `conv1.0`, so the convolution is `conv1.1`."""
        if self.temporal in ("tsm", "action"):
            return re.sub(r"^(layer\d\.\d+)\.conv1\.", r"\1.conv1.1.", key)
        return key

    def load_pretrained(self, pretrained, arch, new_layers):
        origin = origin_of(pretrained, arch)
        state = read_weights(pretrained, arch)
        if any(k.startswith("net.") for k in state):  # a handmt checkpoint: this very layout
            state = {k.removeprefix("net."): v for k, v in state.items()}
        elif any(k.startswith(("module.base_model.", "base_model.")) for k in state):
            state = from_action_net(drop(state, ("module.new_fc.", "new_fc."),
                                         "ACTION-Net's classifier; heads classify", origin))
        else:
            state = {self.layout_key(k): v for k, v in drop(
                state, ("fc.",), "the ImageNet classifier; heads classify", origin).items()}
        unbuilt = tuple(f"{m}." for m in STAGES if m not in self.net)
        if unbuilt:
            state = drop(state, unbuilt, "stages past last_stage are not built", origin)
        state = adapt_first_conv(state, "conv1.weight", MODALITY_CHANNELS[self.modality], origin)
        load_weights(self.net, state, origin, frozenset(new_layers))

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


def from_action_net(state):
    """An ACTION-Net checkpoint's keys (`module.base_model.layer1.0.conv1.net.weight`,
    `...conv1.action_p3_bn1.running_var`) in this backbone's layout (`layer1.0.conv1.1.weight`,
    `layer1.0.conv1.0.me_bn.running_var`)."""
    converted = {}
    for key, value in state.items():
        key = re.sub(r"^(module\.)?base_model\.", "", key)
        key = re.sub(r"\.conv1\.net\.", ".conv1.1.", key)
        match = re.match(r"^(layer\d\.\d+\.conv1)\.(action_\w+)\.(.+)$", key)
        if match and match[2] in ACTION_NET_NAMES:
            key = f"{match[1]}.0.{ACTION_NET_NAMES[match[2]]}.{match[3]}"
        converted[key] = value
    return converted
