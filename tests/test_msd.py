"""The Multi-Scale Decoder head and its depth loss (docs/design.md, "MSD"; MSD paper, III-C to
III-E)."""

import pytest
import torch

from handmt import load_config
from handmt.errors import ConfigError
from handmt.losses import depth_mse
from handmt.losses.depth import binarize, near_is_bright
from handmt.models import HEADS, build
from handmt.models.backbones import FeatureSpec

# ResNet-50's features the decoders read (tests/test_models.py checks them against timm).
RESNET50 = {"stem": FeatureSpec(64, 4, "b t c h w"), "res5": FeatureSpec(2048, 32, "b t c h w")}


def count(model):
    return sum(p.numel() for p in model.parameters())


def msd(feature_info=RESNET50, **kwargs):
    return HEADS.build({"name": "msd", **kwargs}, "model.heads.depth", feature_info=feature_info)


def action_msd():
    return build({"model": {"backbone": {"name": "resnet_tsn", "arch": "resnet18",
                                         "temporal": "action"},
                            "heads": {"gesture": {"name": "clip_classifier", "num_classes": 5,
                                                  "dropout": 0.0},
                                      "depth": {"name": "msd"}}}})


def test_decoder_parameter_counts_for_resnet50():
    # local: 64*32*16 (4x4 transposed conv) + 2*32 (BN) + 32*16 + 1 (output conv + bias)
    assert count(msd(use_global=False)) == 32_768 + 64 + 512 + 1 == 33_345
    # global: 2048*256*16 + 2*256 + 256*64*16 + 2*64 + 64*16 + 1
    assert count(msd(use_local=False)) == 8_388_608 + 512 + 262_144 + 128 + 1_024 + 1 == 8_652_417
    assert count(msd()) == 8_685_762  # 8.7M; the paper quotes 8.5M without hidden widths


def test_msd_is_dropped_by_deploy_leaving_action_nets_count():
    cfg = load_config("configs/egogesture_action_msd.yaml")
    model = build(cfg)
    assert count(model) == 27_895_919 + 8_685_762
    assert count(model.deploy()) == 27_895_919


def test_deploy_keeps_the_logits_exactly():
    torch.manual_seed(0)
    model = action_msd().eval()
    deployed = model.deploy()
    batch = {"rgb": torch.randn(2, 3, 3, 32, 32)}
    with torch.no_grad():
        full, lean = model(batch), deployed(batch)
    assert set(full) == {"logits", "depth_local", "depth_global"} and set(lean) == {"logits"}
    torch.testing.assert_close(lean["logits"], full["logits"], rtol=0, atol=0)


@pytest.mark.parametrize("size", [224, 112])
def test_outputs_are_full_and_quarter_size_decoded_from_stem_and_res5(size):
    torch.manual_seed(0)
    head = msd().eval()
    stem, res5 = size // 4, -(-size // 32)  # res5 rounds up: 112 px -> 4 x 4
    features = {"stem": torch.randn(1, 2, 64, stem, stem),
                "res5": torch.randn(1, 2, 2048, res5, res5)}
    with torch.no_grad():
        outputs = head(features, {})
        local = head.decoders["local"](features["stem"][0])
        overhanging = head.decoders["global"](features["res5"][0])
    assert outputs["depth_local"].shape == (1, 2, 1, size, size)
    assert outputs["depth_global"].shape == (1, 2, 1, size // 4, size // 4)
    torch.testing.assert_close(outputs["depth_local"][0], local, rtol=0, atol=0)
    # 112: 4 x 4 cells decode to 32 x 32, the top-left 28 x 28 cover the image
    assert overhanging.shape[-1] == 8 * res5
    torch.testing.assert_close(outputs["depth_global"][0],
                               overhanging[..., :size // 4, :size // 4], rtol=0, atol=0)


def test_decoders_run_on_a_real_backbone_at_224():
    model = action_msd()
    model.eval()
    with torch.no_grad():
        outputs = model({"rgb": torch.randn(1, 1, 3, 224, 224)})
    assert outputs["depth_local"].shape == (1, 1, 1, 224, 224)
    assert outputs["depth_global"].shape == (1, 1, 1, 56, 56)


def test_loss_is_zero_when_the_outputs_equal_the_targets():
    torch.manual_seed(0)
    depth = torch.rand(2, 3, 1, 16, 16)
    assert depth_mse(depth, depth) == 0  # same size: the resize is the identity
    flat = torch.full((2, 3, 1, 16, 16), 0.3)
    torch.testing.assert_close(depth_mse(torch.full((2, 3, 1, 4, 4), 0.3), flat),
                               torch.tensor(0.0), rtol=0, atol=1e-12)


def test_losses_are_weighted_mse_against_the_target_frames():
    head = msd()
    depth = torch.full((1, 2, 1, 8, 8), 0.5)
    outputs = {"depth_local": torch.zeros(1, 2, 1, 8, 8),
               "depth_global": torch.zeros(1, 2, 1, 2, 2)}
    losses = head.loss(outputs, {"depth": depth})
    torch.testing.assert_close(losses["depth_local"], torch.tensor(0.25))  # weight 1 * 0.5^2
    torch.testing.assert_close(losses["depth_global"], torch.tensor(0.0025))  # 0.01 * 0.5^2


def test_binarization_of_frames_thresholds_them_as_distributed():
    # 8-bit frames as the paper's datasets distribute them: near is bright, background dark
    frames = torch.tensor([[0.0, 0.03], [0.05, 0.9]]).reshape(1, 1, 1, 2, 2)
    mask = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).reshape(1, 1, 1, 2, 2)
    zeros = torch.zeros(1, 1, 1, 2, 2)
    torch.testing.assert_close(depth_mse(zeros, frames), (frames ** 2).mean())
    torch.testing.assert_close(depth_mse(zeros, frames, 0.04, "frames"), torch.tensor(0.5))
    assert depth_mse(mask, frames, 0.04, "frames") == 0


# Metric depth (z / 1000 mm) seen from above a hand: a hand at 300-400 mm across the middle row,
# a table at 900 mm, a near object at 700 mm and two holes (0, no reading), one inside the hand.
METRIC = torch.tensor([[0.9, 0.9, 0.0, 0.9],
                       [0.3, 0.35, 0.0, 0.4],
                       [0.9, 0.7, 0.9, 0.9]]).reshape(1, 1, 1, 3, 4)
HAND = torch.tensor([[0.0, 0.0, 0.0, 0.0],
                     [1.0, 1.0, 0.0, 1.0],
                     [0.0, 0.0, 0.0, 0.0]]).reshape(1, 1, 1, 3, 4)


def test_metric_depth_becomes_near_is_bright_frames():
    torch.testing.assert_close(near_is_bright(METRIC), torch.tensor(
        [[0.1, 0.1, 0.0, 0.1], [0.7, 0.65, 0.0, 0.6], [0.1, 0.3, 0.1, 0.1]]).reshape(METRIC.shape))


def test_binarized_metric_depth_marks_the_near_hand_not_every_valid_pixel():
    # near-is-bright above 0.5: nearer than 500 mm, which is the hand alone; holes stay 0
    assert torch.equal(binarize(METRIC, 0.5, "metric"), HAND)
    # the paper's 10 of 255 on near-is-bright frames marks everything within 961 mm, not holes
    assert torch.equal(binarize(METRIC, 0.0393, "metric"), (METRIC > 0).float())
    assert depth_mse(HAND, METRIC, 0.5) == 0
    # the MSD head passes its encoding on: the same map read as frames marks the far table
    head = msd(binarize_threshold=0.5, use_global=False)
    assert head.loss({"depth_local": HAND}, {"depth": METRIC})["depth_local"] == 0
    frames_head = msd(binarize_threshold=0.5, depth_encoding="frames", use_global=False)
    table = binarize(METRIC, 0.5, "frames")
    assert torch.equal(table, torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0],
                                            [1.0, 1.0, 1.0, 1.0]]).reshape(METRIC.shape))
    assert frames_head.loss({"depth_local": table}, {"depth": METRIC})["depth_local"] == 0


def test_ablations_keep_one_decoder_and_both_off_is_an_error():
    torch.manual_seed(0)
    features = {"stem": torch.randn(1, 1, 64, 8, 8), "res5": torch.randn(1, 1, 2048, 1, 1)}
    batch = {"depth": torch.rand(1, 1, 1, 32, 32)}
    local_only, global_only = msd(use_global=False), msd(use_local=False)
    assert set(local_only(features, batch)) == {"depth_local"}
    assert set(global_only.loss(global_only(features, batch), batch)) == {"depth_global"}
    with pytest.raises(ConfigError, match="model.heads.depth.use_local"):
        msd(use_local=False, use_global=False)
    with pytest.raises(ConfigError, match="model.heads.depth.local_widths"):
        msd(local_widths=[32, 16])  # 3 doublings from stride 4


def test_depth_loss_trains_the_backbone_not_the_classifier():
    torch.manual_seed(0)
    model = action_msd()
    batch = {"rgb": torch.randn(2, 2, 3, 32, 32), "depth": torch.rand(2, 2, 1, 32, 32),
             "label": torch.tensor([0, 1])}
    losses = model.losses(model(batch), batch)
    torch.testing.assert_close(losses["total"],
                               losses["cls"] + losses["depth_local"] + losses["depth_global"])
    (losses["depth_local"] + losses["depth_global"]).backward()
    assert model.backbone.net.conv1.weight.grad.abs().sum() > 0
    assert model.heads["gesture"].fc.weight.grad is None


def test_a_batch_without_the_target_names_it():
    head = msd(target="mask")
    outputs = {"depth_local": torch.zeros(1, 1, 1, 8, 8),
               "depth_global": torch.zeros(1, 1, 1, 2, 2)}
    with pytest.raises(KeyError, match="mask"):
        head.loss(outputs, {"depth": torch.zeros(1, 1, 1, 8, 8)})
