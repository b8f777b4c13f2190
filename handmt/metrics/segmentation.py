"""Hand segmentation metric: binary IoU of thresholded mask probabilities (DESIGN.md, "Metrics")."""

import torch


def iou(pred, target, threshold=0.5):
    """Intersection over union of pred >= threshold and target >= 0.5, pooled over the batch.

    pred: mask probabilities in [0, 1] (apply the sigmoid to logits first), any shape; target:
    {0, 1} masks of the same shape. Pixels of all images count together, so large hands weigh
    more than small ones. When neither mask has a foreground pixel the prediction is perfect and
    the IoU is 1.0.
    """
    pred = torch.as_tensor(pred).detach()
    target = torch.as_tensor(target, device=pred.device).detach()
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.numel() and (pred.min() < 0 or pred.max() > 1):
        raise ValueError(f"pred must hold probabilities in [0, 1] (sigmoid of the logits); got "
                         f"values in [{pred.min().item():g}, {pred.max().item():g}]")
    pred_fg, target_fg = pred >= threshold, target >= 0.5
    union = (pred_fg | target_fg).sum().item()
    if union == 0:
        return 1.0
    return (pred_fg & target_fg).sum().item() / union
