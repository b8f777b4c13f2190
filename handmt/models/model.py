"""HandModel: one backbone and a set of task heads, a `Model` (base.py; docs/design.md, "Model
contract")."""

import copy

from torch import nn

from .base import Prediction, merge_parts


class HandModel(nn.Module):
    """`forward(batch)` -> every head's outputs; `losses(outputs, batch)` -> named, weighted,
    masked losses plus `total`; `predict(batch)` -> the heads' predictions merged; `deploy()` ->
    the same model without auxiliary heads. Heads: `forward(features, batch)`,
    `loss(outputs, batch)`, `predict(outputs, batch)`, `auxiliary` (heads/base.py)."""

    def __init__(self, backbone, heads):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)

    @property
    def modalities(self):
        return [self.backbone.modality]

    def forward(self, batch):
        return self.head_outputs(self.backbone(batch), batch)

    def head_outputs(self, features, batch):
        """Every head's outputs on backbone `features` (MultiModalModel reuses the features)."""
        return merge_parts(((task, head(features, batch)) for task, head in self.heads.items()),
                           "output")

    def losses(self, outputs, batch):
        losses = {}
        for head in self.heads.values():
            losses.update(head.loss(outputs, batch))
        losses["total"] = sum(losses.values())
        return losses

    def predict(self, batch):
        return self.decode(self(batch), batch)

    def decode(self, outputs, batch):
        """The Prediction of `forward`'s outputs: every head's predicted fields (MultiModalModel
        decodes each network's outputs)."""
        return Prediction(**merge_parts(
            ((task, head.predict(outputs, batch)) for task, head in self.heads.items()),
            "prediction"))

    def set_epoch(self, epoch):
        """Nothing: no head's loss depends on the epoch."""

    def deploy(self, modality=None, *, keep_auxiliary=False):
        """An inference copy in eval mode holding only the non-auxiliary heads (e.g. the MSD
        depth decoders are dropped) unless `keep_auxiliary`; its outputs for the kept heads are
        identical. `modality`: None or the backbone's own."""
        if modality not in (None, *self.modalities):
            raise ValueError(f"this model reads {self.backbone.modality} clips, not {modality}")
        deployed = copy.deepcopy(self).eval()
        for task in [t for t, head in deployed.heads.items()
                     if head.auxiliary and not keep_auxiliary]:
            del deployed.heads[task]
        return deployed
