"""Metrics of the three tasks (docs/design.md, "Metrics"): gesture accuracy, 3D pose,
segmentation."""

from .classification import (
    confusion_matrix,
    top1,
    video_accuracy,
    video_predictions,
    video_scores,
)
from .pose import (
    DEFAULT_THRESHOLDS,
    PROTOCOL_3D,
    REPORTED_THRESHOLDS,
    curve_auc,
    joint_errors,
    mpjpe,
    pck_at,
    pck_curve,
)
from .segmentation import f1, iou, iou_f1, mask_counts

__all__ = [
    "DEFAULT_THRESHOLDS", "PROTOCOL_3D", "REPORTED_THRESHOLDS", "confusion_matrix",
    "curve_auc", "f1", "iou", "iou_f1", "joint_errors", "mask_counts", "mpjpe", "pck_at",
    "pck_curve", "top1", "video_accuracy", "video_predictions", "video_scores",
]
