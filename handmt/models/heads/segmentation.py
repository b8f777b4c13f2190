"""Hand segmentation: per-frame hand-mask logits from one backbone feature, upsampled to the
input size (docs/design.md, "Data contract": `mask`; issue 16).

None of the three papers segments the hand with a mask label (the MSD paper's decoders regress
depth, `msd.py`), so this head is the plainest fully convolutional one (Long et al., CVPR 2015):
a 3x3 conv + BatchNorm + ReLU and a 1x1 conv to one logit per position of the chosen feature,
upsampled bilinearly by that feature's stride (`feature`: 'stem' or 'res2' for stride 4, 'res3'
for 8, ...). The output `mask_logits` (B, T, 1, H, W) has the input's size when the stride
divides it. The head reads per-frame features ('b t c h w'): the ResNet backbones, TSN, TSM and
ACTION alike, beside any other head (the collaborative one reads 'res3' of the same backbone).

Loss: per-pixel binary cross-entropy plus soft Dice (`losses.mask_losses`), each per frame and
averaged over the labelled frames, weighted `bce_weight` and `dice_weight`, named `mask_bce` and
`mask_dice`. `predict` gives the mask probabilities, the sigmoid of the logits. Label
availability: the batch carries `mask` (B, T, 1, H, W) in {0, 1} and `mask_valid` (B, T) bool,
false on the frames whose mask is unknown (their `mask` values are ignored and must be finite);
the FPHA loader writes both when `data.modalities` includes `mask`, and `data.withhold` with
task `mask` hides the masks of a share of the training videos.
"""

import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...errors import ConfigError
from ...losses import mask_losses
from .base import HEADS, feature_spec


@HEADS.register("segmentation")
class SegmentationHead(nn.Module):
    auxiliary = False  # a task of its own: deploy() keeps it

    @staticmethod
    def requires(args):  # the data it reads (heads/base.py)
        return {"mask"}

    def __init__(self, feature_info, feature: str = "res2", channels: int = 64,
                 bce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        spec = feature_spec(feature_info, feature)
        if spec.layout != "b t c h w":
            raise ConfigError("feature", f"the segmentation head reads per-frame features "
                              f"('b t c h w'), the backbone's {feature!r} is {spec.layout!r}")
        self.feature, self.stride = feature, spec.stride
        self.bce_weight, self.dice_weight = bce_weight, dice_weight
        self.decoder = nn.Sequential(
            nn.Conv2d(spec.channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.Conv2d(channels, 1, 1))

    def forward(self, features, batch):
        x = features[self.feature]
        logits = self.decoder(rearrange(x, "b t c h w -> (b t) c h w"))
        logits = F.interpolate(logits, scale_factor=self.stride, mode="bilinear",
                               align_corners=False)
        return {"mask_logits": rearrange(logits, "(b t) 1 h w -> b t 1 h w", b=x.shape[0])}

    def loss(self, outputs, batch):
        missing = [key for key in ("mask", "mask_valid") if key not in batch]
        if missing:
            raise KeyError(f"the segmentation head needs batch[{missing[0]!r}], which this batch "
                           "lacks: add mask to data.modalities")
        logits, target = outputs["mask_logits"], batch["mask"]
        if logits.shape != target.shape:
            raise ValueError(f"mask_logits {tuple(logits.shape)} and batch['mask'] "
                             f"{tuple(target.shape)} differ: the input size must be a multiple "
                             f"of the segmentation feature's stride ({self.stride})")
        bce, dice = mask_losses(logits, target, batch["mask_valid"])
        return {"mask_bce": self.bce_weight * bce, "mask_dice": self.dice_weight * dice}

    def predict(self, outputs, batch):
        return {"mask": outputs["mask_logits"][:, :, 0].float().sigmoid()}
