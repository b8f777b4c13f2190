"""The training loop: resume determinism, label masks, checkpoints."""

import json

import pytest
import torch
from torch.utils.data import Dataset

from handmt.engine.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from handmt.engine.trainer import CHECKPOINT, LOG, train


class ToyClips(Dataset):
    """Random clips whose class is the colour channel that is brightest (learnable quickly)."""

    def __init__(self, n=12, classes=3, seed=0, unlabelled=()):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % classes
        self.clips = torch.rand(n, 2, 3, 16, 16, generator=g)
        for i, label in enumerate(self.labels):
            self.clips[i, :, label] += 1.0
        self.unlabelled = set(unlabelled)
        self.num_classes = classes
        self.classes = [str(c) for c in range(classes)]
        self.pose_available = torch.zeros(n, dtype=torch.bool)  # no pose labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        # Training-time randomness comes from the global RNGs, as a dataset's augmentation does.
        noise = 0.05 * torch.randn(2, 3, 16, 16)
        label = -1 if i in self.unlabelled else int(self.labels[i])
        return {"rgb": self.clips[i] + noise, "label": torch.tensor(label),
                "video": torch.tensor(i)}


def config(epochs=2, **train):
    return {"model": {"backbone": {"name": "resnet_tsn", "arch": "resnet10t"},
                      "heads": {"gesture": {"name": "clip_classifier", "num_classes": 3}}},
            "data": {"name": "fpha"},
            "train": {"epochs": epochs, "batch_size": 4, "workers": 0, "seed": 3,
                      "optimizer": {"name": "sgd", "lr": 0.05},
                      "schedule": {"name": "cosine", "warmup_epochs": 1}, **train}}


def weights(run_dir):
    return load_checkpoint(run_dir / CHECKPOINT)["model"]


def test_two_epochs_equal_one_plus_resume_one(tmp_path):
    data = ToyClips()
    train(config(), tmp_path / "straight", train_set=data, val_set=data, progress=False)
    train(config(), tmp_path / "sliced", train_set=data, val_set=data, progress=False,
          stop_after=1)
    assert load_checkpoint(tmp_path / "sliced" / CHECKPOINT)["epoch"] == 1
    train(config(), tmp_path / "sliced", train_set=data, val_set=data, progress=False,
          resume=True)
    straight, sliced = weights(tmp_path / "straight"), weights(tmp_path / "sliced")
    assert straight.keys() == sliced.keys()
    for key in straight:
        assert torch.equal(straight[key], sliced[key]), key
    first = weights(tmp_path / "straight")
    train(config(), tmp_path / "other", train_set=data, val_set=False, progress=False,
          stop_after=1)
    assert not all(torch.equal(first[k], v) for k, v in weights(tmp_path / "other").items())
    log = [json.loads(line) for line in open(tmp_path / "sliced" / LOG)]
    assert [r["epoch"] for r in log] == [1, 2]


def test_unlabelled_clips_do_not_change_the_weights(tmp_path):
    # One step on a batch that holds only unlabelled clips: the loss is zero and so is every
    # gradient; SGD without weight decay or momentum history leaves the weights unchanged.
    data = ToyClips(n=4, unlabelled=range(4))
    cfg = config(epochs=1, batch_size=4, clip_grad=None,
                 optimizer={"name": "sgd", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.0})
    torch.manual_seed(0)
    record = train(cfg, tmp_path / "run", train_set=data, val_set=False, progress=False)
    assert record["train_total"] == 0.0
    from handmt.engine.trainer import seed_everything
    from handmt.models import build
    seed_everything(3)
    untrained = build(cfg).state_dict()
    trained = weights(tmp_path / "run")
    for key, value in untrained.items():
        if "running" in key or "num_batches" in key:
            continue  # BatchNorm statistics follow the inputs, not the loss
        assert torch.equal(value, trained[key]), key


def test_training_learns_the_toy_task_and_logs_json_lines(tmp_path):
    data = ToyClips(n=24)
    record = train(config(epochs=4, optimizer={"name": "sgd", "lr": 0.01}), tmp_path,
                   train_set=data, val_set=data, progress=False)
    assert record["val_top1"] == 1.0
    lines = [json.loads(line) for line in open(tmp_path / LOG)]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert lines[-1]["train_total"] < lines[0]["train_total"]
    assert lines[0]["lr"] == pytest.approx(0.005)  # warm-up epoch: half the base rate


class FailsToPickle:
    def __reduce__(self):
        raise RuntimeError("disk full")


def test_checkpoint_is_atomic_and_loads_with_weights_only(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 1})
    # A save that fails half-way leaves the previous checkpoint intact and no temp file.
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "bad": FailsToPickle()})
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_a_checkpoint_of_another_model_is_refused_with_its_name(tmp_path):
    from handmt.models import build
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": build(config()).state_dict()})
    other = config()
    other["model"]["heads"]["gesture"]["num_classes"] = 7
    with pytest.raises(ValueError, match="another model") as err:
        load_model_state(build(other), load_checkpoint(path), path)
    assert "ck.pt" in str(err.value) and "heads.gesture.fc.weight" in str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
