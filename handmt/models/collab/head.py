"""The collaborative pose and gesture network (Yang et al., ECCV 2020, section 3, Fig. 1; docs/
design.md, "Collaborative pose and gesture").

- `CollaborativeHead` ("collab"): joint-aware features, then `iterations` rounds of the
  `PoseSubNetwork` and the `GestureSubNetwork` refining each other (stages 1-5); loss eq. 5.
- `CollaborativeGestureHead` ("collab_gesture"): the gesture sub-network alone on per-joint
  features from elsewhere, e.g. the skeleton backbone's embedding of 3D joints.

Heatmap and depth codec: handmt/geometry.py; multi-order streams (3.2): multi_order.py;
multi-scale relation (3.3): relation.py; the TCN: tcn.py.
"""

from typing import Literal

import torch
from einops import rearrange, reduce
from torch import nn

from ...geometry import (
    backproject,
    decode_depth,
    decode_heatmaps,
    encode_depth,
    encode_heatmaps,
)
from ...hand import NUM_JOINTS, PART_GROUPS, WRIST
from ...losses import masked_cross_entropy
from ...losses.pose import depth_loss, heatmap_loss
from ..heads.base import HEADS, feature_spec
from .multi_order import FD_CHOICES, MultiOrder
from .relation import HAND_GROUPS, MultiScaleRelation, spatial_mean, structure_pool
from .tcn import TCN

TCN_INPUTS = ("joints", "hand")


def conv_bn_relu(in_channels, out_channels, kernel_size=3, groups=1, stride=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class PoseSubNetwork(nn.Module):
    """X (BT, N*Cj, h, w) -> heatmaps H (BT, N, h, w), relative depths D (BT, N) and the
    pose-optimized features P (BT, N*Cj, h, w) (section 3.1, "Pose Sub-Network")."""

    def __init__(self, joint_channels, depth_channels=128):
        super().__init__()
        n, channels = NUM_JOINTS, NUM_JOINTS * joint_channels
        self.heatmaps = nn.Sequential(conv_bn_relu(channels, channels, groups=n),
                                      nn.Conv2d(channels, n, 1, groups=n))
        self.heatmap_to_features = nn.Conv2d(n, channels, 1, groups=n)
        # The deep regression module: convolution, pooling and a fully connected layer.
        self.depth = nn.Sequential(conv_bn_relu(channels, depth_channels, stride=2),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                   nn.Linear(depth_channels, n))
        self.to_features = nn.Conv2d(2 * n, channels, 1)

    def forward(self, x):
        heatmaps = self.heatmaps(x)
        depth = self.depth(x + self.heatmap_to_features(heatmaps))
        broadcast = depth[:, :, None, None].expand_as(heatmaps)
        return heatmaps, depth, self.to_features(torch.cat([heatmaps, broadcast], dim=1))


class GestureSubNetwork(nn.Module):
    """Y (B, T, N*Cj, h, w) -> gesture-optimized features G of Y's shape and class logits
    (section 3.1, "Gesture Sub-Network"; 3.2 multi-order streams; 3.3 multi-scale relation).
    With `skip_channels`, forward also takes per-frame features (B, T, skip_channels) that every
    TCN reads beside its stream (not in the paper: docs/collaborative.md, "Real skeletons").
    `shared_tcn`: one TCN classifies every stream (the paper leaves open whether the streams'
    TCNs share weights), else one TCN per stream."""

    def __init__(self, joint_channels, num_classes, orders, slow_fast, multi_scale, tcn_hidden,
                 dropout, fd, tcn_input, tcn_layers=2, skip_channels=0, shared_tcn=False):
        super().__init__()
        if tcn_input not in TCN_INPUTS:
            raise ValueError(f"tcn_input must be one of {', '.join(TCN_INPUTS)}, got "
                             f"{tcn_input!r}")
        channels = NUM_JOINTS * joint_channels
        self.conv = conv_bn_relu(channels, channels, groups=NUM_JOINTS)
        self.multi_order = MultiOrder(orders, slow_fast, fd)
        streams = self.multi_order.num_streams
        self.relations = nn.ModuleList(MultiScaleRelation(joint_channels)
                                       for _ in range(streams)) if multi_scale else None
        self.tcn_input = tcn_input
        tcn_channels = (channels if tcn_input == "joints" else joint_channels) + skip_channels
        tcns = [TCN(tcn_channels, num_classes, tcn_hidden, tcn_layers, dropout=dropout)
                for _ in range(1 if shared_tcn else streams)]
        self.tcns = nn.ModuleList(tcns * streams if shared_tcn else tcns)

    def forward(self, y, skip=None):
        b = y.shape[0]
        z = rearrange(self.conv(rearrange(y, "b t c h w -> (b t) c h w")),
                      "(b t) (n c) h w -> b t n c h w", b=b, n=NUM_JOINTS)
        streams = self.multi_order(z)
        if self.relations is not None:
            streams = [relation(stream)[0] for relation, stream in zip(self.relations, streams,
                                                                        strict=True)]
        logits = torch.stack([tcn(self.tcn_features(stream, skip))
                              for tcn, stream in zip(self.tcns, streams, strict=True)]).mean(0)
        g = rearrange(sum(streams[1:], streams[0]) / len(streams), "b t n c h w -> b t (n c) h w")
        return g, logits

    def tcn_features(self, stream, skip=None):
        """A stream's refined joints (B, T, N, C, h, w) -> the TCN's input (B, T, channels): all
        joints side by side, or the level-3 hand node (the mean of the parts' means, as the
        relation module pools it), both averaged over space; then `skip` (B, T, C'), if any."""
        nodes = spatial_mean(stream)
        if self.tcn_input == "joints":
            features = rearrange(nodes, "b t n c -> b t (n c)")
        else:
            features = structure_pool(structure_pool(nodes, PART_GROUPS), HAND_GROUPS)[:, :, 0]
        return features if skip is None else torch.cat([features, skip], dim=-1)


@HEADS.register("collab")
class CollaborativeHead(nn.Module):
    """Outputs: `logits` (B, classes), `heatmaps` (B, T, 21, h, w), `rel_depth` (B, T, 21) in
    units of `depth_scale` mm (the last iteration's), and `collab_iterations`, every iteration's
    (heatmaps, rel_depth, logits) for the loss. Predicts logits, joints2d, rel_depth (mm) and
    joints3d."""

    auxiliary = False

    @staticmethod
    def requires(args):  # the data it reads (heads/base.py)
        return {"pose"}  # 2D and 3D joint labels

    def __init__(self, feature_info, num_classes: int, feature: str = "res3",
                 joint_channels: int = 16, heatmap_stride: int = 4, iterations: int = 2,
                 orders: list[int] = (0, 1, 2),
                 slow_fast: Literal["slow", "fast", "both"] = "both", multi_scale: bool = True,
                 fd: Literal[FD_CHOICES] = "frame",
                 tcn_input: Literal[TCN_INPUTS] = "joints",
                 depth_scale: float = 100.0, sigma: float = 1.5, tcn_hidden: int = 128,
                 dropout: float = 0.5, loss_2d: float = 1.0, loss_3d: float = 0.001,
                 loss_cls: float = 0.001):
        super().__init__()
        spec = feature_spec(feature_info, feature)
        if spec.layout != "b t c h w" or spec.stride % heatmap_stride:
            raise ValueError(f"collab: feature {feature!r} (stride {spec.stride}, layout "
                             f"{spec.layout!r}) must be a per-frame map whose stride is a multiple "
                             f"of heatmap_stride={heatmap_stride}")
        if iterations < 1:
            raise ValueError(f"collab: iterations={iterations}, must be at least 1")
        self.feature, self.stride = feature, heatmap_stride
        self.depth_scale, self.sigma = depth_scale, sigma
        self.weights = {"pose_2d": loss_2d, "pose_3d": loss_3d, "cls": loss_cls}
        channels = NUM_JOINTS * joint_channels
        self.joint_features = nn.Sequential(
            nn.Upsample(scale_factor=spec.stride // heatmap_stride, mode="bilinear"),
            conv_bn_relu(spec.channels, channels, kernel_size=1))
        self.pose = nn.ModuleList(PoseSubNetwork(joint_channels) for _ in range(iterations))
        self.gesture = nn.ModuleList(
            GestureSubNetwork(joint_channels, num_classes, orders, slow_fast, multi_scale,
                              tcn_hidden, dropout, fd, tcn_input) for _ in range(iterations))
        self.pose_to_gesture = nn.ModuleList(nn.Conv2d(channels, channels, 1, groups=NUM_JOINTS)
                                             for _ in range(iterations))
        self.gesture_to_pose = nn.ModuleList(nn.Conv2d(channels, channels, 1, groups=NUM_JOINTS)
                                             for _ in range(iterations - 1))

    def forward(self, features, batch):
        x = features[self.feature]
        b = x.shape[0]
        joint = self.joint_features(rearrange(x, "b t c h w -> (b t) c h w"))
        pose_input, results = joint, []
        for k, (pose, gesture) in enumerate(zip(self.pose, self.gesture, strict=True)):
            heatmaps, depth, p = pose(pose_input)
            g, logits = gesture(rearrange(joint + self.pose_to_gesture[k](p),
                                          "(b t) c h w -> b t c h w", b=b))
            results.append((rearrange(heatmaps, "(b t) n h w -> b t n h w", b=b),
                            rearrange(depth, "(b t) n -> b t n", b=b), logits))
            if k + 1 < len(self.pose):
                g = rearrange(g, "b t c h w -> (b t) c h w")
                pose_input = joint + self.gesture_to_pose[k](g)
        heatmaps, depth, logits = results[-1]
        return {"logits": logits, "heatmaps": heatmaps, "rel_depth": depth,
                "collab_iterations": results}

    def predict(self, outputs, batch):
        """`logits`; `joints2d` (B, T, N, 2) in input pixels, the heatmaps' kornia soft-argmax;
        `rel_depth` (B, T, N), mm from the wrist's z; when the batch holds `joints3d` and `K`,
        `joints3d` (B, T, N, 3) in colour-camera mm, the stated protocol (docs/design.md):
        predicted 2D and relative depth, the wrist's depth from the ground truth, back-projected
        with the input's K."""
        joints2d = decode_heatmaps(outputs["heatmaps"], self.stride)
        predicted = {"logits": outputs["logits"], "joints2d": joints2d,
                     "rel_depth": outputs["rel_depth"] * self.depth_scale}
        if "joints3d" in batch and "K" in batch:
            root = batch["joints3d"][..., WRIST, 2]
            predicted["joints3d"] = backproject(
                joints2d, decode_depth(outputs["rel_depth"], root, self.depth_scale), batch["K"])
        return predicted

    def targets(self, batch, height, width):
        """Heatmap targets (B, T, N, h, w) and relative depth targets (B, T, N) of a batch."""
        return (encode_heatmaps(batch["joints2d"], self.stride, height, width, self.sigma),
                encode_depth(batch["joints3d"], self.depth_scale))

    def loss(self, outputs, batch):
        """Eq. 5 summed over the iterations."""
        heatmaps = outputs["heatmaps"]
        target_heatmaps, target_depth = self.targets(batch, *heatmaps.shape[-2:])
        valid = batch["pose_valid"]
        losses = dict.fromkeys(self.weights, 0.0)
        for heatmaps, depth, logits in outputs["collab_iterations"]:
            losses["pose_2d"] = losses["pose_2d"] + heatmap_loss(heatmaps, target_heatmaps, valid)
            losses["pose_3d"] = losses["pose_3d"] + depth_loss(depth, target_depth, valid)
            losses["cls"] = losses["cls"] + masked_cross_entropy(logits, batch["label"])
        return {name: self.weights[name] * value for name, value in losses.items()}


@HEADS.register("collab_gesture")
class CollaborativeGestureHead(nn.Module):
    """The gesture sub-network alone (section 3.1; multi-order 3.2, multi-scale relation 3.3) on
    per-joint features `feature` (B, T, 21 * Cj, h, w), e.g. the skeleton backbone's "joints".
    `skip`: a per-frame feature every TCN reads beside its stream, e.g. the skeleton backbone's
    normalised "inputs" (a documented deviation, docs/collaborative.md); `shared_tcn`: one TCN
    for all streams (GestureSubNetwork). Outputs `logits`
    (B, classes); the loss is the masked cross-entropy (eq. 5's L_c)."""

    auxiliary = False

    @staticmethod
    def requires(args):  # the data it reads (heads/base.py)
        return set()

    def __init__(self, feature_info, num_classes: int, feature: str = "joints",
                 orders: list[int] = (0, 1, 2),
                 slow_fast: Literal["slow", "fast", "both"] = "both", multi_scale: bool = True,
                 fd: Literal[FD_CHOICES] = "frame",
                 tcn_input: Literal[TCN_INPUTS] = "joints", tcn_hidden: int = 128,
                 tcn_layers: int = 2, dropout: float = 0.5, skip: str | None = None,
                 shared_tcn: bool = False):
        super().__init__()
        spec = feature_spec(feature_info, feature)
        if spec.layout != "b t c h w" or spec.channels % NUM_JOINTS:
            raise ValueError(f"collab_gesture: feature {feature!r} ({spec.channels} channels, "
                             f"layout {spec.layout!r}) must be per-frame maps of {NUM_JOINTS} "
                             "joint groups")
        skip_spec = feature_spec(feature_info, skip) if skip else None
        if skip_spec and skip_spec.layout != "b t c h w":
            raise ValueError(f"collab_gesture: skip feature {skip!r} has layout "
                             f"{skip_spec.layout!r}; it needs per-frame maps ('b t c h w')")
        self.feature, self.skip = feature, skip
        self.gesture = GestureSubNetwork(spec.channels // NUM_JOINTS, num_classes, orders,
                                         slow_fast, multi_scale, tcn_hidden, dropout, fd,
                                         tcn_input, tcn_layers,
                                         skip_spec.channels if skip_spec else 0, shared_tcn)

    def forward(self, features, batch):
        skip = reduce(features[self.skip], "b t c h w -> b t c", "mean") if self.skip else None
        return {"logits": self.gesture(features[self.feature], skip)[1]}

    def loss(self, outputs, batch):
        return {"cls": masked_cross_entropy(outputs["logits"], batch["label"])}

    def predict(self, outputs, batch):
        return {"logits": outputs["logits"]}
