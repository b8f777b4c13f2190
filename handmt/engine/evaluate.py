"""Video-level evaluation with multi-clip, multi-crop testing, and 3D pose evaluation.

The test dataset enumerates every view (clip x crop) of every video and tags it with `video`;
softmax probabilities are averaged over a video's views before the top-1 decision
(TSN's and the MSD paper's protocol). A model with a pose head (one with `decode_3d`) is also
scored by 3D PCK over every labelled frame of every view (DESIGN.md, "Metrics" and the 3D
protocol of the collaborative paper). A model with a segmentation head (output `mask_logits`) is
scored by mask IoU and F1 over every labelled frame of every view, pixels pooled; a model
without gesture logits (segmentation alone) has no top-1. A MultiModalModel (MTUT) is scored
per modality and by its decision-level fusion, which is also its `top1`."""

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..metrics import confusion_matrix, iou_f1, mask_counts, top1, video_predictions
from ..metrics.pose import DEFAULT_THRESHOLDS, REPORTED_THRESHOLDS, mpjpe, pck_at, pck_curve
from ..models import MultiModalModel


def to_device(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
            for k, v in batch.items()}


def view_logits(model, outputs):
    """{"logits": the logits to score}, empty for a model without a gesture head; for a
    MultiModalModel "logits" is its fusion and "logits_{modality}" each network's own."""
    if not isinstance(model, MultiModalModel):
        return {"logits": outputs["logits"]} if "logits" in outputs else {}
    return {"logits": model.fuse(outputs)["logits"],
            **{f"logits_{m}": outputs[m]["logits"] for m in model.modalities}}


def pose_head(model):
    """The head that decodes 3D joints (`decode_3d`), or None."""
    heads = getattr(model, "heads", {})
    return next((head for head in heads.values() if hasattr(head, "decode_3d")), None)


@torch.no_grad()
def predict(model, dataset, batch_size=8, workers=0, progress=True, device="cpu"):
    """Logits, labels and video ids of every view of `dataset`, in dataset order (for a
    MultiModalModel also `view_logits`' per-modality logits); with a pose head also the
    predicted and true 3D joints (views, T, 21, 3) and `pose_valid`; with a segmentation head
    `mask_counts` (views, 3), each view's `metrics.mask_counts` over its labelled frames, and
    `mask_frames` (views,), how many there are."""
    model.eval()
    # A private generator: evaluating must not advance the training RNG (resume determinism).
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    head = pose_head(model)
    views = {}
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        batch = to_device(batch, device)
        outputs = model(batch)
        found = {**{k: v.float() for k, v in view_logits(model, outputs).items()},
                 "label": batch["label"], "video": batch["video"]}
        if head:
            found.update(joints3d=head.decode_3d(outputs, batch).float(),
                         true_joints3d=batch["joints3d"], pose_valid=batch["pose_valid"])
        if "mask_logits" in outputs:
            probs, valid = outputs["mask_logits"].float().sigmoid(), batch["mask_valid"]
            found["mask_counts"] = torch.stack([mask_counts(p[v], m[v]) for p, m, v in
                                                zip(probs, batch["mask"], valid, strict=True)])
            found["mask_frames"] = valid.sum(1)
        for key, value in found.items():
            views.setdefault(key, []).append(value.cpu())
    return {key: torch.cat(values) for key, values in views.items()}


def pose_metrics(views, thresholds=DEFAULT_THRESHOLDS):
    """3D PCK curve, AUC, PCK at the reported thresholds and MPJPE of `predict`'s views."""
    valid = views["pose_valid"]
    pck, auc = pck_curve(views["joints3d"], views["true_joints3d"], thresholds, valid)
    return {"thresholds": [float(t) for t in thresholds], "pck": [float(p) for p in pck],
            "auc": auc, **{f"pck@{t}": pck_at(pck, thresholds, t) for t in REPORTED_THRESHOLDS},
            "mpjpe": mpjpe(views["joints3d"], views["true_joints3d"], valid),
            "frames": int(valid.sum())}


def segmentation_metrics(views):
    """Mask IoU and F1 of `predict`'s views, pixels of every labelled frame pooled."""
    counts = views["mask_counts"].sum(0)
    iou, f1 = iou_f1(counts)
    return {"iou": iou, "f1": f1, "frames": int(views["mask_frames"].sum())}


def evaluate(model, dataset, batch_size=8, workers=0, progress=True, device="cpu"):
    """The number of test videos; with gesture logits the top-1 over videos after averaging
    softmax probabilities over their views and the confusion matrix over videos (rows: true
    class); for a model with a pose head `pose_metrics` under "pose"; for a model with a
    segmentation head `segmentation_metrics` under "segmentation". For a MultiModalModel also
    `top1_{modality}` of each network alone and `top1_fusion`, the fused top-1 that `top1` and
    the confusion matrix report."""
    views = predict(model, dataset, batch_size, workers, progress, device)
    metrics = {"videos": int(views["video"].unique().numel())}
    if "logits" in views:
        _, probs, labels = video_predictions(views["logits"], views["label"], views["video"])
        metrics.update(top1=top1(probs, labels),
                       confusion=confusion_matrix(probs.argmax(1), labels, probs.shape[1]))
    if isinstance(model, MultiModalModel):
        for modality in model.modalities:
            _, own_probs, _ = video_predictions(views[f"logits_{modality}"], views["label"],
                                                views["video"])
            metrics[f"top1_{modality}"] = top1(own_probs, labels)
        metrics["top1_fusion"] = metrics["top1"]
    if "joints3d" in views and views["pose_valid"].any():
        metrics["pose"] = pose_metrics(views)
    if "mask_counts" in views:
        metrics["segmentation"] = segmentation_metrics(views)
    return metrics
