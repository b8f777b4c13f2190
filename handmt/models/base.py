"""The model contract (docs/design.md, "Model contract"): `Model`, which HandModel and MTUT's
MultiModalModel implement and every caller (trainer, evaluation, export, predict, benchmarks)
relies on alone, and `Prediction`, what `Model.predict` returns; `merge_parts`, the merge of
the heads' outputs or predictions, which must not collide."""

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from torch import Tensor


@dataclass
class Prediction:
    """A model's decoded predictions for a batch; a field the model does not predict is None.
    T, H, W are the batch's clip length and input-crop size."""
    logits: Tensor | None = None  # (B, classes) gesture class scores (softmax: probabilities)
    joints2d: Tensor | None = None  # (B, T, 21, 2) x, y in input-crop pixels
    # (B, T, 21, 3) colour-camera mm; needs batch["joints3d"] (root depth) and batch["K"]
    joints3d: Tensor | None = None
    rel_depth: Tensor | None = None  # (B, T, 21) each joint's z minus the wrist's, mm
    # (B, T, h, w) depth frames in the encoding of the depth target (data contract: FPHA
    # z / max_depth_mm, the gesture sets' 8-bit frames / 255), at the decoder's resolution
    depth: Tensor | None = None
    mask: Tensor | None = None  # (B, T, H, W) hand-mask probabilities in [0, 1]
    # MTUT: each network's own Prediction; `logits` above is then their fusion
    per_modality: dict[str, "Prediction"] = field(default_factory=dict)


@runtime_checkable
class Model(Protocol):
    """What every model kind offers (an nn.Module: also `parameters()`, `state_dict()`,
    `train()`, `eval()`, ...); `isinstance(model, Model)` checks that the names exist."""

    modalities: list[str]  # the batch keys of the clips it reads, e.g. ["rgb"], ["rgb", "depth"]

    def forward(self, batch: dict) -> dict:
        """Raw outputs, which only `losses` and `predict` read."""

    def losses(self, outputs: dict, batch: dict) -> dict[str, Tensor]:
        """Named weighted losses of `forward`'s outputs plus `total`, their sum."""

    def predict(self, batch: dict) -> Prediction:
        """The decoded predictions of `batch` (runs `forward`; no grad mode is set)."""

    def deploy(self, modality: str | None = None, *, keep_auxiliary: bool = False) -> "Model":
        """An inference copy in eval mode reading `modality` alone (None: the model's only one),
        without auxiliary heads unless `keep_auxiliary`; a modality the model cannot read alone
        is refused."""

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (from 0) for epoch-dependent losses."""


def merge_parts(parts, what):
    """One dict from (head name, dict) pairs whose keys must not repeat; a repeated key is refused
    naming it and the second head that writes it (`what`: what the keys are, for the error)."""
    merged = {}
    for name, part in parts:
        for key, value in part.items():
            if key in merged:
                raise KeyError(f"heads write the same {what} {key!r} (second: {name!r})")
            merged[key] = value
    return merged
