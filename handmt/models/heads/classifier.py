"""Clip classifiers. `clip_classifier`: TSN's consensus (Wang et al., ECCV 2016, section 3.1):
each frame's feature map is average-pooled and classified; the clip's logits are the temporal
average of the per-frame logits; 3D features ('b c t h w') are pooled over time and space.
`tcn_classifier`: a temporal-conv network over the per-frame pooled features (models/collab/tcn.py),
e.g. the plain reference classifier of 3D skeletons.
"""

from einops import reduce
from torch import nn

from ...losses import masked_cross_entropy
from ..collab.tcn import TCN
from .base import HEADS, feature_spec


@HEADS.register("clip_classifier")
class ClipClassifier(nn.Module):
    auxiliary = False

    @staticmethod
    def requires(args):  # the data it reads (heads/base.py)
        return set()

    def __init__(self, feature_info, num_classes: int, feature: str = "res5", dropout: float = 0.5,
                 loss_weight: float = 1.0, label_smoothing: float = 0.0):
        super().__init__()
        spec = feature_spec(feature_info, feature)
        self.feature, self.layout = feature, spec.layout
        self.loss_weight, self.label_smoothing = loss_weight, label_smoothing
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(spec.channels, num_classes)

    def forward(self, features, batch):
        x = features[self.feature]
        if self.layout == "b t c h w":
            frame_logits = self.fc(self.dropout(reduce(x, "b t c h w -> b t c", "mean")))
            return {"logits": frame_logits.mean(dim=1)}
        return {"logits": self.fc(self.dropout(reduce(x, "b c t h w -> b c", "mean")))}

    def loss(self, outputs, batch):
        ce = masked_cross_entropy(outputs["logits"], batch["label"], self.label_smoothing)
        return {"cls": self.loss_weight * ce}

    def predict(self, outputs, batch):
        return {"logits": outputs["logits"]}


@HEADS.register("tcn_classifier")
class TCNClassifier(nn.Module):
    """Per-frame features (B, T, C, h, w), pooled over space -> TCN -> logits (B, classes)."""

    auxiliary = False

    @staticmethod
    def requires(args):  # the data it reads (heads/base.py)
        return set()

    def __init__(self, feature_info, num_classes: int, feature: str = "joints", hidden: int = 128,
                 layers: int = 2, kernel_size: int = 3, dropout: float = 0.5):
        super().__init__()
        spec = feature_spec(feature_info, feature)
        if spec.layout != "b t c h w":
            raise ValueError(f"tcn_classifier: feature {feature!r} has layout {spec.layout!r}; "
                             "it needs per-frame maps ('b t c h w')")
        self.feature = feature
        self.tcn = TCN(spec.channels, num_classes, hidden, layers, kernel_size, dropout)

    def forward(self, features, batch):
        return {"logits": self.tcn(reduce(features[self.feature], "b t c h w -> b t c", "mean"))}

    def loss(self, outputs, batch):
        return {"cls": masked_cross_entropy(outputs["logits"], batch["label"])}

    def predict(self, outputs, batch):
        return {"logits": outputs["logits"]}
