"""Backbones map a clip batch to named feature maps and describe them in `feature_info`."""

from .base import BACKBONES, MODALITY_CHANNELS, FeatureSpec
from .c3d import C3D
from .i3d import I3D
from .resnet_tsn import ResNetTSN
from .skeleton import SkeletonEmbedding

__all__ = ["BACKBONES", "C3D", "I3D", "FeatureSpec", "MODALITY_CHANNELS", "ResNetTSN",
           "SkeletonEmbedding"]
