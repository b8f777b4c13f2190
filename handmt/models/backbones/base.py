"""The backbone registry and the feature description every backbone publishes (docs/design.md,
"Model contract"): a backbone has `modality`, the batch key of the clip it reads, and
`feature_info` {name: FeatureSpec}; `forward(batch)` -> {name: feature map}. Every backbone class
declares `requires(args)`: from its arguments (the config's, defaults filled in), the modalities
of `data.modalities` it reads (config.py checks them when a config is loaded)."""

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

