"""3D hand pose metrics: PCK curve and its AUC, MPJPE, and the back-projection of the 3D protocol.

DESIGN.md, "Metrics": per-joint Euclidean errors pooled over frames; PCK(t) per joint, averaged
over the 21 joints; curve on linspace(0, 50, 21) mm; AUC by trapezoid normalized by the threshold
range; reports give PCK@20, @25, @30. DESIGN.md, "Collaborative pose and gesture" -> 3D evaluation:
predicted 2D joints and predicted root-relative depths, the root (wrist) depth taken from the
ground truth, back-projected with K. Every report states that protocol (`PROTOCOL_3D`).
"""

import numpy as np
import torch
from kornia.geometry.camera import unproject_points

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
    """3D PCK curve and its normalized AUC (DESIGN.md, "Metrics").

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


def backproject(joints2d, rel_depth, root_depth, K):
    """3D joints (..., J, 3) in mm from 2D joints and depths, the 3D protocol of DESIGN.md.

    z = root_depth + rel_depth, X = (u - cx) z / fx, Y = (v - cy) z / fy.
    joints2d: (..., J, 2) pixels; rel_depth: (..., J) mm relative to the wrist (already
    multiplied by depth_scale); root_depth: (...) the ground-truth wrist z in mm; K: (3, 3) or
    (..., 3, 3) whose leading dims are a prefix of those of joints2d (a clip's K (B, 3, 3) serves
    joints (B, T, J, 2)).
    """
    joints2d = torch.as_tensor(joints2d)
    K = torch.as_tensor(K, device=joints2d.device)
    leading = joints2d.shape[:-2]
    if K.shape[-2:] != (3, 3) or K.shape[:-2] != leading[:K.dim() - 2]:
        raise ValueError(f"K {tuple(K.shape)} must be (..., 3, 3) with leading dims a prefix of "
                         f"joints2d's {tuple(leading)}")
    # Give K one axis per leading dim of joints2d; kornia broadcasts it over the joints.
    K = K.reshape(K.shape[:-2] + (1,) * (len(leading) - (K.dim() - 2)) + (3, 3))
    rel_depth = torch.as_tensor(rel_depth, device=joints2d.device)
    root_depth = torch.as_tensor(root_depth, device=joints2d.device)
    if rel_depth.shape != joints2d.shape[:-1] or root_depth.shape != leading:
        raise ValueError(f"rel_depth {tuple(rel_depth.shape)} and root_depth "
                         f"{tuple(root_depth.shape)} must be {tuple(joints2d.shape[:-1])} and "
                         f"{tuple(leading)} for joints2d {tuple(joints2d.shape)}")
    depth = root_depth[..., None] + rel_depth
    return unproject_points(joints2d, depth[..., None], K)
