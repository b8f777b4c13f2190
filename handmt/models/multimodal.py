"""MTUT, multimodal training and unimodal testing (Abavisani et al., CVPR 2019): one network per
modality, trained together with the SSA loss and its focal regularization (eq. 1-4; docs/design.md,
"SSA loss with focal regularization"); at test time each network runs alone.

    model:
      modalities: [rgb, depth]      # one HandModel each; the backbone's `modality` is set per net
      backbone: {name: i3d}
      heads: {gesture: {name: clip_classifier, num_classes: 25, feature: Mixed_5c}}
      ssa: {feature: Mixed_5c, weight: 0.05, beta: 2.0, focal: true, start_epoch: 60}

Network m trains on l^m = l_cls^m + lambda * sum_{n != m} mean_b(rho^{m,n} * SSA^{m,n}) (eq. 4,
lambda = `ssa.weight`). `losses` returns each network's own losses as `{m}_{name}`, each
direction's weighted batch mean as `ssa_{m}_{n}` and `total`, the sum of all. ssa_loss detaches
corr(F_n) and rho, so `ssa_{m}_{n}` reaches network m only: the gradient of `total` with respect
to network m is that of l^m, and one backward pass trains every network on its own objective.

Choices (the paper leaves them open):
- rho's l_cls are per-sample cross-entropies of each network's detached logits (no label
  smoothing). A sample with label -1 has no classification loss to compare, so it gets no SSA
  term either; batch means run over the labelled samples, as the classification loss's.
- `focal: false`: rho = 1 (the paper's "I3D+SSA" ablation, section 4.5).
- Schedule: the trainer calls `set_epoch(epoch)` (from 0) at the start of every epoch; before
  `start_epoch` no SSA term is computed and every `ssa_{m}_{n}` is 0 (the paper: 60 epochs of
  classification, then 15 with SSA). `weight: 0` trains the networks alone, also without
  computing SSA.
- `backbone.pretrained` may be a mapping by modality (`{rgb: RGB.pt, depth: DEPTH.pt}`): each
  network loads its own entry (a modality left out starts from scratch); a single value is
  given to every network (RGB weights start depth and flow networks with averaged kernels,
  pretrained.py).
- The aligned feature is rearranged to (B, C, T, H, W) following the backbone's `feature_info`
  layout, so a 2D backbone's per-frame maps ('b t c h w') align over the clip's T*H*W positions
  as a 3D backbone's do.
"""

import itertools
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..errors import ConfigError
from ..losses import masked_mean, ssa_loss
from ..registry import check_arguments
from .backbones import MODALITY_CHANNELS
from .base import Prediction
from .heads import feature_spec

# Key of the aligned feature (B, C, T, H, W) in each network's outputs.
SSA_FEATURE = "ssa_feature"


@dataclass
class SSAOptions:
    """The `model.ssa` section (defaults: the paper's section 4, "Implementation Details")."""
    feature: str  # backbone feature to align: Mixed_5c for I3D, MaxPool3d_5 for C3D
    weight: float = 0.05  # lambda of eq. 4
    beta: float = 2.0  # focusing parameter of eq. 3
    focal: bool = True  # false: rho = 1
    start_epoch: int = 0  # epochs of classification only before SSA starts
    normalize: Literal["position", "channel"] = "position"
    distance: Literal["fro2", "rms"] = "fro2"
    max_term: float | None = None  # per-sample clamp of each direction (ssa.py)


def check_config(model, path="model"):
    """Check `modalities` and `ssa` of a multimodal `model` section, building nothing."""
    modalities = model.get("modalities")
    if (not isinstance(modalities, list) or len(modalities) < 2
            or len(set(modalities)) != len(modalities)
            or any(m not in MODALITY_CHANNELS for m in modalities)):
        raise ConfigError(f"{path}.modalities", f"expected two or more distinct modalities among "
                          f"{', '.join(MODALITY_CHANNELS)}, got {modalities!r}")
    if not isinstance(model.get("ssa"), dict):
        raise ConfigError(f"{path}.ssa", "a multimodal model needs its SSA options, a mapping "
                          "with at least `feature`")
    check_arguments(SSAOptions, model["ssa"], f"{path}.ssa")
    backbone = model.get("backbone")
    if isinstance(backbone, dict) and "modality" in backbone:
        raise ConfigError(f"{path}.backbone.modality", "is set per network from "
                          f"{path}.modalities; remove it")
    pretrained = backbone.get("pretrained") if isinstance(backbone, dict) else None
    for modality in pretrained if isinstance(pretrained, dict) else ():
        if modality not in modalities:
            raise ConfigError(f"{path}.backbone.pretrained.{modality}", "is not one of "
                              f"{path}.modalities: {', '.join(modalities)}")


def backbone_for(backbone, modality):
    """The backbone section of `modality`'s network: a `pretrained` mapping by modality
    resolved to that modality's entry (None when it has none)."""
    if not isinstance(backbone, dict) or not isinstance(backbone.get("pretrained"), dict):
        return backbone
    return {**backbone, "pretrained": backbone["pretrained"].get(modality)}


class MultiModalModel(nn.Module):
    """{modality: HandModel} coupled by the SSA loss (module docstring), a `Model` (base.py).

    `forward(batch)` -> {modality: that network's outputs plus SSA_FEATURE};
    `losses(outputs, batch)` -> `{m}_{name}`, `ssa_{m}_{n}`, `total`; `set_epoch(epoch)` turns SSA
    on from `ssa.start_epoch`; `predict(batch)` -> decision-level fusion and each network's
    Prediction; `deploy(modality)` -> one network alone."""

    def __init__(self, nets, ssa):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.ssa = SSAOptions(**ssa)
        self.layouts = {m: feature_spec(net.backbone.feature_info, self.ssa.feature).layout
                        for m, net in self.nets.items()}
        self.epoch = 0

    @property
    def modalities(self):
        return list(self.nets)

    def set_epoch(self, epoch):
        """The epoch about to be trained (from 0; a new model is at 0): SSA is on from
        `ssa.start_epoch`."""
        self.epoch = epoch

    def forward(self, batch):
        outputs = {}
        for modality, net in self.nets.items():
            features = net.backbone(batch)  # run once: the heads and SSA read the same maps
            outputs[modality] = net.head_outputs(features, batch)
            outputs[modality][SSA_FEATURE] = rearrange(
                features[self.ssa.feature], f"{self.layouts[modality]} -> b c t h w")
        return outputs

    def losses(self, outputs, batch):
        losses = {}
        for modality, net in self.nets.items():
            own = net.losses(outputs[modality], batch)
            losses.update({f"{modality}_{name}": value for name, value in own.items()
                           if name != "total"})
        losses.update(self.ssa_losses(outputs, batch))
        losses["total"] = sum(losses.values())
        return losses

    def ssa_losses(self, outputs, batch):
        """lambda * batch mean of rho^{m,n} * SSA^{m,n} for every ordered pair (eq. 2-4)."""
        pairs = list(itertools.permutations(self.nets, 2))
        if self.epoch < self.ssa.start_epoch or self.ssa.weight == 0:  # nothing to align
            zero = outputs[pairs[0][0]]["logits"].new_zeros(())
            return {f"ssa_{m}_{n}": zero for m, n in pairs}
        labels = batch["label"]
        valid = labels >= 0
        cls = {m: F.cross_entropy(outputs[m]["logits"].detach().float(), labels.clamp(min=0),
                                  reduction="none") for m in self.nets}
        opts, losses = self.ssa, {}
        for m, n in pairs:
            values = ssa_loss(outputs[m][SSA_FEATURE], outputs[n][SSA_FEATURE], cls[m], cls[n],
                              beta=opts.beta, normalize=opts.normalize, distance=opts.distance,
                              max_term=opts.max_term, valid=valid, focal=opts.focal)
            losses[f"ssa_{m}_{n}"] = opts.weight * masked_mean(values, valid)
        return losses

    def deploy(self, modality=None, *, keep_auxiliary=False):
        """The network of `modality` alone, deployed (HandModel.deploy: eval mode, no auxiliary
        heads unless `keep_auxiliary`): MTUT's unimodal testing."""
        if modality not in self.nets:
            raise ValueError(f"no {modality!r} network; this model has {', '.join(self.nets)}")
        return self.nets[modality].deploy(keep_auxiliary=keep_auxiliary)

    def predict(self, batch):
        """Each network's Prediction under `per_modality`, and as `logits` the decision-level
        fusion (section 4.4): the log of the mean over modalities of the softmax probabilities,
        so that softmax(logits) is that mean and code reading logits (evaluation, argmax) sees
        the fused decision."""
        outputs = self(batch)
        own = {m: net.decode(outputs[m], batch) for m, net in self.nets.items()}
        probs = torch.stack([p.logits.float().softmax(dim=1) for p in own.values()]).mean(dim=0)
        return Prediction(logits=probs.log(), per_modality=own)
