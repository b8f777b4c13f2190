"""Video-level evaluation with multi-clip, multi-crop testing, and 3D pose evaluation, of any
`Model` through its `predict` (models/base.py).

The test dataset enumerates every view (clip x crop) of every video and tags it with `video`;
softmax probabilities are averaged over a video's views before the top-1 decision
(TSN's and the MSD paper's protocol). A model that predicts 3D joints is also scored by 3D PCK
over every labelled frame of every view (docs/design.md, "Metrics" and the 3D protocol of the
collaborative paper). A model that predicts hand masks is scored by mask IoU and F1 over every
labelled frame of every view, pixels pooled; a model without gesture logits (segmentation alone)
has no top-1. A model with per-modality predictions (MTUT) is scored per modality and by its
fused logits, which are also its `top1`."""

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..metrics import confusion_matrix, iou_f1, mask_counts, top1, video_predictions
from ..metrics.pose import DEFAULT_THRESHOLDS, REPORTED_THRESHOLDS, mpjpe, pck_at, pck_curve

OWN_LOGITS = "logits_"  # views' key prefix of each modality's own logits


def to_device(batch, device):
    """The batch's tensors on `device` (nested batches too: semi-supervised strong views)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else
            to_device(v, device) if isinstance(v, dict) else v for k, v in batch.items()}


def view_results(prediction, batch):
    """What `predict` keeps of one batch's Prediction (see there)."""
    found = {"label": batch["label"], "video": batch["video"]}
    if prediction.logits is not None:
        found["logits"] = prediction.logits.float()
    for modality, own in prediction.per_modality.items():
        found[f"{OWN_LOGITS}{modality}"] = own.logits.float()
    if prediction.joints3d is not None:
        found.update(joints3d=prediction.joints3d.float(), true_joints3d=batch["joints3d"],
                     pose_valid=batch["pose_valid"])
    if prediction.mask is not None:
        valid = batch["mask_valid"]
        found["mask_counts"] = torch.stack([  # batch["mask"] (B, T, 1, H, W)
            mask_counts(p[v], m[:, 0][v]) for p, m, v in
            zip(prediction.mask.float(), batch["mask"], valid, strict=True)])
        found["mask_frames"] = valid.sum(1)
    return found


@torch.no_grad()
def predict(model, dataset, batch_size=8, workers=0, progress=True, device="cpu"):
    """Logits, labels and video ids of every view of `dataset`, in dataset order (with
    per-modality predictions also each modality's logits under `logits_{modality}`); with 3D
    joints also the predicted and true 3D joints (views, T, 21, 3) and `pose_valid`; with masks
    `mask_counts` (views, 3), each view's `metrics.mask_counts` over its labelled frames, and
    `mask_frames` (views,), how many there are."""
    model.eval()
    # A private generator: evaluating must not advance the training RNG (resume determinism).
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    views = {}
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        batch = to_device(batch, device)
        for key, value in view_results(model.predict(batch), batch).items():
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
    segmentation head `segmentation_metrics` under "segmentation". For a model with
    per-modality predictions (MTUT) also `top1_{modality}` of each network alone and
    `top1_fusion`, the fused top-1 that `top1` and the confusion matrix report."""
    views = predict(model, dataset, batch_size, workers, progress, device)
    metrics = {"videos": int(views["video"].unique().numel())}
    if "logits" in views:
        _, probs, labels = video_predictions(views["logits"], views["label"], views["video"])
        metrics.update(top1=top1(probs, labels),
                       confusion=confusion_matrix(probs.argmax(1), labels, probs.shape[1]))
    own = [key for key in views if key.startswith(OWN_LOGITS)]
    for key in own:
        _, own_probs, _ = video_predictions(views[key], views["label"], views["video"])
        metrics[f"top1_{key.removeprefix(OWN_LOGITS)}"] = top1(own_probs, labels)
    if own:
        metrics["top1_fusion"] = metrics["top1"]
    if "joints3d" in views and views["pose_valid"].any():
        metrics["pose"] = pose_metrics(views)
    if "mask_counts" in views:
        metrics["segmentation"] = segmentation_metrics(views)
    return metrics
