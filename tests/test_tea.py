"""TEA (layers/tea.py): motion excitation, multiple temporal aggregation, the Res2Net backbone."""

import copy

import pytest
import timm
import torch

from handmt import load_config
from handmt.models import build
from handmt.models.layers import MotionExcitation, TEABottleneck, set_num_segments, shift_frames
from handmt.models.layers.tea import temporal_conv


def count(model):
    return sum(p.numel() for p in model.parameters())


def tea_recognizer(classes=5):
    return build({"model": {"backbone": {"name": "resnet_tsn", "arch": "res2net50_26w_4s",
                                         "temporal": "tea"},
                            "heads": {"gesture": {"name": "clip_classifier",
                                                  "num_classes": classes, "dropout": 0.0}}}})


def test_tea_has_the_published_parameter_count():
    # Res2Net-50 26w x 4s + ME + MTA's temporal convs, 83 classes: 24,269,821 (the MSD paper's
    # Table I: 24.3M). Per block (width w, C = 4w, r = C // 16): ME 2Cr + 2r + 9r + 2C, MTA 4 * 3w.
    assert count(build(load_config("configs/egogesture_tea.yaml"))) == 24_269_821
    widths = [26] * 3 + [52] * 4 + [104] * 6 + [208] * 3
    added = sum(2 * (4 * w) * (4 * w // 16) + 11 * (4 * w // 16) + 2 * (4 * w) + 12 * w
                for w in widths)
    assert added == 449_634
    res2net = timm.create_model("res2net50_26w_4s", features_only=True)
    assert count(tea_recognizer(83).backbone) - count(res2net) == added


def test_tea_needs_a_res2net():
    with pytest.raises(ValueError, match="not a timm Res2Net.*res2net50_26w_4s"):
        build({"model": {"backbone": {"name": "resnet_tsn", "arch": "resnet50",
                                      "temporal": "tea"},
                         "heads": {"gesture": {"name": "clip_classifier", "num_classes": 5}}}})


@pytest.mark.parametrize("train", [True, False])
def test_motion_excitation_leaves_still_clips_and_last_frames_unchanged(train):
    torch.manual_seed(0)
    me = MotionExcitation(32).train(train)
    set_num_segments(me, 3)
    still = torch.randn(2, 1, 32, 4, 4).expand(2, 3, 32, 4, 4).reshape(6, 32, 4, 4)
    moving = torch.randn(6, 32, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(me(still), still)  # motion is K * F(t+1) - F(t), K learned
        me.transform.weight.zero_()[:, :, 1, 1] = 1  # K = identity: a still clip has no motion
        # zero motion -> BN(0) = 0 -> sigmoid(0) - 0.5 = 0: X + X * 0
        assert torch.equal(me(still), still)
        out = me(moving)
    assert not torch.allclose(out, moving)
    if not train:  # the last frame has no next frame: zero motion, and BN's initial statistics
        last = slice(2, None, 3)
        torch.testing.assert_close(out[last], moving[last])


def test_temporal_convs_start_as_identity_and_as_a_half_and_half_shift():
    clips = torch.randn(2, 3, 6, 2, 2)
    frames = clips.flatten(0, 1)
    identity, shift = temporal_conv(6, shift=False), temporal_conv(6, shift=True)
    set_num_segments(identity, 3)
    set_num_segments(shift, 3)
    with torch.no_grad():
        assert torch.equal(identity(frames), frames)
        assert torch.equal(shift(frames), shift_frames(clips, fold_div=2).flatten(0, 1))


@pytest.mark.parametrize("stage, index", [("layer1", 1), ("layer2", 0)])
def test_tea_block_with_neutral_temporal_layers_is_the_res2net_block(stage, index):
    # With ME's transform K the identity, a still clip has no motion and ME is the identity; with
    # the last fragment's shift set to the identity too, TEA's block must compute Res2Net's (a
    # stage's first block: independent fragments + pool).
    torch.manual_seed(0)
    block = timm.create_model("res2net50_26w_4s", features_only=True)[stage][index].eval()
    tea = TEABottleneck(copy.deepcopy(block)).eval()
    with torch.no_grad():
        tea.me.transform.weight.zero_()[:, :, 1, 1] = 1
        tea.temporal[-1].conv.weight.copy_(temporal_conv(block.width, shift=False).conv.weight)
    set_num_segments(tea, 3)
    channels = block.conv1.in_channels
    still = torch.randn(2, 1, channels, 8, 8).expand(2, 3, channels, 8, 8).reshape(6, channels,
                                                                                     8, 8)
    with torch.no_grad():
        torch.testing.assert_close(tea(still), block(still))


def test_tea_uses_frame_order_and_keeps_clips_apart():
    torch.manual_seed(0)
    model = tea_recognizer().eval()
    clips = torch.randn(3, 4, 3, 32, 32)
    with torch.no_grad():
        together = model({"rgb": clips})["logits"]
        alone = torch.cat([model({"rgb": clips[i:i + 1]})["logits"] for i in range(3)])
        shuffled = model({"rgb": clips[:, [2, 0, 3, 1]]})["logits"]
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5 * alone.abs().max())
    assert (together - shuffled).abs().max() > 1e-3 * together.abs().max()
