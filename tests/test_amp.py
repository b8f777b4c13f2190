"""The GPU path of the trainer on CPU: bf16 and fp16 autocast, channels-last, gradient
accumulation, train.device (trainer.py). No GPU here, and torch.compile is not run (compiling
takes minutes on 2 cores): one test checks how the trainer calls it."""

import math

import pytest
import torch
from test_trainer import ToyClips, config, weights

from handmt.engine import check_config
from handmt.engine.trainer import float32, to_channels_last, train
from handmt.errors import ConfigError
from handmt.models import build


@pytest.mark.parametrize("amp", ["bf16", "fp16"])  # fp16: through the GradScaler
def test_one_mixed_precision_step_has_finite_losses_close_to_float32(tmp_path, amp):
    data = ToyClips(n=4)
    runs = {a: train(config(epochs=1, amp=a), tmp_path / a, train_set=data, val_set=False,
                     progress=False) for a in ("off", amp)}
    assert math.isfinite(runs[amp]["train_total"])
    assert runs[amp]["train_total"] == pytest.approx(runs["off"]["train_total"], rel=0.03)
    assert runs[amp]["train_total"] != runs["off"]["train_total"]  # half precision did run
    off, half = weights(tmp_path / "off"), weights(tmp_path / amp)
    assert all(v.dtype == off[k].dtype for k, v in half.items())  # weights stay float32


def test_ssa_is_computed_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = build({"model": {
        "modalities": ["rgb", "depth"],
        "ssa": {"feature": "Mixed_5c", "weight": 1.0, "focal": False},
        "backbone": {"name": "i3d", "width": 0.25},
        "heads": {"gesture": {"name": "clip_classifier", "num_classes": 3,
                              "feature": "Mixed_5c"}}}})
    # Mixed_5c of 2 x 2 x 2 positions: SSA compares their correlations
    batch = {"rgb": torch.randn(2, 16, 3, 64, 64), "depth": torch.randn(2, 16, 1, 64, 64),
             "label": torch.tensor([0, 2])}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(batch)
    assert outputs["rgb"]["ssa_feature"].dtype == torch.bfloat16
    losses = model.losses(float32(outputs), batch)  # as the trainer computes them
    for name in ("ssa_rgb_depth", "ssa_depth_rgb", "total"):  # bf16 if computed from bf16 maps
        assert losses[name].dtype == torch.float32
        assert 0 < losses[name].item() < math.inf


def test_accumulating_two_batches_of_2_is_one_batch_of_4(tmp_path):
    # C3D has no BatchNorm, so the batch split changes nothing but the order of the sums
    data = ToyClips(n=4)
    model = {"backbone": {"name": "c3d", "width": 0.125},
             "heads": {"gesture": {"name": "clip_classifier", "num_classes": 3, "dropout": 0.0,
                                   "feature": "conv2a"}}}
    whole, split = config(epochs=1), config(epochs=1, batch_size=2, accumulate=2)
    for cfg in (whole, split):
        cfg["model"] = model
    train(whole, tmp_path / "whole", train_set=data, val_set=False, progress=False)
    train(split, tmp_path / "split", train_set=data, val_set=False, progress=False)
    once, twice = weights(tmp_path / "whole"), weights(tmp_path / "split")
    for key in once:
        torch.testing.assert_close(twice[key], once[key], rtol=1e-5, atol=1e-6)
    torch.manual_seed(3)  # the runs' seed: build gives the weights before the step
    initial = build({"model": model}).state_dict()
    key = "backbone.layers.conv1a.0.weight"
    assert not torch.allclose(once[key], initial[key], rtol=0, atol=1e-5)


def test_channels_last_keeps_values_and_trains(tmp_path):
    model = build({"model": {"backbone": {"name": "i3d", "width": 0.125},
                             "heads": {"gesture": {"name": "clip_classifier", "num_classes": 3,
                                                   "feature": "Mixed_5c"}}}})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    to_channels_last(model)
    weight = model.backbone.layers.Conv3d_1a_7x7.conv3d.weight
    assert weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    data = ToyClips(n=4)
    runs = {flag: train(config(epochs=1, channels_last=flag), tmp_path / str(flag),
                        train_set=data, val_set=False, progress=False) for flag in (False, True)}
    assert runs[True]["train_total"] == pytest.approx(runs[False]["train_total"], rel=1e-4)


def test_train_options_are_checked():
    with pytest.raises(ConfigError, match="train.amp"):
        check_config({"train": {"amp": "fp8"}})
    with pytest.raises(ConfigError, match="train.accumulate: must be at least 1, got 0"):
        check_config({"train": {"accumulate": 0}})
    train_cfg = config(epochs=1, device="cpu", amp="bf16", accumulate=2, channels_last=True)
    check_config(train_cfg)


def test_train_compile_builds_one_graph_per_batch_shape(tmp_path, monkeypatch):
    # torch.compile's dynamic-shape graph, built when a second batch shape comes (the last,
    # smaller batch), fails to compile for ACTION networks (torch 2.14, `handmt train
    # configs/cpu_fpha_action.yaml train.compile=true`); with dynamic=False that run trains
    calls = []

    def spy(module, **options):
        calls.append(options)
        return module  # eager: compiling here would take minutes

    monkeypatch.setattr(torch, "compile", spy)
    train(config(epochs=1, compile=True), tmp_path, train_set=ToyClips(n=4), val_set=False,
          progress=False)
    assert calls == [{"dynamic": False}]
