"""Issue 18's probes, each reproduced: no silent data loss, no silent wrong training, every bad
input named in one line."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from fixtures import MINI_TEST, build_with_warnings, tiny_overrides, write_mini_fpha
from test_trainer import ToyClips, config

from handmt.atomic import remove_stale_temps
from handmt.cli import main
from handmt.data.fpha import FPHADataset
from handmt.data.frames import BadFrame, decode_image
from handmt.engine.checkpoint import load_checkpoint, save_checkpoint
from handmt.engine.trainer import CHECKPOINT, CONFIG, LOG, train
from handmt.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TSN = str(REPO / "configs" / "cpu_fpha_tsn.yaml")


def run(cfg, out, **kwargs):
    data = ToyClips()
    return train(cfg, out, train_set=data, val_set=data, progress=False, **kwargs)


def log_epochs(out):
    return [json.loads(line)["epoch"] for line in (out / LOG).read_text().splitlines()]


def same_weights(first, second):
    a = load_checkpoint(first / CHECKPOINT)["model"]
    b = load_checkpoint(second / CHECKPOINT)["model"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def umask_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# -- labels the heads cannot score ----------------------------------------------------------

def test_more_classes_than_the_head_is_refused_before_training(tmp_path):
    cfg = config()
    cfg["model"]["heads"]["gesture"]["num_classes"] = 2  # ToyClips has labels 0, 1, 2
    with pytest.raises(ConfigError, match=r"model.heads.gesture.num_classes: is 2, but the "
                                          r"training set has 3 classes"):
        run(cfg, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written: the folder is no run to refuse


# -- resume ---------------------------------------------------------------------------------

def test_resume_refuses_another_config_naming_the_keys_and_force_accepts(tmp_path, capsys):
    run(config(), tmp_path, stop_after=1)
    other = config(batch_size=2, optimizer={"name": "sgd", "lr": 0.1})
    with pytest.raises(ValueError) as err:
        run(other, tmp_path, resume=True)
    message = str(err.value)
    assert "train.batch_size: 4 -> 2; train.optimizer.lr: 0.05 -> 0.1" in message
    assert "--force" in message and "\n" not in message
    assert log_epochs(tmp_path) == [1]  # the refused resume changed nothing
    run(other, tmp_path, resume=True, force=True)
    assert "--force: resuming" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / CHECKPOINT)["config"]["train"]["batch_size"] == 2
    assert log_epochs(tmp_path) == [1, 2]


def test_resume_of_a_finished_run_or_a_bare_checkpoint_is_refused(tmp_path):
    run(config(), tmp_path)
    with pytest.raises(ValueError, match="has trained 2 epochs and train.epochs is 2: nothing "
                                         "left to resume"):
        run(config(), tmp_path, resume=True)
    with pytest.raises(ValueError, match="train.epochs: 2 -> 1"):  # fewer epochs: a difference
        run(config(epochs=1), tmp_path, resume=True)
    bare = tmp_path / "bare"
    save_checkpoint(bare / CHECKPOINT, {"model": load_checkpoint(tmp_path / CHECKPOINT)["model"]})
    with pytest.raises(ValueError, match=f"{bare / CHECKPOINT} cannot be resumed: it lacks "
                                         "optimizer, scheduler, epoch, rng, config, log"):
        run(config(), bare, resume=True)


# -- run folders ----------------------------------------------------------------------------

def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path):
    run(config(epochs=1), tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in (CHECKPOINT, LOG, CONFIG)}
    with pytest.raises(ValueError, match=f"{tmp_path} already holds a run \\(checkpoint.pt, "
                                         "log.jsonl, config.yaml(, tensorboard)?\\): --resume "
                                         "continues it, --overwrite replaces it"):
        run(config(epochs=2), tmp_path)
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    run(config(epochs=2), tmp_path, overwrite=True)
    assert log_epochs(tmp_path) == [1, 2]
    for name in (CHECKPOINT, LOG, CONFIG):  # the umask's mode, not mkstemp's 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == umask_mode(), name
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=f"run folder {tmp_path / 'file'} is a file"):
        run(config(), tmp_path / "file")


CHILD = """
import io, sys, time
import torch
sys.path.insert(0, {tests!r})
from test_trainer import ToyClips, config
from handmt.engine import trainer

def stall():
    print("stalled", flush=True)
    time.sleep(600)

save, save_log = torch.save, trainer.RunLog.save

def half_written(state, path):  # epoch 2's checkpoint: half its bytes, then the kill
    if state["epoch"] == 2:
        buffer = io.BytesIO()
        save(state, buffer)
        open(path, "wb").write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        stall()
    save(state, path)

def log_after_checkpoint(log):  # epoch 2's checkpoint is written, its log record not yet
    if len(log.records) == 2:
        stall()
    save_log(log)

if {moment!r} == "checkpoint":
    torch.save = half_written
else:
    trainer.RunLog.save = log_after_checkpoint
data = ToyClips()
trainer.train(config(), {out!r}, train_set=data, val_set=data, progress=False)
"""


@pytest.fixture
def one_thread():
    """The killed child trains on one thread; bit-equal weights need the same here (two threads
    sum in another order)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("moment", ["checkpoint", "log"])
def test_a_sigkill_while_writing_loses_nothing_and_leaves_nothing(tmp_path, moment, one_thread):
    out = tmp_path / "killed"
    code = CHILD.format(tests=str(Path(__file__).parent), moment=moment, out=str(out))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"stalled\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    temps = [p.name for p in out.iterdir() if p.suffix == ".tmp"]
    if moment == "checkpoint":  # the half-written file, never renamed over the checkpoint
        assert temps == [f".{CHECKPOINT}.{child.pid}.tmp"]
        assert load_checkpoint(out / CHECKPOINT)["epoch"] == 1
    else:
        assert temps == [] and load_checkpoint(out / CHECKPOINT)["epoch"] == 2
    assert log_epochs(out) == [1]

    if moment == "checkpoint":
        run(config(), out, resume=True)
    else:  # both epochs committed: nothing left to train, yet the resume restores the record
        with pytest.raises(ValueError, match="has trained 2 epochs and train.epochs is 2"):
            run(config(), out, resume=True)
    run(config(), tmp_path / "straight")
    assert same_weights(out, tmp_path / "straight")
    assert log_epochs(out) == [1, 2]  # no record lost, none duplicated
    assert [p for p in out.iterdir() if p.suffix == ".tmp"] == []


def test_stale_temporary_files_of_dead_processes_only_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead, alive = int(finished.stdout), os.getpid()
    for pid in (dead, alive):
        (tmp_path / f".checkpoint.pt.{pid}.tmp").write_bytes(b"partial")
    (tmp_path / "notes.tmp").write_text("not ours")
    assert remove_stale_temps(tmp_path) == [tmp_path / f".checkpoint.pt.{dead}.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".checkpoint.pt.{alive}.tmp",
                                                          "notes.tmp"]


# -- the command line: every bad input named in one line, exit 2 ----------------------------

def tiny(root):
    return [*tiny_overrides(root), "train.epochs=1"]


def error_of(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("handmt ") and err.count("\n") == 1, err  # one line
    return err


@pytest.mark.parametrize("override, named", [
    ("train.optimizer=[1", "train.optimizer: the value '[1' is not valid YAML"),
    ("train.eval_every=0", "train.eval_every: must be at least 1, got 0"),
    ("train.epochs=0", "train.epochs: must be at least 1, got 0"),
    ("train.epochs=-1", "train.epochs: must be at least 1, got -1"),
    ("train.batch_size=0", "train.batch_size: must be at least 1, got 0"),
    ("data.size=-5", "data.size: must be at least 1, got -5"),
    ("model.backbone.arch=resnet99", "model.backbone.arch: 'resnet99' is not a timm ResNet"),
])
def test_bad_values_name_their_config_key(synth_root, tmp_path, capsys, override, named):
    assert named in error_of(["train", TSN, *tiny(synth_root), override, "--out",
                              str(tmp_path / "run")], capsys)


def test_a_split_label_beyond_the_classes_names_the_key(synth_root, tmp_path, capsys):
    root = tmp_path / "synth"
    subprocess.run(["cp", "-r", str(synth_root), str(root)], check=True)
    split = root / "data_split_action_recognition.txt"
    lines = split.read_text().splitlines()
    lines[1] = lines[1].rsplit(" ", 1)[0] + " 7"  # the first training sequence: label 7
    split.write_text("\n".join(lines) + "\n")
    err = error_of(["train", TSN, *tiny(root), "--out", str(tmp_path / "run")], capsys)
    assert "model.heads.gesture.num_classes: is 3, but the training set has 8 classes" in err


def test_files_where_folders_belong_and_unreadable_paths_are_named(synth_root, tmp_path,
                                                                   capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    err = error_of(["train", TSN, *tiny(synth_root), "--out", str(a_file)], capsys)
    assert f"run folder {a_file} is a file" in err
    monkeypatch.setenv("HANDMT_CACHE", str(a_file))
    err = error_of(["train", TSN, *tiny(synth_root), "data.cache=true", "--out",
                    str(tmp_path / "run")], capsys)
    assert f"the cache folder {a_file} ($HANDMT_CACHE" in err
    # an OSError other than FileNotFoundError: a folder given as the config
    assert f"Is a directory: '{tmp_path}'" in error_of(["train", str(tmp_path)], capsys)


class Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_predict_refuses_a_pickle_payload_without_advising_weights_only_false(tmp_path,
                                                                              capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {}, "payload": Payload()}, path)
    err = error_of(["predict", str(path), "--video", str(tmp_path / "v.mp4"), "--out",
                    str(tmp_path / "o.mp4")], capsys)
    assert f"{path} is not a handmt checkpoint" in err and "refused" in err
    assert "weights_only" not in err
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, {"model": {"w": torch.ones(100)}})
    truncated.write_bytes(truncated.read_bytes()[:200])
    err = error_of(["predict", str(truncated), "--video", "v.mp4", "--out", "o.mp4"], capsys)
    assert f"{truncated} is not a readable handmt checkpoint (truncated or corrupt" in err


# -- frames ---------------------------------------------------------------------------------

def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_a_truncated_jpeg_is_refused_though_opencv_decodes_it(tmp_path):
    path = tmp_path / "frame.jpeg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    truncate(path)
    assert cv2.imread(str(path)) is not None  # OpenCV returns a half-grey image
    with pytest.raises(BadFrame, match=f"{path}: truncated JPEG"):
        decode_image(path, cv2.IMREAD_COLOR)
    path.write_bytes(b"\xff\xd8 not a jpeg \xff\xd9")
    with pytest.raises(BadFrame, match=f"{path}: not an image OpenCV can decode"):
        decode_image(path, cv2.IMREAD_COLOR)


def load_cached(root, cache_dir, strict=False):
    return build_with_warnings(FPHADataset, root, split="test", size=24,
                               modalities=("rgb", "depth"), cache_dir=str(cache_dir),
                               strict=strict)


def test_a_video_with_a_bad_frame_is_skipped_with_its_name_and_never_cached(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    bad = root / "Video_files" / MINI_TEST[0][0] / "color" / "color_0002.jpeg"
    truncate(bad)
    dataset, caught = load_cached(root, tmp_path / "cache")
    skipped = [m for m in caught if "bad frame" in m]
    assert len(skipped) == 1 and f"{bad}: truncated JPEG" in skipped[0]
    assert [v.name for v in dataset.videos] == [MINI_TEST[1][0]]
    assert dataset.labels.tolist() == [MINI_TEST[1][1]]
    with h5py.File(dataset.cache.path) as file:  # only the good video's frames are stored
        assert file["rgb"].shape[0] == dataset.videos[0].num_frames
    every = np.arange(dataset.videos[0].num_frames)
    cached, direct = dataset.cache.read(0, every), dataset.read_frames(0, every)
    for key in direct:
        np.testing.assert_array_equal(cached[key], direct[key], err_msg=key)
    built = dataset.cache.path.stat().st_ino
    again, caught = load_cached(root, tmp_path / "cache")  # known from the file: no rebuild
    assert again.cache.path.stat().st_ino == built and len(again) == 1
    assert any(f"{bad}: truncated JPEG" in m for m in caught)
    with pytest.raises(ValueError, match=f"{bad}: truncated JPEG"):
        load_cached(root, tmp_path / "cache", strict=True)


def test_a_bit_flip_in_the_cache_is_caught_and_the_cache_rebuilt(tmp_path):
    root = write_mini_fpha(tmp_path / "fpha")
    dataset, _ = load_cached(root, tmp_path / "cache")
    path = dataset.cache.path
    built = path.stat().st_ino
    with h5py.File(path) as file:
        offset = file["rgb"].id.get_chunk_info(3).byte_offset  # row 3: video 0, frame 3
    with open(path, "r+b") as file:
        file.seek(offset + 5)
        byte = file.read(1)
        file.seek(offset + 5)
        file.write(bytes([byte[0] ^ 0x10]))
    fresh = load_cached(root, tmp_path / "cache")[0]
    assert path.stat().st_ino == built  # the signature still matches: the file is kept
    with pytest.warns(UserWarning, match=f"{path}: damaged cache .*; rebuilding it"):
        frames = fresh.cache.read(0, [3, 1])
    assert path.stat().st_ino != built
    direct = fresh.read_frames(0, [3, 1])
    for key in direct:
        np.testing.assert_array_equal(frames[key], direct[key], err_msg=key)
    assert path.stat().st_mode & 0o777 == umask_mode()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_gesture_sample_with_a_truncated_frame_is_skipped_and_its_views_follow(tmp_path):
    from test_gesture_datasets import write_egogesture

    from handmt.data import EgoGestureDataset
    root = write_egogesture(tmp_path / "ego", images="")
    bad = root / "Subject03" / "Scene1" / "Color" / "rgb1" / "000016.jpg"  # in Group1.csv:2
    truncate(bad)
    dataset, caught = build_with_warnings(EgoGestureDataset, root, split="train", size=16,
                                          subjects=[3], cache_dir=str(tmp_path / "cache"))
    assert len(caught) == 1 and f"{bad}: truncated JPEG" in caught[0]
    assert [v.name.rsplit("/", 1)[1] for v in dataset.videos] == ["Group1.csv:1",
                                                                  "Group2.csv:1"]
    assert dataset.labels.tolist() == [9, 1] and len(dataset) == 2
    assert int(dataset[1]["label"]) == 1
