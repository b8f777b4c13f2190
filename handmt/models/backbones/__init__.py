"""Backbones map a clip batch to named feature maps and describe them in `feature_info`."""

from dataclasses import dataclass

from ...registry import Registry

BACKBONES = Registry("backbone")

# Input channels of each modality of the data contract.
MODALITY_CHANNELS = {"rgb": 3, "depth": 1, "flow": 2}


@dataclass(frozen=True)
class FeatureSpec:
    """One named feature map: channels, spatial stride w.r.t. the input, and its einops layout
    ('b t c h w' for 2D backbones run per frame, 'b c t h w' for 3D backbones)."""
    channels: int
    stride: int
    layout: str


from .c3d import C3D  # noqa: E402
from .i3d import I3D  # noqa: E402
from .resnet_tsn import ResNetTSN  # noqa: E402
from .skeleton import SkeletonEmbedding  # noqa: E402

__all__ = ["BACKBONES", "C3D", "I3D", "FeatureSpec", "MODALITY_CHANNELS", "ResNetTSN",
           "SkeletonEmbedding"]
