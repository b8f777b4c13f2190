"""The multi-scale relation module (collaborative paper, section 3.3, Fig. 3; docs/design.md,
"Collaborative pose and gesture").

A building block of the collaborative head, run on each stream of the multi-order module. The
hand is seen at three levels: level 1 the 21 joints, level 2 the palm (wrist and five MCPs) and
the five fingers (PIP, DIP, TIP), level 3 the whole hand (`handmt.hand.PART_GROUPS`). Structure
pooling averages a level's nodes into the next one; a relation matrix refines the nodes of a level;
node upsampling copies parents back to their children, and skip connections merge each level
with the one above on the way down, so the output has the input's shape. Level 3 is also pooled
over space into the hand feature a TCN classifies.

Choices the paper leaves open:
- The relation matrix is computed on node descriptors pooled over space (1x1 embeddings and a
  softmax over C-dimensional products, scaled by 1/sqrt(embed_channels) so it does not saturate)
  rather than on full N x CHW maps; it then mixes the full maps. A 1x1 conv commutes with the
  spatial mean, so only the product differs from the paper's, and it costs N^2 C instead of
  N^2 CHW per frame: this runs on CPU.
- Refinement and skip connections are residual, as in a non-local block: X' = X + W (R X) and
  level + W (upsampled parent), each W a 1x1 conv that starts at zero, so the module starts as
  the identity and learns how much each joint takes from the others and from its part and the
  hand. Averaging them instead (X + R X) / 2 blurs every joint into its part and the hand with
  no way back: on the real FPHA skeletons it cost 4 points (docs/collaborative.md).
- Level 3 has no relation: the softmax over a single node is identically 1.
"""

import functools
import math

import torch
from einops import einsum
from torch import nn

from ...hand import NUM_JOINTS, PART_GROUPS

HAND_GROUPS = (tuple(range(len(PART_GROUPS))),)  # level 3: one node, the mean of the six parts


def spatial_mean(x):
    """(..., h, w) -> (...): the mean over the last two dims, as a sum and one division of the
    small result (a mean's backward would divide the full-size gradient)."""
    return x.sum(dim=(-2, -1)) / (x.shape[-2] * x.shape[-1])


@functools.cache
def membership(groups, num_nodes):
    """(len(groups), num_nodes) 0/1 matrix whose row g marks the members of group g.

    Built outside inference mode even when first asked for inside it (`handmt predict`): the
    cached matrix must not be an inference tensor, which a later training step could not save
    for backward."""
    with torch.inference_mode(False):
        matrix = torch.zeros(len(groups), num_nodes)
        for g, group in enumerate(groups):
            matrix[g, list(group)] = 1.0
    return matrix


def mix_nodes(matrix, x):
    """A (M, N) or per-frame (B, T, M, N) matrix times the nodes, dim 2 of x (B, T, N, ...) ->
    (B, T, M, ...). One matmul: copying node subsets by indexing took an eighth of the
    collaborative head's training step."""
    b, t, n = x.shape[:3]
    mixed = torch.matmul(matrix.to(x), x.reshape(b, t, n, -1))
    return mixed.reshape(b, t, matrix.shape[-2], *x.shape[3:])


def structure_pool(x, groups):
    """(B, T, N, ...) -> (B, T, len(groups), ...): each new node is the mean of its member nodes
    (dim 2), e.g. the palm node of `PART_GROUPS` is the mean of the wrist and the five MCPs."""
    member = membership(tuple(map(tuple, groups)), x.shape[2])
    counts = member.sum(dim=1).to(x).reshape(-1, *[1] * (x.dim() - 3))
    return mix_nodes(member, x) / counts


def node_upsample(x, groups, num_children):
    """(B, T, len(groups), ...) -> (B, T, num_children, ...): every child node gets a copy of its
    group's node, undoing `structure_pool`'s grouping. The groups must split 0..num_children-1,
    each child in exactly one group."""
    members = sorted(child for group in groups for child in group)
    if members != list(range(num_children)):
        raise ValueError(f"groups must split the nodes 0..{num_children - 1}, each in exactly "
                         f"one group; got {groups!r}")
    return mix_nodes(membership(tuple(map(tuple, groups)), num_children).T, x)


class RelationBlock(nn.Module):
    """One level's relation: nodes (B, T, N, C, h, w) -> refined nodes of the same shape,
    X + W (R X) with R = softmax(theta(X) phi(X)^T / sqrt(E)) over the nodes, per frame, and W
    a 1x1 conv starting at zero (a non-local block: the level starts as the identity)."""

    def __init__(self, channels, embed_channels=None):
        super().__init__()
        self.embed_channels = embed_channels or max(channels // 2, 1)
        # 1x1 convs on pooled descriptors, i.e. linear maps of their C channels.
        self.theta = nn.Linear(channels, self.embed_channels)
        self.phi = nn.Linear(channels, self.embed_channels)
        self.out = zero_map(channels)

    def relation(self, x):
        """(B, T, N, N): R[i, j] is how much node i takes from node j; rows sum to 1."""
        nodes = spatial_mean(x)
        affinity = einsum(self.theta(nodes), self.phi(nodes), "b t i e, b t j e -> b t i j")
        return (affinity / math.sqrt(self.embed_channels)).softmax(dim=-1)

    def forward(self, x):
        return x + channel_map(self.out, mix_nodes(self.relation(x), x))


def zero_map(channels):
    """A 1x1 conv of `channels` (a Linear over dim 3 by `channel_map`) whose weights start at 0."""
    linear = nn.Linear(channels, channels)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


def channel_map(linear, x):
    """A Linear over the channels, dim 3 of (B, T, N, C, h, w): a 1x1 conv of every node. One
    einsum, the weight first (its contraction order measured 3x faster than x first); applying
    the Linear to a channels-last permutation copied the tensor twice, a quarter of the
    collaborative head's training step."""
    return torch.einsum("oc,btnchw->btnohw", linear.weight, x) + linear.bias[:, None, None]


class MultiScaleRelation(nn.Module):
    """Joint features (B, T, 21, C, h, w) -> (refined (B, T, 21, C, h, w), hand (B, T, C)).

    Up: level-1 relation on the joints, structure pooling to palm + fingers, level-2 relation,
    pooling to the hand (level 3). Down: the hand is copied to the six parts and added to them
    through a 1x1 conv, the parts to their joints likewise (Fig. 3's skip connections). `hand` is
    the level-3 node averaged over space, the TCN's input.
    """

    def __init__(self, channels, embed_channels=None):
        super().__init__()
        self.joint_relation = RelationBlock(channels, embed_channels)
        self.part_relation = RelationBlock(channels, embed_channels)
        self.hand_to_parts, self.parts_to_joints = zero_map(channels), zero_map(channels)

    def forward(self, x):
        if x.shape[2] != NUM_JOINTS:
            raise ValueError(f"the multi-scale relation takes {NUM_JOINTS} joints along dim 2, "
                             f"got shape {tuple(x.shape)}")
        joints = self.joint_relation(x)
        parts = self.part_relation(structure_pool(joints, PART_GROUPS))
        hand = structure_pool(parts, HAND_GROUPS)
        parts = parts + channel_map(self.hand_to_parts,
                                    node_upsample(hand, HAND_GROUPS, len(PART_GROUPS)))
        joints = joints + channel_map(self.parts_to_joints,
                                      node_upsample(parts, PART_GROUPS, NUM_JOINTS))
        return joints, spatial_mean(hand[:, :, 0])
