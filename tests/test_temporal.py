"""Temporal shift and the ACTION module (docs/design.md, "ACTION module and temporal shift"), and
the TSN / TSM / ACTION-Net backbones they make."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange, reduce

from handmt import load_config
from handmt.models import build
from handmt.models.layers import (
    Action,
    LearnableShift,
    TemporalShift,
    set_num_segments,
    shift_frames,
)


def count(model):
    return sum(p.numel() for p in model.parameters())


def recognizer(temporal, arch="resnet18", classes=5):
    return build({"model": {"backbone": {"name": "resnet_tsn", "arch": arch,
                                         "temporal": temporal},
                            "heads": {"gesture": {"name": "clip_classifier",
                                                  "num_classes": classes, "dropout": 0.0}}}})


def test_shift_at_initialization_is_tsms_zero_padded_shift():
    # 2 clips x 3 frames x 8 channels x 1 x 2 pixels; value = 100*clip + 10*frame + channel
    # + 0.5*pixel. fold = 8 // 8 = 1: channel 0 takes frame t+1, channel 1 frame t-1.
    clip, frame, channel, pixel = torch.meshgrid(torch.arange(2.0), torch.arange(3.0),
                                                 torch.arange(8.0), torch.arange(2.0),
                                                 indexing="ij")
    clips = (100 * clip + 10 * frame + channel + 0.5 * pixel).unsqueeze(3)  # (2, 3, 8, 1, 2)
    expected = clips.clone()
    expected[:, :, 0, 0] = torch.tensor([[[10, 10.5], [20, 20.5], [0, 0]],
                                         [[110, 110.5], [120, 120.5], [0, 0]]])
    expected[:, :, 1, 0] = torch.tensor([[[0, 0], [1, 1.5], [11, 11.5]],
                                         [[0, 0], [101, 101.5], [111, 111.5]]])
    assert torch.equal(shift_frames(clips), expected)
    single = clips[:, :1].clone()
    single[:, :, :2] = 0  # one frame: both folds read the zero padding
    assert torch.equal(shift_frames(clips[:, :1]), single)

    frames = clips.flatten(0, 1)  # (B*T, C, H, W), as inside the network
    fixed, learnable = TemporalShift(), LearnableShift(channels=8)
    for layer in (fixed, learnable):
        set_num_segments(layer, 3)
    with torch.no_grad():
        assert torch.equal(fixed(frames), expected.flatten(0, 1))
        assert torch.equal(learnable(frames), expected.flatten(0, 1))
    assert learnable.conv.weight.requires_grad and count(fixed) == 0


def test_learnable_shift_equals_the_fixed_shift_on_random_features():
    torch.manual_seed(0)
    frames = torch.randn(2 * 4, 64, 5, 6)
    fixed, learnable = TemporalShift(), LearnableShift(channels=64)
    for layer in (fixed, learnable):
        set_num_segments(layer, 4)
    with torch.no_grad():
        assert torch.equal(learnable(frames), fixed(frames))


def test_a_layer_used_alone_asks_for_the_clip_length():
    with pytest.raises(RuntimeError, match="set_num_segments"):
        TemporalShift()(torch.randn(4, 8, 2, 2))


def reference_action(action, frames, num_segments):
    """ACTION by explicit loops over clips and frames (eval mode), independent of the einops
    patterns of the implementation."""
    outputs = []
    for clip in frames.split(num_segments):
        padded = F.pad(clip, (0, 0, 0, 0, 0, 0, 1, 1))  # a zero frame at each end
        kernel = action.shift.conv.weight[:, 0, :, None, None]  # (C, 3, 1, 1)
        x = torch.stack([(kernel * padded[t:t + 3].transpose(0, 1)).sum(1)
                         for t in range(num_segments)])
        ste = F.conv3d(x.mean(1)[None, None], action.ste_conv.weight, padding=1)[0, 0]
        m_ste = ste.sigmoid()[:, None]  # (T, 1, H, W)
        squeezed = x.mean((2, 3)) @ action.ce_squeeze.weight[:, :, 0, 0].T  # (T, r)
        temporal = F.conv1d(squeezed.T[None], action.ce_temporal.weight, padding=1)[0].T.relu()
        m_ce = (temporal @ action.ce_expand.weight[:, :, 0, 0].T).sigmoid()[:, :, None, None]
        reduced = action.me_bn(action.me_squeeze(x))
        motion = [action.me_conv(reduced[t + 1:t + 2])[0] - reduced[t]
                  for t in range(num_segments - 1)]
        motion = torch.stack(motion + [torch.zeros_like(reduced[0])]).mean((2, 3))
        m_me = (motion @ action.me_expand.weight[:, :, 0, 0].T).sigmoid()[:, :, None, None]
        outputs.append((x + x * m_ste) + (x + x * m_ce) + (x + x * m_me))
    return torch.cat(outputs)


def test_action_module_matches_a_loop_reference():
    torch.manual_seed(0)
    action = Action(channels=32).eval()
    with torch.no_grad():  # move off the initialization: trained-looking shift and BN
        action.shift.conv.weight.add_(0.3 * torch.randn_like(action.shift.conv.weight))
        action.me_bn.running_mean.normal_()
        action.me_bn.running_var.uniform_(0.5, 2.0)
        action.me_bn.weight.normal_()
        action.me_bn.bias.normal_()
    frames = torch.randn(2 * 4, 32, 5, 6)
    set_num_segments(action, 4)
    with torch.no_grad():
        torch.testing.assert_close(action(frames), reference_action(action, frames, 4),
                                   rtol=1e-5, atol=1e-5)


class ReferenceAction(Action):
    """Action as written before its fused autograd Function: plain autograd over full-size
    tensors, the shift a Conv1d over each pixel's frames. Same parameters, so a state dict
    moves between the two."""

    def forward(self, x):
        t, height = self.segments(), x.shape[-2]
        sequences = rearrange(x, "(b t) c h w -> (b h w) c t", t=t)
        x = rearrange(self.shift.conv(sequences), "(b h w) c t -> (b t) c h w", h=height,
                      w=x.shape[-1])
        pooled = rearrange(x.mean(dim=1, keepdim=True), "(b t) 1 h w -> b 1 t h w", t=t)
        ste = rearrange(self.ste_conv(pooled), "b 1 t h w -> (b t) 1 h w").sigmoid()
        squeezed = self.ce_squeeze(reduce(x, "n c h w -> n c 1 1", "mean"))
        sequences = rearrange(squeezed, "(b t) r 1 1 -> b r t", t=t)
        temporal = rearrange(F.relu(self.ce_temporal(sequences)), "b r t -> (b t) r 1 1")
        ce = self.ce_expand(temporal).sigmoid()
        features = self.me_bn(self.me_squeeze(x))
        frames = reduce(features, "(b t) r h w -> b t r", "mean", t=t)
        transformed = reduce(self.me_conv(features), "(b t) r h w -> b t r", "mean", t=t)
        motion = F.pad(transformed[:, 1:] - frames[:, :-1], (0, 0, 0, 1))
        me = self.me_expand(rearrange(motion, "b t r -> (b t) r 1 1")).sigmoid()
        return x * (ste + (3 + ce + me))


@pytest.mark.parametrize(("batch", "frames"), [(2, 4), (3, 1)])
def test_action_training_step_equals_plain_autograd(batch, frames):
    # outputs, the input's and every parameter's gradient, and BatchNorm's running statistics
    torch.manual_seed(0)
    action = Action(channels=32).double()
    with torch.no_grad():  # move every parameter off its initialization
        for param in action.parameters():
            param.add_(0.3 * torch.randn_like(param))
    reference = ReferenceAction(channels=32).double()
    reference.load_state_dict(action.state_dict())
    x = torch.randn(batch * frames, 32, 5, 6, dtype=torch.float64, requires_grad=True)
    grad = torch.randn_like(x)
    results = []
    for layer in (action, reference):
        set_num_segments(layer, frames)
        out = layer.train()(x)
        results.append((out, *torch.autograd.grad(out, (x, *layer.parameters()), grad)))
    names = ["output", "input", *(name for name, _ in action.named_parameters())]
    for name, got, expected in zip(names, *results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10, msg=name)
    torch.testing.assert_close(action.me_bn.running_mean, reference.me_bn.running_mean)
    torch.testing.assert_close(action.me_bn.running_var, reference.me_bn.running_var)
    with torch.no_grad():  # eval mode runs the plain ops, not the Function
        torch.testing.assert_close(action.eval()(x), reference.eval()(x), rtol=1e-10, atol=1e-10)


def test_action_backward_runs_twice_with_retain_graph():
    torch.manual_seed(0)
    action = Action(channels=32)
    set_num_segments(action, 2)
    x = torch.randn(4, 32, 3, 3, requires_grad=True)
    out = action(x).square().sum()
    first = torch.autograd.grad(out, x, retain_graph=True)[0]
    torch.testing.assert_close(torch.autograd.grad(out, x)[0], first, rtol=0, atol=0)


def test_action_leaves_frozen_parameters_without_gradient():
    action = Action(channels=32)
    set_num_segments(action, 2)
    action.ce_expand.weight.requires_grad_(False)
    action(torch.randn(4, 32, 3, 3)).sum().backward()
    assert action.ce_expand.weight.grad is None
    assert all(p.grad is not None for p in action.parameters() if p.requires_grad)


def test_motion_excitation_is_neutral_for_a_still_clip_and_at_the_last_frame():
    torch.manual_seed(0)
    action = Action(channels=32).eval()
    with torch.no_grad():  # K = identity: motion K * F(t+1) - F(t) is 0 for a still clip
        action.me_conv.weight.zero_()
        action.me_conv.weight[:, 0, 1, 1] = 1.0

    def motion(frames, num_segments):
        """The motion path's weights (B*T, C) for frames (B*T, C, H, W)."""
        clips = rearrange(frames, "(b t) c h w -> b t c (h w)", t=num_segments)
        reduced, _, _ = action.summaries(clips)
        return action.motion_attention(reduced, frames.shape[-2]).flatten(0, 1)[..., 0]

    still = torch.randn(1, 32, 4, 4).repeat(3, 1, 1, 1)
    moving = torch.randn(3, 32, 4, 4)
    with torch.no_grad():
        # sigmoid(0) = 0.5: the bias-free expand of zero motion
        assert torch.equal(motion(still, 3), torch.full((3, 32), 0.5))
        assert torch.equal(motion(moving, 3)[2], torch.full((32,), 0.5))
        assert not torch.allclose(motion(moving, 3)[:2], torch.tensor(0.5))
        # one-frame clips: only the zero step
        assert torch.equal(motion(moving, 1), torch.full((3, 32), 0.5))


def test_action_resnet50_has_the_published_parameter_count():
    # Bias-free convs + affine BN in the motion path, as ACTION-Net's public code: 27,895,919
    # (the MSD paper's Table I: 27.9M); TSM adds no parameters to TSN's 23,678,099.
    cfg = load_config("configs/egogesture_action.yaml")
    assert count(build(cfg)) == 27_895_919
    assert count(recognizer("tsm", "resnet50", 83)) == 23_678_099


def test_every_block_gets_the_temporal_layer():
    model = recognizer("action", "resnet50", 83)
    actions = [m for m in model.modules() if isinstance(m, Action)]
    assert len(actions) == 16
    assert [a.shift.conv.in_channels for a in actions] == (
        [64, 256, 256] + [256, 512, 512, 512] + [512] + [1024] * 5 + [1024, 2048, 2048])


@pytest.mark.parametrize("temporal", ["none", "tsm", "action"])
def test_only_tsn_is_invariant_to_frame_order(temporal):
    torch.manual_seed(0)
    model = recognizer(temporal).eval()
    clip = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        logits = model({"rgb": clip})["logits"]
        shuffled = model({"rgb": clip[:, [2, 0, 3, 1]]})["logits"]
    if temporal == "none":
        torch.testing.assert_close(logits, shuffled, rtol=1e-5, atol=1e-5)
    else:
        assert (logits - shuffled).abs().max() > 1e-3 * logits.abs().max()


@pytest.mark.parametrize("temporal", ["tsm", "action"])
def test_clips_do_not_affect_each_other_and_the_clip_length_comes_from_the_clip(temporal):
    torch.manual_seed(0)
    model = recognizer(temporal).eval()
    for frames in (4, 2):  # 3 clips of 2 frames would mix if T stayed 4
        clips = torch.randn(3, frames, 3, 32, 32)
        with torch.no_grad():
            together = model({"rgb": clips})["logits"]
            alone = torch.cat([model({"rgb": clips[i:i + 1]})["logits"] for i in range(3)])
        # ACTION sums three excited copies (about 4.5 x) per block, so untrained logits in eval
        # mode reach the hundreds: compare at that scale
        torch.testing.assert_close(together, alone, rtol=0, atol=1e-5 * alone.abs().max())
