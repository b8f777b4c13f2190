"""Semi-supervised training on the unlabelled videos (`train.semi`).

Gestures, FixMatch (Sohn et al., NeurIPS 2020): the model's prediction on a weakly augmented clip
(the training view) becomes the pseudo-label of a strongly augmented view of the same video when
its confidence reaches `threshold`; the cross-entropy of the strong view against it is added with
`weight` from `start_epoch` on. Every epoch goes over every training video once, labelled or not:
the unlabelled ones (label -1) in each batch give this term, normalised by their count.

Pose (`pose_weight` > 0; docs/design.md, "Pose consistency"): on each clip without a
pose label, the model's 2D joints and relative depths must not change when the clip is
re-cropped and mirrored, once the geometry is undone. The re-cropped view is the same frames
warped in the batch (an affine map per clip, kornia), so the two predictions describe the same
hand; the prediction on the clip itself is the target (no gradient)."""

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import convert_affinematrix_to_homography
from kornia.geometry.linalg import transform_points
from kornia.geometry.transform import invert_affine_transform, warp_affine
from torch.utils.data import Dataset

from ..data.factory import training_transform
from ..errors import ConfigError


@dataclass
class SemiOptions:
    """The `train.semi` section."""
    weight: float = 1.0  # lambda_u of FixMatch; 0: no FixMatch term
    threshold: float = 0.95  # confidence a pseudo-label needs
    start_epoch: int = 0  # epochs of supervised training first
    augment: dict = field(default_factory=dict)  # the strong view: a data.augment mapping
    pose_weight: float = 0.0  # the pose consistency term; 0: none
    pose_scales: list[float] = (0.75, 1.0)  # the re-crop's side, a fraction of the input's
    # mirror half of the re-cropped views left-right (off: on FPHA's right hands, measured worse:
    # a mirrored right hand is a left hand, which training never shows)
    pose_flip: bool = False
    pose_depth_mm: float = 300.0  # a relative-depth difference that weighs as one input side


class PairedViews(Dataset):
    """Items of `dataset` (the weak, training view) with `strong`: the same video drawn again
    through `dataset` with the strong transform."""

    def __init__(self, dataset, strong_transform):
        self.dataset = dataset
        self.strong = copy.copy(dataset)
        self.strong.transform = strong_transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return {**self.dataset[index], "strong": self.strong[index]}

    def __getattr__(self, name):  # labels, num_classes, videos ... of the wrapped dataset
        if name in ("dataset", "strong"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def paired_views(dataset, data, options):
    """`dataset` with strong views for `train.semi` (a SemiOptions)."""
    return PairedViews(dataset, training_transform(data, options.augment))


def semi_losses(model, batch, options):
    """The terms that `options` asks for: `semi` (FixMatch) and `pose_consistency`."""
    losses = {}
    if options.weight > 0:
        losses["semi"] = fixmatch_loss(model, batch, options)
    if options.pose_weight > 0:
        losses["pose_consistency"] = pose_consistency_loss(model, batch, options)
    return losses


def fixmatch_loss(model, batch, options):
    """weight * mean over the unlabelled clips of the batch of 1[max p_weak >= threshold] *
    CE(strong logits, argmax p_weak) (FixMatch eq. 4); zero without unlabelled clips. Both views
    run through `model` as it trains (FixMatch: train mode, no grad for the weak one)."""
    unlabelled = batch["label"] < 0
    if not unlabelled.any():
        return batch["label"].new_zeros((), dtype=torch.float32)
    weak = {k: v[unlabelled] for k, v in batch.items() if k != "strong"}
    strong = {k: v[unlabelled] for k, v in batch["strong"].items()}
    # The weak view runs a second time (the training forward saw it): raw outputs are the
    # model's own, only `predict` turns them into logits (docs/design.md, Model contract).
    with torch.no_grad():
        confidence, pseudo = model.predict(weak).logits.float().softmax(-1).max(-1)
    logits = model.predict(strong).logits.float()
    kept = (confidence >= options.threshold).float()
    return options.weight * (F.cross_entropy(logits, pseudo, reduction="none") * kept).mean()


def recrop_affine(count, size, scales, flip):
    """(count, 2, 3) affine maps from input pixels to the pixels of a random re-crop: a square of
    side s * size, s uniform in `scales`, anywhere inside the input, resized to the input and,
    with `flip`, mirrored left-right with probability 1/2. Pixel centres are at integers (the
    data's joints2d, and kornia's align_corners=True), so the input spans [-0.5, size - 0.5]."""
    scale = torch.empty(count).uniform_(*scales)
    corner = -0.5 + torch.rand(count, 2) * size * (1 - scale)[:, None]  # the crop's (x, y)
    affine = torch.zeros(count, 2, 3)
    affine[:, 0, 0] = affine[:, 1, 1] = 1 / scale
    affine[:, :, 2] = -corner / scale[:, None] - 0.5
    if flip:  # x -> size - 1 - x
        mirrored = torch.rand(count) < 0.5
        affine[mirrored, 0] = -affine[mirrored, 0]
        affine[mirrored, 0, 2] += size - 1
    return affine


def warp_clips(clips, affine):
    """Clips (n, T, C, H, W) warped by one affine map (n, 2, 3) each; zeros outside."""
    frames = clips.shape[1]
    warped = warp_affine(clips.flatten(0, 1), affine.repeat_interleave(frames, 0).to(clips),
                         clips.shape[-2:], align_corners=True)
    return warped.unflatten(0, clips.shape[:2])


def map_points(affine, points):
    """Points (n, ..., 2) through affine maps (n, 2, 3) (kornia's transform_points)."""
    homography = convert_affinematrix_to_homography(affine.to(points))
    return transform_points(homography, points.flatten(1, -2)).reshape(points.shape)


def pose_consistency_loss(model, batch, options):
    """pose_weight * mean over the clips of the batch without a pose label, their frames and
    joints of ||x' - x||^2 / size^2 + ((z' - z) / pose_depth_mm)^2: x, z the model's 2D joints
    and relative depths on the clip (no grad), x', z' on a re-cropped, possibly mirrored copy
    (`recrop_affine`), x' mapped back to the clip's pixels. A mirrored right hand is a left hand
    whose joints keep their names, and relative depth does not change with an in-plane crop. Zero
    without unlabelled clips."""
    unlabelled = ~batch["pose_valid"].any(dim=1)
    if not unlabelled.any():
        return batch["pose_valid"].new_zeros((), dtype=torch.float32)
    clip = {k: v[unlabelled] for k, v in batch.items() if k != "strong"}
    count, size = int(unlabelled.sum()), clip[model.modalities[0]].shape[-1]
    affine = recrop_affine(count, size, options.pose_scales, options.pose_flip).to(
        clip[model.modalities[0]].device)
    view = {**clip, **{m: warp_clips(clip[m], affine) for m in model.modalities}}
    with torch.no_grad():
        target = model.predict(clip)
    if target.joints2d is None or target.rel_depth is None:
        raise ConfigError("train.semi.pose_weight", "the model predicts no 2D joints and relative "
                          "depths to keep consistent (a pose head, e.g. collab, does)")
    predicted = model.predict(view)
    back = map_points(invert_affine_transform(affine), predicted.joints2d.float())
    xy = (back - target.joints2d.float()).square().sum(-1) / size ** 2
    z = ((predicted.rel_depth.float() - target.rel_depth.float()) / options.pose_depth_mm).square()
    return options.pose_weight * (xy + z).mean()
