"""The model contract (handmt/models/base.py): every model kind of the configs predicts exactly
the Prediction fields its heads provide, with the documented shapes, and deploys to a model
whose predictions for the kept heads are the same."""

from dataclasses import fields

import pytest
import torch

from handmt import load_config
from handmt.models import Model, Prediction, build

B, T, SIZE, CLASSES = 2, 4, 32, 3
RESNET = ["model.backbone.arch=resnet10t"]
# config, overrides, the fields predicted with ground truth in the batch, those deploy() keeps
KINDS = {
    "tsn": ("cpu_fpha_tsn.yaml", RESNET, {"logits"}, {"logits"}),
    "action_msd": ("cpu_fpha_action_msd.yaml", RESNET, {"logits", "depth"}, {"logits"}),
    "collab": ("cpu_fpha_collab.yaml", [*RESNET, "model.heads.gesture.joint_channels=2"],
               {"logits", "joints2d", "rel_depth", "joints3d"},
               {"logits", "joints2d", "rel_depth", "joints3d"}),
    "segmentation": ("cpu_fpha_seg.yaml", RESNET, {"logits", "mask"}, {"logits", "mask"}),
    "mtut": ("cpu_fpha_mtut.yaml", [], {"logits", "per_modality"}, None),
    "skeleton": ("fpha_skeleton.yaml", [], {"logits"}, {"logits"}),
}
SHAPES = {"logits": (B, CLASSES), "joints2d": (B, T, 21, 2), "rel_depth": (B, T, 21),
          "joints3d": (B, T, 21, 3),
          "depth": (B, T, SIZE, SIZE), "mask": (B, T, SIZE, SIZE)}


def model_of(kind):
    config, overrides = KINDS[kind][:2]
    cfg = load_config(f"configs/{config}",
                      [*overrides, f"model.heads.gesture.num_classes={CLASSES}",
                       f"data.synthetic.classes={CLASSES}"])
    torch.manual_seed(0)
    return build(cfg).eval()


def batch_of():
    """Every modality and label a model kind reads, as a dataset would give them."""
    g = torch.Generator().manual_seed(0)
    joints3d = torch.randn(B, T, 21, 3, generator=g) * 30 + torch.tensor([0.0, 0.0, 400.0])
    K = torch.tensor([[40.0, 0, SIZE / 2], [0, 40.0, SIZE / 2], [0, 0, 1]]).expand(B, 3, 3)
    uvw = joints3d @ K[0].T
    return {"rgb": torch.randn(B, T, 3, SIZE, SIZE, generator=g),
            "depth": torch.rand(B, T, 1, SIZE, SIZE, generator=g),
            "joints": torch.randn(B, T, 21, 3, generator=g), "joints3d": joints3d,
            "joints2d": uvw[..., :2] / uvw[..., 2:], "K": K, "label": torch.arange(B)}


def provided(prediction):
    """Names of the Prediction fields that are set."""
    return {f.name for f in fields(prediction)
            if getattr(prediction, f.name) is not None
            and not (isinstance(getattr(prediction, f.name), dict)
                     and not getattr(prediction, f.name))}


def assert_shapes(prediction):
    for name in provided(prediction) - {"per_modality"}:
        assert getattr(prediction, name).shape == SHAPES[name], name


@pytest.mark.parametrize("kind", list(KINDS))
def test_predict_gives_exactly_the_fields_of_the_heads_with_their_shapes(kind):
    model, batch = model_of(kind), batch_of()
    assert isinstance(model, Model)
    model.set_epoch(0)  # every kind takes it
    with torch.no_grad():
        prediction = model.predict(batch)
    assert isinstance(prediction, Prediction)
    assert provided(prediction) == KINDS[kind][2]
    assert_shapes(prediction)
    for own in prediction.per_modality.values():
        assert provided(own) == {"logits"}
        assert_shapes(own)
    if prediction.mask is not None:
        assert 0 <= prediction.mask.min() and prediction.mask.max() <= 1


@pytest.mark.parametrize("kind", ["tsn", "action_msd", "segmentation", "skeleton"])
def test_hand_model_predictions_are_the_heads_outputs_decoded(kind):
    model, batch = model_of(kind), batch_of()
    with torch.no_grad():
        outputs, prediction = model(batch), model.predict(batch)
    torch.testing.assert_close(prediction.logits, outputs["logits"], rtol=0, atol=0)
    if kind == "action_msd":  # the local decoder's depth, at the input size
        torch.testing.assert_close(prediction.depth, outputs["depth_local"][:, :, 0],
                                   rtol=0, atol=0)
    if kind == "segmentation":
        torch.testing.assert_close(prediction.mask, outputs["mask_logits"][:, :, 0].sigmoid())


def test_without_intrinsics_the_collaborative_model_predicts_no_3d_joints():
    model, batch = model_of("collab"), batch_of()
    del batch["K"]  # a video: no camera, no ground-truth root depth
    with torch.no_grad():
        assert provided(model.predict(batch)) == {"logits", "joints2d", "rel_depth"}


@pytest.mark.parametrize("kind", [k for k, v in KINDS.items() if v[3] is not None])
def test_deploy_keeps_the_predictions_of_the_kept_heads(kind):
    model, batch = model_of(kind), batch_of()
    with torch.no_grad():
        prediction = model.predict(batch)
        deployed = model.deploy()
        alone = deployed.predict(batch)
        kept = model.deploy(model.modalities[0], keep_auxiliary=True).predict(batch)
    assert provided(alone) == KINDS[kind][3] and not deployed.training
    for name in provided(alone):
        torch.testing.assert_close(getattr(alone, name), getattr(prediction, name), rtol=0,
                                   atol=0)
    assert provided(kept) == provided(prediction)


def test_deploy_refuses_a_modality_the_model_does_not_read():
    model = model_of("tsn")
    assert model.modalities == ["rgb"] and model_of("skeleton").modalities == ["joints"]
    with pytest.raises(ValueError, match="reads rgb clips, not depth"):
        model.deploy("depth")


def test_mtut_deploys_each_network_with_its_own_predictions():
    model, batch = model_of("mtut"), batch_of()
    assert model.modalities == ["rgb", "depth"]
    with torch.no_grad():
        prediction = model.predict(batch)
        for modality in model.modalities:
            alone = model.deploy(modality).predict({modality: batch[modality]})
            torch.testing.assert_close(alone.logits, prediction.per_modality[modality].logits,
                                       rtol=0, atol=0)
    probs = torch.stack([p.logits.softmax(1) for p in prediction.per_modality.values()])
    torch.testing.assert_close(prediction.logits, probs.mean(0).log())
