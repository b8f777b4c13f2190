"""Hand segmentation metrics: IoU and F1 of thresholded mask probabilities, pooled over pixels
(docs/design.md, "Metrics").

Pixels of all frames count together (large hands weigh more than small ones), so evaluation can
sum `mask_counts` batch by batch and score the sums with `iou_f1` at the end. When neither the
prediction nor the target has a foreground pixel the prediction is perfect: IoU = F1 = 1.
"""

import torch


def mask_counts(pred, target, threshold=0.5):
    """int64 tensor [true positives, false positives, false negatives] of the pixels of
    pred >= threshold against target >= 0.5.

    pred: mask probabilities in [0, 1] (apply the sigmoid to logits first), any shape; target:
    {0, 1} masks of the same shape."""
    pred = torch.as_tensor(pred).detach()
    target = torch.as_tensor(target, device=pred.device).detach()
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.numel() and (pred.min() < 0 or pred.max() > 1):
        raise ValueError(f"pred must hold probabilities in [0, 1] (sigmoid of the logits); got "
                         f"values in [{pred.min().item():g}, {pred.max().item():g}]")
    pred_fg, target_fg = pred >= threshold, target >= 0.5
    return torch.stack([(pred_fg & target_fg).sum(), (pred_fg & ~target_fg).sum(),
                        (~pred_fg & target_fg).sum()]).long().cpu()


def iou_f1(counts):
    """(IoU, F1) of `mask_counts` (or their sum over batches): TP / (TP + FP + FN) and
    2 TP / (2 TP + FP + FN)."""
    tp, fp, fn = (int(c) for c in counts)
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return tp / (tp + fp + fn), 2 * tp / (2 * tp + fp + fn)


def iou(pred, target, threshold=0.5):
    """Intersection over union of pred >= threshold and target >= 0.5 (see `mask_counts`)."""
    return iou_f1(mask_counts(pred, target, threshold))[0]


def f1(pred, target, threshold=0.5):
    """F1 (the Dice coefficient of the binary masks) of pred >= threshold and target >= 0.5."""
    return iou_f1(mask_counts(pred, target, threshold))[1]
