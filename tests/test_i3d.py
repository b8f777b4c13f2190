"""The 3D backbones of MTUT: I3D (inflated Inception-v1) and C3D."""

import math
import time

import pytest
import torch

from handmt import ConfigError
from handmt.models import BACKBONES, build
from handmt.models.backbones.i3d import MaxPool3dSame, Unit3D, same_padding

PORT_LAYERS = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
               "MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b",
               "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b",
               "Mixed_5c"]


def count(model):
    return sum(p.numel() for p in model.parameters())


def backbone(name, modality="rgb"):
    return BACKBONES.build({"name": name, "modality": modality}, "model.backbone")


def test_i3d_has_the_published_parameter_counts():
    assert count(backbone("i3d")) == 12_287_264
    assert count(backbone("i3d", "depth")) == 12_243_360
    # flow: one input channel more than depth in Conv3d_1a_7x7 (7*7*7*64 weights)
    assert count(backbone("i3d", "flow")) == 12_243_360 + 7 * 7 * 7 * 64
    assert list(backbone("i3d").layers) == PORT_LAYERS


def test_i3d_batchnorm_momentum_is_the_ports_unless_set():
    def momenta(net):
        return {m.momentum for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d)}

    assert momenta(backbone("i3d")) == {0.01}
    narrow = BACKBONES.build({"name": "i3d", "width": 0.25, "bn_momentum": 0.1}, "model.backbone")
    assert momenta(narrow) == {0.1}
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in narrow.modules()) == 57
    with pytest.raises(ConfigError, match="bn_momentum"):
        BACKBONES.build({"name": "i3d", "bn_momentum": 0.0}, "model.backbone")


def test_same_padding_matches_tensorflow():
    # T=5, k=3, s=2: out 3, pad (3-1)*2+3-5 = 2 -> (1, 1); H=6: out 3, pad 1 -> (0, 1) (the extra
    # after); W=7: out 4, pad 2 -> (1, 1). F.pad order is (W, H, T).
    assert same_padding((5, 6, 7), (3, 3, 3), (2, 2, 2)) == (1, 1, 0, 1, 1, 1)
    assert same_padding((4, 4, 4), (1, 1, 1), (1, 1, 1)) == (0,) * 6
    x = torch.rand(1, 2, 5, 6, 7)
    for layer in (Unit3D(2, 3, 3, 2), MaxPool3dSame(3, 2), Unit3D(2, 3, 7, 2),
                  MaxPool3dSame((1, 3, 3), (1, 2, 2))):
        out = layer(x).shape[2:]
        assert out == tuple(math.ceil(s / st) for s, st in zip((5, 6, 7), layer.stride,
                                                               strict=True))


def test_i3d_feature_shapes_follow_the_strides():
    model = backbone("i3d").eval()
    expected = {"Conv3d_1a_7x7": (64, 2, 2), "Conv3d_2c_3x3": (192, 2, 4),
                "Mixed_3c": (480, 2, 8), "Mixed_4f": (832, 4, 16), "Mixed_5c": (1024, 8, 32)}
    for t, h, w in [(16, 112, 112), (9, 65, 97)]:
        with torch.no_grad():
            features = model({"rgb": torch.randn(1, t, 3, h, w)})
        assert list(features) == list(expected)
        for name, (channels, t_stride, stride) in expected.items():
            spec = model.feature_info[name]
            assert (spec.channels, spec.stride, spec.layout) == (channels, stride, "b c t h w")
            assert features[name].shape == (1, channels, math.ceil(t / t_stride),
                                            math.ceil(h / stride), math.ceil(w / stride))
    assert features["Mixed_5c"].shape == (1, 1024, 2, 3, 4)  # 9 x 65 x 97


def test_i3d_full_size_clip_gives_1024x8x7x7():
    model = backbone("i3d").eval()
    start = time.perf_counter()
    with torch.no_grad():
        out = model({"rgb": torch.randn(1, 64, 3, 224, 224)})["Mixed_5c"]
    assert out.shape == (1, 1024, 8, 7, 7)
    assert time.perf_counter() - start < 60  # about 6 s single-threaded


def test_i3d_builds_with_the_clip_classifier_and_trains():
    torch.manual_seed(0)
    model = build({"model": {"backbone": {"name": "i3d", "modality": "rgb"},
                             "heads": {"gesture": {"name": "clip_classifier", "num_classes": 25,
                                                   "feature": "Mixed_5c"}}}})
    batch = {"rgb": torch.randn(2, 8, 3, 64, 64), "label": torch.tensor([3, -1])}
    outputs = model(batch)
    assert outputs["logits"].shape == (2, 25)
    losses = model.losses(outputs, batch)
    losses["total"].backward()
    assert model.backbone.layers["Conv3d_1a_7x7"].conv3d.weight.grad.abs().sum() > 0

    depth = build({"model": {"backbone": {"name": "i3d", "modality": "depth"},
                             "heads": {"gesture": {"name": "clip_classifier", "num_classes": 25,
                                                   "feature": "Mixed_5c"}}}}).eval()
    with torch.no_grad():
        assert depth({"depth": torch.randn(1, 8, 1, 32, 32)})["logits"].shape == (1, 25)


def test_c3d_has_the_published_convolution_parameter_count():
    widths = [64, 128, 256, 256, 512, 512, 512, 512]
    for modality, channels in (("rgb", 3), ("depth", 1)):
        inputs = [channels] + widths[:-1]
        expected = sum(c_in * c_out * 27 + c_out for c_in, c_out in zip(inputs, widths,
                                                                          strict=True))
        assert count(backbone("c3d", modality)) == expected
    assert count(backbone("c3d")) == 27_655_936


def test_c3d_features_and_maxpool5_for_a_16x112x112_clip():
    model = backbone("c3d").eval()
    with torch.no_grad():
        features = model({"rgb": torch.randn(1, 16, 3, 112, 112)})
    # (channels, stride, T, H = W); pool5 rounds 7 up to 4 (Caffe's pooling, as published)
    expected = {"conv1a": (64, 1, 16, 112), "conv2a": (128, 2, 16, 56),
                "conv3b": (256, 4, 8, 28), "conv4b": (512, 8, 4, 14), "conv5b": (512, 16, 2, 7),
                "MaxPool3d_5": (512, 32, 1, 4)}
    assert list(features) == list(expected)
    for name, (channels, stride, t, hw) in expected.items():
        spec = model.feature_info[name]
        assert (spec.channels, spec.stride, spec.layout) == (channels, stride, "b c t h w")
        assert features[name].shape == (1, channels, t, hw, hw)
    assert features["MaxPool3d_5"].numel() == 8192  # what C3D's fc6 reads

    classifier = build({"model": {"backbone": {"name": "c3d", "modality": "depth"},
                                  "heads": {"gesture": {"name": "clip_classifier",
                                                        "num_classes": 5,
                                                        "feature": "MaxPool3d_5"}}}}).eval()
    with torch.no_grad():
        assert classifier({"depth": torch.randn(2, 4, 1, 32, 32)})["logits"].shape == (2, 5)
