"""Multi-scale relation module (collaborative paper, section 3.3, Fig. 3; docs/design.md)."""

import math

import pytest
import torch
from torch import nn

from handmt import hand
from handmt.models.collab.relation import (
    MultiScaleRelation,
    RelationBlock,
    channel_map,
    membership,
    node_upsample,
    structure_pool,
)


def test_part_groups_split_the_joints():
    members = sorted(j for group in hand.PART_GROUPS for j in group)
    assert members == list(range(hand.NUM_JOINTS))
    assert [hand.JOINT_NAMES[j] for j in hand.PALM] == [
        "Wrist", "TMCP", "IMCP", "MMCP", "RMCP", "PMCP"]
    assert [hand.JOINT_NAMES[j] for j in hand.FINGER_GROUPS[1]] == ["IPIP", "IDIP", "ITIP"]


def test_structure_pool_averages_members():
    x = torch.arange(21.0).reshape(1, 1, 21, 1).expand(2, 3, 21, 4)  # node value = joint index
    pooled = structure_pool(x, hand.PART_GROUPS)
    assert pooled.shape == (2, 3, 6, 4)
    # palm (0..5), thumb (6, 7, 8), index (9..11), middle, ring, pinky
    assert pooled[0, 0, :, 0].tolist() == [2.5, 7, 10, 13, 16, 19]
    assert structure_pool(pooled, [range(6)])[0, 0, :, 0].tolist() == [67.5 / 6]


def test_pooling_trains_after_a_first_call_in_inference_mode():
    # `handmt predict` runs under inference_mode; a training step in the same process must not
    # meet a cached inference tensor ("Inference tensors cannot be saved for backward")
    membership.cache_clear()
    x = torch.rand(1, 1, 21, 2, requires_grad=True)
    with torch.inference_mode():
        structure_pool(x.detach(), hand.PART_GROUPS)
    structure_pool(x, hand.PART_GROUPS).sum().backward()
    assert x.grad.abs().sum() > 0


def test_node_upsample_inverts_pooling_of_group_constant_features():
    parts = torch.randn(2, 3, 6, 4, 2, 2)
    x = node_upsample(parts, hand.PART_GROUPS, 21)  # constant within each group
    assert torch.equal(x[:, :, 0], parts[:, :, 0]) and torch.equal(x[:, :, 20], parts[:, :, 5])
    assert torch.equal(x[:, :, 7], parts[:, :, 1])  # TDIP belongs to the thumb
    assert torch.allclose(node_upsample(structure_pool(x, hand.PART_GROUPS), hand.PART_GROUPS, 21),
                          x, atol=1e-6)


@pytest.mark.parametrize("groups", [((0, 1), (1, 2)), ((0,), (2,)), ((0, 1, 2, 3),)])
def test_node_upsample_rejects_groups_that_do_not_split_the_nodes(groups):
    with pytest.raises(ValueError, match="exactly one group"):
        node_upsample(torch.zeros(1, 1, len(groups)), groups, 3)


def unit_block():
    """A RelationBlock on 1 channel whose embeddings are the identity: R = softmax(x_i x_j)."""
    block = RelationBlock(1, 1)
    for embedding in (block.theta, block.phi):
        nn.init.ones_(embedding.weight)
        nn.init.zeros_(embedding.bias)
    return block


def test_relation_and_refinement_by_hand():
    # Two nodes whose 1 x 1 x 2 maps average to 1 and 2: affinities [[1, 2], [2, 4]].
    x = torch.tensor([[0.0, 2.0], [1.0, 3.0]]).reshape(1, 1, 2, 1, 1, 2)
    block = unit_block()
    e = math.e
    expected = torch.tensor([[1 / (1 + e), e / (1 + e)], [1 / (1 + e**2), e**2 / (1 + e**2)]])
    assert torch.allclose(block.relation(x)[0, 0], expected)
    # X + W (R X) on the full maps; W starts at zero (the identity block), here W = I
    assert torch.equal(block(x), x)
    nn.init.eye_(block.out.weight)
    mixed = expected @ x[0, 0, :, 0, 0]
    assert torch.allclose(block(x)[0, 0, :, 0, 0], x[0, 0, :, 0, 0] + mixed)


def test_channel_map_is_a_1x1_conv_of_every_node():
    torch.manual_seed(0)
    linear = nn.Linear(3, 3)  # asymmetric weights and a bias: a transposed map would differ
    x = torch.randn(2, 2, 4, 3, 5, 6)  # (B, T, N, C, h, w)
    conv = nn.functional.conv2d(x.flatten(0, 2), linear.weight[:, :, None, None], linear.bias)
    torch.testing.assert_close(channel_map(linear, x), conv.unflatten(0, x.shape[:3]))


def test_relation_rows_sum_to_one():
    torch.manual_seed(0)
    block, x = RelationBlock(8), torch.randn(2, 3, 21, 8, 4, 4)
    assert block(x).shape == x.shape
    relation = block.relation(x)
    assert relation.shape == (2, 3, 21, 21) and (relation > 0).all()
    assert torch.allclose(relation.sum(dim=-1), torch.ones(2, 3, 21))


def test_module_starts_as_the_identity():
    # the output maps start at zero: the joints pass unchanged; the hand is the parts' mean
    torch.manual_seed(0)
    x = torch.randn(2, 3, 21, 4, 5, 5)
    refined, hand_feature = MultiScaleRelation(4)(x)
    assert torch.equal(refined, x)
    parts = torch.stack([x[:, :, list(group)].mean(dim=2) for group in hand.PART_GROUPS], dim=2)
    assert torch.allclose(hand_feature, parts.mean(dim=(2, -2, -1)), atol=1e-6)


def test_shapes_gradients_and_mixing():
    torch.manual_seed(0)
    module = MultiScaleRelation(4, embed_channels=3)
    for name, parameter in module.named_parameters():  # trained output maps: no longer zero
        if ".theta." not in f".{name}" and ".phi." not in f".{name}":
            nn.init.normal_(parameter)
    x = torch.randn(2, 3, 21, 4, 5, 5, requires_grad=True)
    refined, hand_feature = module(x)
    assert refined.shape == x.shape and hand_feature.shape == (2, 3, 4)
    ((refined * torch.randn_like(refined)).sum()
     + (hand_feature * torch.randn_like(hand_feature)).sum()).backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # The pinky tip reaches the wrist (through relations and the levels above), not other frames.
    changed = x.detach().clone()
    changed[0, 1, 20] += 1
    after, _ = module(changed)
    assert not torch.allclose(after[0, 1, 0], refined[0, 1, 0])
    assert torch.allclose(after[0, 0], refined[0, 0]) and torch.allclose(after[1], refined[1])


def test_permuting_clips_permutes_outputs():
    torch.manual_seed(0)
    module = MultiScaleRelation(4).eval()
    x = torch.randn(4, 2, 21, 4, 3, 3)
    perm = torch.tensor([2, 0, 3, 1])
    refined, hand_feature = module(x)
    refined_perm, hand_perm = module(x[perm])
    assert torch.allclose(refined_perm, refined[perm], atol=1e-6)
    assert torch.allclose(hand_perm, hand_feature[perm], atol=1e-6)


def test_wrong_joint_count_is_rejected():
    with pytest.raises(ValueError, match="21 joints"):
        MultiScaleRelation(4)(torch.zeros(1, 1, 20, 4, 2, 2))
