"""MTUT's MultiModalModel (handmt/models/multimodal.py): one network per modality coupled by the
SSA loss (the MTUT paper, eq. 1-4), its schedule, fusion, deployment, evaluation and export;
the I3D / C3D width multiplier of the CPU configs."""

import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from handmt import ConfigError, load_config
from handmt.cli import main
from handmt.engine.checkpoint import save_checkpoint
from handmt.engine.evaluate import evaluate
from handmt.engine.trainer import train
from handmt.models import BACKBONES, HandModel, MultiModalModel, build
from handmt.models import multimodal as multimodal_module
from handmt.models.backbones import FeatureSpec
from handmt.models.multimodal import SSA_FEATURE

PAPER = "configs/nvgesture_mtut_i3d.yaml"
CPU = "configs/cpu_fpha_mtut.yaml"
FRAMES, SIZE = 4, 64  # Mixed_5c of 1 x 2 x 2: four positions to align


def count(model):
    return sum(p.numel() for p in model.parameters())


def tiny_config(focal=True, start_epoch=1, backbone=None, feature="Mixed_5c", classes=3):
    return {"model": {
        "modalities": ["rgb", "depth"],
        "backbone": backbone or {"name": "i3d", "width": 0.125},
        "heads": {"gesture": {"name": "clip_classifier", "num_classes": classes,
                              "feature": feature, "dropout": 0.0}},
        "ssa": {"feature": feature, "focal": focal, "start_epoch": start_epoch}}}


def tiny_model(**kwargs):
    torch.manual_seed(0)
    return build(tiny_config(**kwargs))


def tiny_batch(batch_size=2, frames=FRAMES, size=SIZE):
    generator = torch.Generator().manual_seed(1)
    return {"rgb": torch.randn(batch_size, frames, 3, size, size, generator=generator),
            "depth": torch.rand(batch_size, frames, 1, size, size, generator=generator),
            "label": torch.arange(batch_size) % 3}


def ssa_keys(losses):
    return {k: v for k, v in losses.items() if k.startswith("ssa_")}


def test_the_paper_config_has_the_two_i3d_parameter_counts():
    model = build(load_config(PAPER))
    assert isinstance(model, MultiModalModel) and model.modalities == ["rgb", "depth"]
    assert [net.backbone.modality for net in model.nets.values()] == ["rgb", "depth"]
    assert count(model) == 24_581_874
    deployed = model.deploy("rgb")
    assert isinstance(deployed, HandModel) and not deployed.training
    assert count(deployed) == 12_312_889  # I3D (12,287,264) + 1024 x 25 classifier


def test_ssa_is_off_before_start_epoch_and_on_from_it(monkeypatch):
    model = tiny_model(start_epoch=2)
    batch = tiny_batch()
    outputs = model(batch)
    calls = []
    real_ssa_loss = multimodal_module.ssa_loss
    monkeypatch.setattr(multimodal_module, "ssa_loss",
                        lambda *args, **kwargs: calls.append(1) or real_ssa_loss(*args, **kwargs))
    for epoch in (0, 1):
        model.set_epoch(epoch)
        losses = model.losses(outputs, batch)
        assert set(ssa_keys(losses)) == {"ssa_rgb_depth", "ssa_depth_rgb"}
        assert all(v == 0 and not v.requires_grad for v in ssa_keys(losses).values())
        assert float(losses["total"]) == pytest.approx(float(losses["rgb_cls"]
                                                            + losses["depth_cls"]))
    assert calls == []  # not computed, not merely zero
    model.set_epoch(2)
    losses = model.losses(outputs, batch)
    assert len(calls) == 2 and sum(ssa_keys(losses).values()) > 0
    assert float(losses["total"]) == pytest.approx(float(sum(v for k, v in losses.items()
                                                             if k != "total")))


def test_identical_correlations_give_zero_ssa():
    model = tiny_model(focal=False, start_epoch=0)  # rho = 1: only the distance can be zero
    batch = tiny_batch()
    outputs = model(batch)
    assert sum(ssa_keys(model.losses(outputs, batch)).values()) > 0
    # The same features, and features scaled and shifted per position: position-normalized
    # correlations are equal, so SSA aligns correlations, not the features themselves.
    for same in (outputs["rgb"][SSA_FEATURE], 3 * outputs["rgb"][SSA_FEATURE] + 1):
        outputs["depth"][SSA_FEATURE] = same.detach().clone()
        assert all(v.abs() < 1e-5 for v in ssa_keys(model.losses(outputs, batch)).values())


def test_ssa_m_n_trains_network_m_only():
    model = tiny_model(focal=False, start_epoch=0)
    batch = tiny_batch()
    loss = model.losses(model(batch), batch)["ssa_rgb_depth"]
    assert loss > 0
    loss.backward()
    touched = {m: any(p.grad is not None and bool(p.grad.abs().sum() > 0)
                      for p in net.backbone.parameters())
               for m, net in model.nets.items()}
    assert touched == {"rgb": True, "depth": False}


def hand_outputs():
    """One labelled sample with known features and logits, one unlabelled sample.

    Sample 0, C = 2 channels at 2 positions. Position-normalized, (1, 0) -> (1, -1)/sqrt(2) and
    (0, 1) -> (-1, 1)/sqrt(2), so rgb's corr is [[1, -1], [-1, 1]]; depth's positions (1, 0) and
    (2, 0) give [[1, 1], [1, 1]]. ||corr_rgb - corr_depth||_F^2 = 2 * (-2)^2 = 8.
    Logits: rgb is unsure (CE = ln 3), depth is right and confident."""
    rgb = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[5.0, 1.0], [2.0, 7.0]]])  # (B, C, d)
    depth = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[1.0, 3.0], [4.0, 1.0]]])
    logits = {"rgb": torch.tensor([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0]]),
              "depth": torch.tensor([[4.0, 0.0, 0.0], [0.0, 9.0, 0.0]])}
    features = {"rgb": rgb, "depth": depth}
    outputs = {m: {"logits": logits[m], SSA_FEATURE: features[m].reshape(2, 2, 1, 1, 2)}
               for m in logits}
    return outputs, {"label": torch.tensor([0, -1])}


@pytest.mark.parametrize("focal", [True, False])
def test_ssa_values_by_hand(focal):
    model = tiny_model(focal=focal, start_epoch=0)
    outputs, batch = hand_outputs()
    losses = model.losses(outputs, batch)
    l_rgb = math.log(3)
    l_depth = F.cross_entropy(torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([0])).item()
    assert losses["rgb_cls"] == pytest.approx(l_rgb)  # the unlabelled sample counts nowhere
    if focal:  # rho^{rgb,depth} = exp(2 (l_rgb - l_depth)) - 1; rho^{depth,rgb} = 0
        expected = (0.05 * 8 * math.expm1(2 * (l_rgb - l_depth)), 0.0)
    else:  # "I3D+SSA": rho = 1 both ways
        expected = (0.05 * 8, 0.05 * 8)
    assert (losses["ssa_rgb_depth"].item(), losses["ssa_depth_rgb"].item()) == pytest.approx(
        expected, rel=1e-5)


def test_fusion_is_the_log_of_the_mean_of_the_softmax_probabilities():
    model = tiny_model().eval()
    batch = tiny_batch(3)
    with torch.no_grad():
        outputs = model(batch)
        prediction = model.predict(batch)
    expected = (outputs["rgb"]["logits"].softmax(1) + outputs["depth"]["logits"].softmax(1)) / 2
    torch.testing.assert_close(prediction.logits, expected.log())
    torch.testing.assert_close(prediction.logits.softmax(1), expected)
    for modality in ("rgb", "depth"):
        torch.testing.assert_close(prediction.per_modality[modality].logits,
                                   outputs[modality]["logits"], rtol=0, atol=0)


def test_deploy_is_the_network_alone_with_the_same_logits():
    model = tiny_model()
    with torch.no_grad():  # move BatchNorm statistics off their initial values
        model(tiny_batch(4))
    model.eval()
    batch = tiny_batch()
    with torch.no_grad():
        inside = model(batch)["depth"]["logits"]
        deployed = model.deploy("depth")
        alone = deployed({"depth": batch["depth"]})["logits"]
    torch.testing.assert_close(alone, inside, rtol=0, atol=0)
    assert count(deployed) == count(model.nets["depth"]) and not deployed.training
    with pytest.raises(ValueError, match="no 'flow' network"):
        model.deploy("flow")


def test_a_2d_resnet_pair_aligns_over_the_clip_positions():
    model = tiny_model(focal=False, start_epoch=0, feature="res3",
                       backbone={"name": "resnet_tsn", "arch": "resnet18", "last_stage": "res3"})
    batch = tiny_batch(frames=3, size=32)
    outputs = model(batch)
    per_frame = model.nets["rgb"].backbone(batch)["res3"]  # (B, T, C, h, w)
    aligned = outputs["rgb"][SSA_FEATURE]
    assert aligned.shape == (2, 128, 3, 4, 4)
    for t in range(3):
        torch.testing.assert_close(aligned[:, :, t], per_frame[:, t])
    losses = model.losses(outputs, batch)
    assert losses["ssa_rgb_depth"] > 0 and losses["ssa_depth_rgb"] > 0
    losses["total"].backward()


class Scores(nn.Module):
    """A backbone whose one feature is the scores given in the batch (B, classes, 1, 1, 1)."""

    def __init__(self, modality):
        super().__init__()
        self.modality = modality
        self.feature_info = {"scores": FeatureSpec(2, 1, "b c t h w")}

    def forward(self, batch):
        return {"scores": batch[f"{self.modality}_scores"][:, :, None, None, None]}


class Logits(nn.Module):
    auxiliary = False

    def forward(self, features, batch):
        return {"logits": features["scores"].flatten(1)}

    def loss(self, outputs, batch):
        return {}

    def predict(self, outputs, batch):
        return {"logits": outputs["logits"]}


class ScoredViews(torch.utils.data.Dataset):
    def __init__(self, rgb, depth, labels, videos):
        self.items = [{"rgb_scores": torch.tensor(r), "depth_scores": torch.tensor(d),
                       "label": torch.tensor(label), "video": torch.tensor(video)}
                      for r, d, label, video in zip(rgb, depth, labels, videos, strict=True)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_evaluate_scores_each_modality_and_their_fusion():
    # Video 0 (label 0): rgb p0 = 0.881 (right), depth p0 = 0.269 (wrong), fusion 0.575 (right).
    # Video 1 (label 1), two views: rgb [1, 0] twice (wrong); depth [0, 3] and [0, 1]: p1 = 0.953
    # and 0.731 (right); fusion p1 = mean(0.269, 0.269, 0.953, 0.731) = 0.556 (right).
    nets = {m: HandModel(Scores(m), {"gesture": Logits()}) for m in ("rgb", "depth")}
    model = MultiModalModel(nets, {"feature": "scores"})
    data = ScoredViews(rgb=[[2.0, 0.0], [1.0, 0.0], [1.0, 0.0]],
                       depth=[[0.0, 1.0], [0.0, 3.0], [0.0, 1.0]], labels=[0, 1, 1],
                       videos=[0, 1, 1])
    metrics = evaluate(model, data, batch_size=2, progress=False)
    assert (metrics["top1_rgb"], metrics["top1_depth"]) == (0.5, 0.5)
    assert metrics["top1_fusion"] == metrics["top1"] == 1.0
    assert metrics["videos"] == 2 and metrics["confusion"].trace() == 2


def test_config_errors_name_the_dotted_path():
    cases = [("model.ssa.wieght=0.1", "model.ssa.wieght", "did you mean 'weight'"),
             ("model.ssa.distance=l1", "model.ssa.distance", "expected"),
             ("model.modalities=[rgb]", "model.modalities", "two or more"),
             ("model.modalities=[rgb, ir]", "model.modalities", "rgb, depth, flow"),
             ("model.backbone.modality=rgb", "model.backbone.modality", "per network"),
             ("model.sssa={}", "model.sssa", "did you mean 'ssa'")]
    for override, path, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            load_config(PAPER, [override])
        assert err.value.path == path
    cfg = tiny_config()
    del cfg["model"]["ssa"]["feature"]
    with pytest.raises(ConfigError, match="feature") as err:
        build(cfg)
    assert err.value.path == "model.ssa"
    cfg["model"]["ssa"]["feature"] = "Mixed_5x"  # known only once the backbone is built
    with pytest.raises(ConfigError, match="did you mean 'Mixed_5c'") as err:
        build(cfg)
    assert err.value.path == "model.ssa.feature"


@pytest.mark.parametrize("name, feature, published", [("i3d", "Mixed_5c", 1024),
                                                      ("c3d", "MaxPool3d_5", 512)])
def test_width_scales_every_layer(name, feature, published):
    full = BACKBONES.build({"name": name}, "model.backbone")
    half = BACKBONES.build({"name": name, "width": 0.5}, "model.backbone").eval()
    assert half.feature_info[feature].channels == published // 2
    assert 0.2 < count(half) / count(full) < 0.3  # weights scale as width^2
    with torch.no_grad():
        out = half({"rgb": torch.randn(1, 8, 3, 32, 32)})[feature]
    assert out.shape[1] == published // 2
    with pytest.raises(ConfigError, match="positive") as err:
        BACKBONES.build({"name": name, "width": 0.0}, "model.backbone")
    assert err.value.path == "model.backbone.width"


class Clips(torch.utils.data.Dataset):
    num_classes = 3  # tiny_batch's labels: 0, 1, 2

    def __init__(self, n):
        self.batch = tiny_batch(n, size=32)
        self.labels = self.batch["label"]
        self.pose_available = torch.zeros(n, dtype=torch.bool)

    def __len__(self):
        return len(self.batch["label"])

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.batch.items()}


def test_the_trainer_starts_ssa_at_start_epoch(tmp_path):
    # Mixed_4f of 32-pixel clips: 1 x 2 x 2 positions
    cfg = load_config(CPU, ["train.epochs=2", "model.ssa.start_epoch=1", "model.ssa.focal=false",
                            "model.ssa.feature=Mixed_4f", "model.backbone.width=0.125",
                            "train.workers=0", "train.batch_size=2"])
    record = train(cfg, tmp_path, train_set=Clips(2), val_set=False, progress=False)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["train_ssa_rgb_depth"] == 0 for r in log] == [True, False]
    assert record["train_ssa_depth_rgb"] > 0


def test_cli_exports_one_network_of_a_multimodal_checkpoint(tmp_path, capsys):
    # a narrow C3D pair: few layers to trace
    cfg = load_config(CPU, ["data.size=32", "data.num_frames=4"])
    cfg["model"] = tiny_config(backbone={"name": "c3d", "width": 0.0625},
                               feature="MaxPool3d_5", classes=45)["model"]
    config = tmp_path / "mtut.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in cfg.items() if k != "_source"}))
    torch.manual_seed(0)
    model = build(cfg)
    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(checkpoint, {"model": model.state_dict()})
    out = tmp_path / "depth.pt"
    assert main(["export", str(config), str(checkpoint), "--format", "torchscript",
                 "--modality", "depth", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    with warnings.catch_warnings():  # torch 2.14 deprecates torch.jit.load
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(out))
    clip = torch.rand(2, 4, 1, 32, 32)
    with torch.no_grad():
        expected = model.deploy("depth")({"depth": clip})["logits"]
        torch.testing.assert_close(loaded(clip), expected, rtol=1e-4, atol=1e-5)
    assert count(loaded) == count(model.nets["depth"])
    assert main(["export", str(config), str(checkpoint), "--format", "torchscript",
                 "--modality", "flow"]) == 2
    assert "no 'flow' network" in capsys.readouterr().err
