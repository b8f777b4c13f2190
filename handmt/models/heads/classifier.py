"""Clip classifier: TSN's consensus (Wang et al., ECCV 2016, section 3.1).

Each frame's feature map is average-pooled and classified; the clip's logits are the temporal
average of the per-frame logits. 3D features ('b c t h w') are pooled over time and space.
"""

from einops import reduce
from torch import nn

from ...losses import masked_cross_entropy
from . import HEADS, feature_spec


@HEADS.register("clip_classifier")
class ClipClassifier(nn.Module):
    auxiliary = False

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
