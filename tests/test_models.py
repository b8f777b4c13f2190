"""The TSN backbone and clip classifier, HandModel's losses and deploy."""

import pytest
import torch

from handmt.models import BACKBONES, build


def tsn(arch="resnet18", classes=5, modality="rgb", dropout=0.0):
    return build({"model": {"backbone": {"name": "resnet_tsn", "arch": arch,
                                         "modality": modality},
                            "heads": {"gesture": {"name": "clip_classifier",
                                                  "num_classes": classes,
                                                  "dropout": dropout}}}})


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_resnet50_tsn_has_the_published_parameter_count():
    # TSN / TSM ResNet-50 with 83 classes (EgoGesture): 23,678,099 (docs/design.md, ACTION section).
    assert count(tsn("resnet50", 83)) == 23_678_099


def test_feature_info_matches_the_features_and_comes_from_timm():
    backbone = BACKBONES.build({"name": "resnet_tsn", "arch": "resnet50"}, "b")
    features = backbone({"rgb": torch.randn(1, 2, 3, 64, 64)})
    assert list(features) == ["stem", "res2", "res3", "res4", "res5"]
    expected = {"stem": (64, 4), "res2": (256, 4), "res3": (512, 8), "res4": (1024, 16),
                "res5": (2048, 32)}
    for name, (channels, stride) in expected.items():
        spec = backbone.feature_info[name]
        assert (spec.channels, spec.stride) == (channels, stride)
        assert features[name].shape == (1, 2, channels, 64 // stride, 64 // stride)


def test_depth_and_flow_backbones_take_their_channel_counts():
    for modality, channels in (("depth", 1), ("flow", 2)):
        model = tsn(modality=modality)
        assert model.backbone.net.conv1.in_channels == channels
        assert model({modality: torch.randn(1, 2, channels, 32, 32)})["logits"].shape == (1, 5)


def test_tsn_is_invariant_to_frame_order_and_averages_frame_logits():
    torch.manual_seed(0)
    model = tsn().eval()
    clip = torch.randn(2, 4, 3, 48, 48)
    with torch.no_grad():
        logits = model({"rgb": clip})["logits"]
        shuffled = model({"rgb": clip[:, [2, 0, 3, 1]]})["logits"]
        per_frame = torch.stack([model({"rgb": clip[:, t:t + 1]})["logits"] for t in range(4)])
    torch.testing.assert_close(logits, shuffled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits, per_frame.mean(0), rtol=1e-5, atol=1e-5)


def test_clips_in_a_batch_do_not_affect_each_other_in_eval_mode():
    torch.manual_seed(0)
    model = tsn().eval()
    clips = torch.randn(3, 2, 3, 32, 32)
    with torch.no_grad():
        together = model({"rgb": clips})["logits"]
        alone = torch.cat([model({"rgb": clips[i:i + 1]})["logits"] for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_unlabelled_samples_add_no_loss_and_no_gradient():
    torch.manual_seed(0)
    model = tsn().eval()  # running BN statistics: samples are independent
    clips = torch.randn(3, 2, 3, 32, 32, requires_grad=True)
    batch = {"rgb": clips, "label": torch.tensor([1, -1, 3])}
    outputs = model(batch)
    loss = model.losses(outputs, batch)["total"]
    loss.backward()
    assert torch.all(clips.grad[1] == 0)
    assert clips.grad[0].abs().sum() > 0 and clips.grad[2].abs().sum() > 0
    expected = torch.nn.functional.cross_entropy(outputs["logits"][[0, 2]], torch.tensor([1, 3]))
    torch.testing.assert_close(loss, expected)


def test_a_batch_without_labels_gives_zero_loss_and_zero_gradient():
    model = tsn().eval()
    batch = {"rgb": torch.randn(2, 2, 3, 32, 32), "label": torch.tensor([-1, -1])}
    losses = model.losses(model(batch), batch)
    losses["total"].backward()
    assert losses["total"].item() == 0.0
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.parameters())


def test_total_is_the_sum_of_the_named_losses_with_weights():
    model = tsn()
    model.heads["gesture"].loss_weight = 0.25
    batch = {"rgb": torch.randn(2, 2, 3, 32, 32), "label": torch.tensor([0, 4])}
    model.eval()
    outputs = model(batch)
    losses = model.losses(outputs, batch)
    expected = 0.25 * torch.nn.functional.cross_entropy(outputs["logits"], batch["label"])
    torch.testing.assert_close(losses["cls"], expected)
    torch.testing.assert_close(losses["total"], losses["cls"])


class DepthProbe(torch.nn.Module):
    """A stand-in auxiliary head (the MSD decoders are the real ones)."""
    auxiliary = True

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(512, 1, 1)

    def forward(self, features, batch):
        return {"depth_probe": self.conv(features["res5"][:, 0])}

    def loss(self, outputs, batch):
        return {"probe": outputs["depth_probe"].square().mean()}


def test_deploy_keeps_inference_outputs_and_drops_auxiliary_heads():
    torch.manual_seed(0)
    model = tsn(dropout=0.5)
    model.heads["probe"] = DepthProbe()
    deployed = model.deploy()
    assert not deployed.training and model.training
    assert list(deployed.heads) == ["gesture"] and list(model.heads) == ["gesture", "probe"]
    assert count(model) - count(deployed) == count(model.heads["probe"]) == 513
    batch = {"rgb": torch.randn(2, 3, 3, 32, 32)}
    model.eval()
    with torch.no_grad():
        full, lean = model(batch), deployed(batch)
    assert set(full) == {"logits", "depth_probe"} and set(lean) == {"logits"}
    torch.testing.assert_close(lean["logits"], full["logits"], rtol=0, atol=0)


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="resnet51"):
        tsn(arch="resnet51")
