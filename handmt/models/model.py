"""HandModel: one backbone and a set of task heads (DESIGN.md, Model contract)."""

import copy

from torch import nn


class HandModel(nn.Module):
    """`forward(batch)` -> every head's outputs; `losses(outputs, batch)` -> named, weighted,
    masked losses plus `total`; `deploy()` -> the same model without auxiliary heads."""

    def __init__(self, backbone, heads):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)

    def forward(self, batch):
        return self.head_outputs(self.backbone(batch), batch)

    def head_outputs(self, features, batch):
        """Every head's outputs on backbone `features` (MultiModalModel reuses the features)."""
        outputs = {}
        for task, head in self.heads.items():
            for key, value in head(features, batch).items():
                if key in outputs:
                    raise KeyError(f"heads write the same output {key!r} (second: {task!r})")
                outputs[key] = value
        return outputs

    def losses(self, outputs, batch):
        losses = {}
        for head in self.heads.values():
            losses.update(head.loss(outputs, batch))
        losses["total"] = sum(losses.values())
        return losses

    def deploy(self):
        """An inference copy in eval mode holding only the non-auxiliary heads (e.g. the MSD
        depth decoders are dropped); its outputs for those heads are identical."""
        deployed = copy.deepcopy(self).eval()
        for task in [t for t, head in deployed.heads.items() if head.auxiliary]:
            del deployed.heads[task]
        return deployed
