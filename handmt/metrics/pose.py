"""3D hand pose metrics: `joint_errors`, `pck_curve` (PCK over 0-50 mm, averaged over joints) and
its AUC (`curve_auc`), `pck_at`, `mpjpe`, and `PROTOCOL_3D`, the 3D protocol every report states
(docs/design.md, "Metrics")."""

import numpy as np
import torch

DEFAULT_THRESHOLDS = np.linspace(0, 50, 21)
REPORTED_THRESHOLDS = (20, 25, 30)
PROTOCOL_3D = ("3D joints = predicted 2D joints + predicted root-relative depth, wrist depth from "
               "the ground truth, back-projected with the camera intrinsics K")


def joint_errors(pred, gt, valid=None):
    """Per-joint Euclidean errors (frames, joints) of the labelled frames.

    pred, gt: (..., J, 3) in mm, any leading dims (frames, or batch x time). valid: optional bool
    mask over the leading dims; frames where it is False are left out.
    """
    pred = torch.as_tensor(pred).detach()
    gt = torch.as_tensor(gt, device=pred.device).detach()
    if pred.shape != gt.shape or pred.dim() < 2 or pred.shape[-1] != 3:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must both be "
                         "(..., joints, 3)")
    errors = torch.linalg.vector_norm(pred - gt, dim=-1)
    if valid is not None:
        valid = torch.as_tensor(valid, device=pred.device).detach()
        if valid.shape != errors.shape[:-1]:
            raise ValueError(f"valid {tuple(valid.shape)} must match the leading dims "
                             f"{tuple(errors.shape[:-1])} of pred/gt {tuple(pred.shape)}")
        errors = errors[valid.bool()]
    errors = errors.reshape(-1, errors.shape[-1])
    if len(errors) == 0:
        raise ValueError("no frame with a pose label: every frame is masked out by valid")
    return errors


def curve_auc(thresholds, pck):
    """Area under a PCK curve by the trapezoid rule, divided by the threshold range (in [0, 1])."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return float(np.trapezoid(pck, thresholds) / (thresholds[-1] - thresholds[0]))


def pck_curve(pred, gt, thresholds=DEFAULT_THRESHOLDS, valid=None):
    """3D PCK curve and its normalized AUC (docs/design.md, "Metrics").

    PCK(t) of a joint is the fraction of its errors (over all labelled frames) that are <= t mm;
    the curve averages it over the joints. Returns (pck, auc): pck a numpy array, one value per
    threshold, and auc a float.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or len(thresholds) < 2 or np.any(np.diff(thresholds) <= 0):
        raise ValueError(f"thresholds must be increasing, at least two of them; got {thresholds}")
    errors = joint_errors(pred, gt, valid)
    limits = torch.as_tensor(thresholds, dtype=errors.dtype, device=errors.device)
    per_joint = (errors[..., None] <= limits).double().mean(dim=0)  # (joints, thresholds)
    pck = per_joint.mean(dim=0).cpu().numpy()
    return pck, curve_auc(thresholds, pck)


def pck_at(pck, thresholds, t):
    """The value of a PCK curve at threshold t mm, which must be one of its thresholds."""
    matches = np.flatnonzero(np.isclose(np.asarray(thresholds, dtype=np.float64), t))
    if len(matches) == 0:
        raise ValueError(f"threshold {t} mm is not on the curve's grid {list(thresholds)}")
    return float(pck[matches[0]])


def mpjpe(pred, gt, valid=None):
    """Mean per-joint position error in mm over all joints of the labelled frames."""
    return float(joint_errors(pred, gt, valid).mean())
