"""`model.backbone.pretrained` (models/pretrained.py): weights made and saved by each test, loaded
through build(cfg) from the layouts the public releases use."""

import huggingface_hub.constants
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from handmt.errors import ConfigError
from handmt.models import build
from handmt.models.backbones.i3d import INCEPTION
from handmt.models.backbones.resnet_tsn import ACTION_NET_NAMES


def randomized(module, seed=0):
    """`module` with random parameters and BatchNorm statistics (initial ones would hide a BN
    buffer that is not loaded)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    return module.eval()


FEATURE = {"resnet_tsn": "res5", "i3d": "Mixed_5c", "c3d": "MaxPool3d_5"}


def recognizer(backbone, classes=5):
    return build({"model": {"backbone": backbone, "heads": {
        "gesture": {"name": "clip_classifier", "num_classes": classes, "dropout": 0.0,
                    "feature": FEATURE[backbone["name"]]}}}})


def test_a_timm_resnet18_state_dict_loads_bit_exactly(tmp_path, capfd):
    source = randomized(timm.create_model("resnet18"))
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    model = recognizer({"name": "resnet_tsn", "arch": "resnet18",
                        "pretrained": str(tmp_path / "resnet18.pth")}).eval()
    loaded = model.backbone.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items()
               if not k.startswith("fc."))
    assert "2 keys of fc. not loaded (the ImageNet classifier" in capfd.readouterr().err
    clip = torch.randn(2, 1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.backbone({"rgb": clip})["res5"][:, 0],
                           source.forward_features(clip[:, 0]))


def test_image_weights_leave_the_temporal_layers_at_their_initialization(tmp_path):
    source = randomized(timm.create_model("resnet18"))
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    torch.manual_seed(1)
    fresh = recognizer({"name": "resnet_tsn", "arch": "resnet18", "temporal": "action"})
    torch.manual_seed(1)
    model = recognizer({"name": "resnet_tsn", "arch": "resnet18", "temporal": "action",
                        "pretrained": str(tmp_path / "resnet18.pth")})
    net, initial = model.backbone.net.state_dict(), fresh.backbone.net.state_dict()
    assert torch.equal(net["layer2.1.conv1.1.weight"], source.state_dict()["layer2.1.conv1.weight"])
    assert torch.equal(net["layer2.1.conv1.0.shift.conv.weight"],
                       initial["layer2.1.conv1.0.shift.conv.weight"])


def test_depth_and_flow_start_from_the_mean_of_the_rgb_kernels(tmp_path):
    source = randomized(timm.create_model("resnet18"))
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")
    rgb = source.state_dict()["conv1.weight"]
    for modality, channels in (("depth", 1), ("flow", 2)):
        model = recognizer({"name": "resnet_tsn", "arch": "resnet18", "modality": modality,
                            "pretrained": str(tmp_path / "resnet18.pth")})
        first = model.backbone.net.state_dict()["conv1.weight"]
        assert first.shape == (64, channels, 7, 7)
        for channel in range(channels):
            torch.testing.assert_close(first[:, channel], (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) / 3)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = timm.create_model("resnet18").state_dict()
    del state["layer3.1.bn2.running_var"]
    state["layer9.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"broken.pth: .*missing 1 \(layer3.1.bn2.running_var\); "
                                         r"unexpected 1 \(layer9.weight\)"):
        recognizer({"name": "resnet_tsn", "arch": "resnet18",
                    "pretrained": str(tmp_path / "broken.pth")})
    state = timm.create_model("resnet18").state_dict()
    state["conv1.weight"] = torch.zeros(32, 3, 7, 7)
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(ValueError, match=r"narrow.pth: conv1.weight has shape \(32, 3, 7, 7\), "
                                         r"this backbone needs \(64, 3, 7, 7\)"):
        recognizer({"name": "resnet_tsn", "arch": "resnet18",
                    "pretrained": str(tmp_path / "narrow.pth")})


def test_missing_file_and_unreachable_hub_say_how_to_pass_a_file(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nothing.pth: pretrained weights file not found"):
        recognizer({"name": "resnet_tsn", "arch": "resnet18",
                    "pretrained": str(tmp_path / "nothing.pth")})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries
    with pytest.raises(RuntimeError, match="timm's pretrained weights for 'resnet18' could not "
                                           "be loaded.*set model.backbone.pretrained: /path/to/"):
        recognizer({"name": "resnet_tsn", "arch": "resnet18", "pretrained": True})


def test_an_action_net_checkpoint_loads_every_layer(tmp_path, capfd):
    # ACTION-Net's train.py saves {'state_dict': DataParallel(TSN).state_dict(), ...}: keys
    # module.base_model.<torchvision ResNet>, each block's conv1 an Action(net) module.
    source = randomized(recognizer({"name": "resnet_tsn", "arch": "resnet18",
                                    "temporal": "action"}).backbone.net)
    ours_to_theirs = {ours: theirs for theirs, ours in ACTION_NET_NAMES.items()}
    state = {}
    for key, value in source.state_dict().items():
        block, dot, rest = key.partition(".conv1.")
        if dot and rest.startswith("1."):
            key = f"{block}.conv1.net.{rest[2:]}"
        elif dot and rest.startswith("0."):
            name = next(n for n in ours_to_theirs if rest[2:].startswith(n + "."))
            key = f"{block}.conv1.{ours_to_theirs[name]}{rest[2 + len(name):]}"
        state[f"module.base_model.{key}"] = value
    state.update({"module.new_fc.weight": torch.zeros(83, 512),
                  "module.new_fc.bias": torch.zeros(83)})
    assert "module.base_model.layer1.0.conv1.action_p3_bn1.running_var" in state
    torch.save({"epoch": 25, "arch": "resnet18", "state_dict": state, "best_prec1": 94.2},
               tmp_path / "ckpt.best.pth.tar")
    model = recognizer({"name": "resnet_tsn", "arch": "resnet18", "temporal": "action",
                        "pretrained": str(tmp_path / "ckpt.best.pth.tar")})
    loaded = model.backbone.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.state_dict().items())
    assert "ACTION-Net's classifier" in capfd.readouterr().err
    with pytest.raises(ValueError, match=r"missing none; unexpected 104 \(layer1.0.conv1.0."):
        recognizer({"name": "resnet_tsn", "arch": "resnet18", "temporal": "tsm",
                    "pretrained": str(tmp_path / "ckpt.best.pth.tar")})


def test_a_handmt_checkpoint_gives_its_backbone(tmp_path, capfd):
    # the MSD paper starts NVGesture (25 classes) from its EgoGesture model (83 classes)
    backbone = {"name": "resnet_tsn", "arch": "resnet18", "temporal": "action"}
    source = recognizer(backbone, classes=83)
    randomized(source.backbone)
    torch.save({"model": source.state_dict(), "epoch": 25}, tmp_path / "checkpoint.pt")
    model = recognizer({**backbone, "pretrained": str(tmp_path / "checkpoint.pt")}, classes=25)
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.backbone.state_dict().items())
    assert "2 keys of heads. not loaded" in capfd.readouterr().err


class PortUnit3D(nn.Module):
    """pytorch-i3d's Unit3D: "SAME" padding from its compute_pad, Conv3d, BN, optional ReLU."""

    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), relu=True, bn=True,
                 bias=False):
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x):
        x = self.conv3d(F.pad(x, port_pad(x, self.kernel, self.stride)))
        x = self.bn(x) if self.bn is not None else x
        return F.relu(x) if self.relu else x


def port_pad(x, kernel, stride):
    pads = []
    for size, k, s in zip(x.shape[2:], kernel, stride, strict=True):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads.append((total // 2, total - total // 2))
    (t0, t1), (h0, h1), (w0, w1) = pads
    return (w0, w1, h0, h1, t0, t1)


class PortMaxPool(nn.MaxPool3d):
    def forward(self, x):
        return super().forward(F.pad(x, port_pad(x, self.kernel_size, self.stride)))


class PortInception(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.b0 = PortUnit3D(cin, c[0])
        self.b1a, self.b1b = PortUnit3D(cin, c[1]), PortUnit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = PortUnit3D(cin, c[3]), PortUnit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = PortMaxPool((3, 3, 3), (1, 1, 1)), PortUnit3D(cin, c[5])

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], dim=1)


class PortI3D(nn.Module):
    """The port's InceptionI3d, its end points registered by name in order, up to Mixed_5c."""

    def __init__(self, in_channels=3, classes=400):
        super().__init__()
        self.add_module("Conv3d_1a_7x7", PortUnit3D(in_channels, 64, (7, 7, 7), (2, 2, 2)))
        self.add_module("MaxPool3d_2a_3x3", PortMaxPool((1, 3, 3), (1, 2, 2)))
        self.add_module("Conv3d_2b_1x1", PortUnit3D(64, 64))
        self.add_module("Conv3d_2c_3x3", PortUnit3D(64, 192, (3, 3, 3)))
        self.add_module("MaxPool3d_3a_3x3", PortMaxPool((1, 3, 3), (1, 2, 2)))
        channels = 192
        for name, widths in INCEPTION.items():
            if name == "Mixed_4b":
                self.add_module("MaxPool3d_4a_3x3", PortMaxPool((3, 3, 3), (2, 2, 2)))
            if name == "Mixed_5b":
                self.add_module("MaxPool3d_5a_2x2", PortMaxPool((2, 2, 2), (2, 2, 2)))
            self.add_module(name, PortInception(channels, widths))
            channels = widths[0] + widths[2] + widths[4] + widths[5]
        self.logits = PortUnit3D(1024, classes, relu=False, bn=False, bias=True)

    def mixed_5c(self, x):
        for name, module in self.named_children():
            if name != "logits":
                x = module(x)
        return x


def test_i3d_from_a_pytorch_i3d_file_gives_the_ports_mixed_5c(tmp_path, capfd):
    port = randomized(PortI3D())
    torch.save(port.state_dict(), tmp_path / "rgb_imagenet.pt")
    assert {"Conv3d_1a_7x7.conv3d.weight", "Mixed_5c.b3b.bn.running_var",
            "logits.conv3d.bias"} <= port.state_dict().keys()
    model = recognizer({"name": "i3d", "pretrained": str(tmp_path / "rgb_imagenet.pt")}).eval()
    assert "2 keys of logits. not loaded (the port's Kinetics classifier" in capfd.readouterr().err
    clip = torch.randn(1, 16, 3, 64, 64)
    with torch.no_grad():
        ours = model.backbone({"rgb": clip})["Mixed_5c"]
        theirs = port.mixed_5c(clip.transpose(1, 2))
    assert ours.shape == (1, 1024, 2, 2, 2)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max())


def test_mtut_loads_one_file_per_modality(tmp_path):
    files = {}
    for seed, modality in enumerate(("rgb", "depth")):
        net = randomized(recognizer({"name": "i3d", "width": 0.25, "modality": modality})
                         .backbone, seed)
        files[modality] = (tmp_path / f"{modality}.pt", net.state_dict())
        torch.save(net.state_dict(), files[modality][0])
    cfg = {"model": {"modalities": ["rgb", "depth"], "ssa": {"feature": "Mixed_5c"},
                     "backbone": {"name": "i3d", "width": 0.25,
                                  "pretrained": {m: str(p) for m, (p, _) in files.items()}},
                     "heads": {"gesture": {"name": "clip_classifier", "num_classes": 5,
                                           "feature": "Mixed_5c"}}}}
    model = build(cfg)
    for modality, (_, state) in files.items():
        loaded = model.nets[modality].backbone.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
    cfg["model"]["backbone"]["pretrained"] = {"flow": str(files["rgb"][0])}
    with pytest.raises(ConfigError, match="model.backbone.pretrained.flow.*rgb, depth"):
        build(cfg)


def test_c3d_from_a_c3d_pytorch_file(tmp_path, capfd):
    source = randomized(recognizer({"name": "c3d", "width": 0.25}).backbone)
    state = {}
    for key, value in source.state_dict().items():  # layers.conv1a.0.weight -> conv1.weight
        layer, _, param = key.removeprefix("layers.").partition(".0.")
        state[f"{layer[:-1] if layer in ('conv1a', 'conv2a') else layer}.{param}"] = value
    state["fc8.weight"], state["fc8.bias"] = torch.zeros(487, 4096), torch.zeros(487)
    assert "conv1.weight" in state and "conv3b.bias" in state
    torch.save(state, tmp_path / "c3d.pickle")
    model = recognizer({"name": "c3d", "width": 0.25, "modality": "depth",
                        "pretrained": str(tmp_path / "c3d.pickle")})
    loaded = model.backbone.state_dict()
    assert torch.equal(loaded["layers.conv5b.0.bias"], source.state_dict()["layers.conv5b.0.bias"])
    torch.testing.assert_close(loaded["layers.conv1a.0.weight"],
                               source.state_dict()["layers.conv1a.0.weight"].mean(1, keepdim=True))
    assert "2 keys of fc6., fc7., fc8. not loaded" in capfd.readouterr().err
