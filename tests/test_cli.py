"""The `handmt` command as a user runs it: synth, train, resume, eval, and its errors."""

import json

import pytest
from fixtures import tiny_overrides as tiny

from handmt.cli import main


def test_synth_writes_the_fpha_layout(synth_root):
    split = (synth_root / "data_split_action_recognition.txt").read_text().split("\n")
    assert split[0] == "Training 6" and "Test 6" in split
    assert len(list((synth_root / "Hand_pose_annotation_v1").rglob("skeleton.txt"))) == 12


def test_train_resume_and_eval(synth_root, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = "configs/cpu_fpha_tsn.yaml"
    assert main(["train", cfg, *tiny(synth_root), "train.epochs=1", "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["epoch"] == 1 and 0.0 <= first["val_top1"] <= 1.0
    # overrides may follow the options too; more epochs than the checkpoint's config is a
    # difference that --force accepts
    resume = ["train", cfg, "--out", str(out), "--resume", *tiny(synth_root), "train.epochs=2"]
    assert main(resume) == 2
    assert "train.epochs: 1 -> 2" in capsys.readouterr().err
    assert main([*resume, "--force"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["epoch"] == 2
    assert [json.loads(line)["epoch"] for line in open(out / "log.jsonl")] == [1, 2]
    assert main(["eval", cfg, str(out / "checkpoint.pt"), *tiny(synth_root),
                 "eval.clips=2"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["videos"] == 6 and 0.0 <= metrics["top1"] <= 1.0


def test_errors_name_the_problem_and_exit_2(synth_root, tmp_path, capsys):
    assert main(["train", "configs/cpu_fpha_tsn.yaml", "train.epoch=1"]) == 2
    err = capsys.readouterr().err
    assert "train.epoch" in err and "did you mean 'epochs'" in err
    assert main(["eval", "configs/cpu_fpha_tsn.yaml", str(tmp_path / "none.pt"),
                 *tiny(synth_root)]) == 2
    assert "none.pt" in capsys.readouterr().err
    assert main(["train", "configs/cpu_fpha_tsn.yaml", f"data.root={tmp_path}/nowhere"]) == 2
    assert "data.root" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["train", "configs/cpu_fpha_tsn.yaml", "--outt", str(tmp_path)])
    assert exit_.value.code == 2 and "unrecognized arguments: --outt" in capsys.readouterr().err
