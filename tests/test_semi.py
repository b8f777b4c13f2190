"""Semi-supervised training (`train.semi`, FixMatch): the loss against a hand-computed case, and
a run on the real FPHA skeletons with most gesture labels withheld."""

import json
import math
from pathlib import Path

import pytest
import torch

from handmt import ConfigError, load_config
from handmt.data import build_dataset
from handmt.engine.semi import SemiOptions, fixmatch_loss, paired_views
from handmt.engine.trainer import LOG, train
from handmt.models.base import Prediction

DEV = Path(__file__).resolve().parents[2] / "shared" / "fpha-dev"


class Echo:
    """A model whose logits are the batch's `x`."""

    def predict(self, batch):
        return Prediction(logits=batch["x"])


def test_fixmatch_loss_by_hand():
    weak = torch.tensor([[9.0, 0.0], [0.0, 0.0], [0.0, 9.0], [5.0, 0.0]])
    strong = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    batch = {"x": weak, "label": torch.tensor([-1, -1, -1, 0]),
             "strong": {"x": strong, "label": torch.tensor([-1, -1, -1, 0])}}
    loss = fixmatch_loss(Echo(), batch, SemiOptions(weight=2.0, threshold=0.9))
    # unlabelled: rows 0-2; row 1 (p = 0.5) is below the threshold; pseudo-labels 0 and 1
    ce0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(2)))
    ce2 = -math.log(math.exp(1) / (1 + math.exp(1)))
    assert loss.item() == pytest.approx(2.0 * (ce0 + ce2) / 3, rel=1e-5)
    labelled = {**batch, "label": torch.zeros(4, dtype=torch.long)}
    assert fixmatch_loss(Echo(), labelled, SemiOptions()).item() == 0.0


def test_semi_options_are_checked_with_their_keys():
    with pytest.raises(ConfigError, match="train.semi.thresh: unknown argument"):
        load_config("configs/fpha_skeleton.yaml", ["train.semi={thresh: 0.9}"])
    with pytest.raises(ConfigError, match="train.semi.augment.rotate: unknown argument"):
        load_config("configs/fpha_skeleton.yaml", ["train.semi={augment: {rotate: 30}}"])


@pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at {DEV}")
def test_a_semi_supervised_run_on_real_skeletons_logs_its_term(tmp_path):
    cfg = load_config("configs/fpha_skeleton.yaml", [
        f"data.root={DEV}", "train.epochs=2", "train.eval_every=2",
        "data.withhold=[{task: gesture, keep_fraction: 0.1, seed: 0}]",
        "train.semi={threshold: 0.0, augment: {rotation: 30.0, noise_mm: 3.0}}"])
    train(cfg, tmp_path / "run", val_set=False, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / LOG).read_text().splitlines()]
    # threshold 0: every unlabelled clip (90 % of them) gives a term
    assert all(r["train_semi"] > 0 and math.isfinite(r["train_semi"]) for r in records)


@pytest.mark.skipif(not DEV.is_dir(), reason=f"the real FPHA skeletons are not at {DEV}")
def test_the_strong_view_is_the_same_sequence_and_the_unlabelled_are_the_withheld():
    cfg = load_config("configs/fpha_skeleton.yaml", [
        f"data.root={DEV}", "data.withhold=[{task: gesture, keep_fraction: 0.1, seed: 0}]"])
    labels = build_dataset({**cfg["data"], "withhold": None}, "train").labels
    # an identity "strong" augmentation gives back the un-augmented clip of the same sequence
    identity = {"min_duration": 1.0, "rotation": 0.0, "scale": [1.0, 1.0], "noise_mm": 0.0}
    paired = paired_views(build_dataset(cfg["data"], "train"), cfg["data"],
                          SemiOptions(augment=identity))
    plain = build_dataset({**cfg["data"], "augment": None}, "train")
    withheld = paired.labels < 0
    assert withheld.sum() == len(labels) - 45  # one labelled sequence per class is kept
    assert (paired.labels[~withheld] == labels[~withheld]).all()
    for index in (0, int(withheld.argmax()), len(paired) - 1):
        item = paired[index]
        assert item["label"] == item["strong"]["label"] == paired.labels[index]
        assert torch.equal(item["strong"]["joints"], plain[index]["joints"])
        assert not torch.equal(item["joints"], plain[index]["joints"])  # the weak view: augmented
