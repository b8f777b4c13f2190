"""Metrics of the three tasks (DESIGN.md, "Metrics"): gesture accuracy, 3D pose, segmentation."""

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
    backproject,
    curve_auc,
    joint_errors,
    mpjpe,
    pck_at,
    pck_curve,
)
from .segmentation import iou

__all__ = [
    "DEFAULT_THRESHOLDS", "PROTOCOL_3D", "REPORTED_THRESHOLDS", "backproject", "confusion_matrix",
    "curve_auc", "iou", "joint_errors", "mpjpe", "pck_at", "pck_curve", "top1", "video_accuracy",
    "video_predictions", "video_scores",
]
