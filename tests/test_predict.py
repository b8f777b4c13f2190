"""`handmt predict` end to end: a synthetic video, an untrained checkpoint (the predictions need
not be right, only computed the way the datasets feed the model), the annotated MP4 and JSON."""

import json

import cv2
import numpy as np
import pytest
import torch

from handmt import load_config
from handmt.cli import main
from handmt.data.synthetic import generate_fpha, render_fpha_video
from handmt.engine.checkpoint import save_checkpoint
from handmt.models import build

FRAMES, WINDOW, SIZE = 10, 4, 32
TINY = ["model.backbone.arch=resnet10t", "model.heads.gesture.num_classes=3",
        "data.synthetic.classes=3", f"data.size={SIZE}", f"data.num_frames={WINDOW}"]
MODELS = {"tsn": ("configs/cpu_fpha_tsn.yaml", []),
          "collab": ("configs/cpu_fpha_collab.yaml", ["model.heads.gesture.joint_channels=2"]),
          "tsn_msd": ("configs/cpu_fpha_tsn.yaml", ["model.heads.depth={name: msd}",
                                                    "data.modalities=[rgb, depth]"]),
          "tsn_depth": ("configs/cpu_fpha_tsn.yaml", ["model.backbone.modality=depth",
                                                      "data.modalities=[depth]"]),
          "tsn_segmentation": ("configs/cpu_fpha_seg.yaml", [])}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread beats two threads' synchronization, by far on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("predict") / "in.mp4"
    assert main(["synth", "fpha", "--video", str(path), "--classes", "3", "--label", "2",
                 "--frames", str(FRAMES), "--size", "96"]) == 0
    return path


def read_frames(path):
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames, capture.get(cv2.CAP_PROP_FPS)


def checkpoint(tmp_path, name):
    """An untrained model's checkpoint, as handmt train writes it (weights and config)."""
    config, overrides = MODELS[name]
    cfg = load_config(config, TINY + overrides)
    del cfg["_source"]
    torch.manual_seed(0)
    model = build(cfg)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg, "epoch": 1})
    return path, model.eval()


def network_clip(frames, modality):
    """The datasets' conversion, written out independently: centred square, area resize to
    SIZE; rgb: BGR -> RGB, ImageNet mean/std, (T, 3, SIZE, SIZE); depth: grey / 255,
    (T, 1, SIZE, SIZE)."""
    height, width = frames[0].shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    images = np.stack([cv2.resize(f[y0:y0 + side, x0:x0 + side], (SIZE, SIZE),
                                  interpolation=cv2.INTER_AREA) for f in frames])
    if modality == "depth":
        grey = np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) for image in images])
        return torch.from_numpy(grey[:, None]).float() / 255
    rgb = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).contiguous()
    rgb = rgb.float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return (rgb - mean) / std


@pytest.mark.parametrize("name", list(MODELS))
def test_predict_draws_and_reports_each_window(name, video, tmp_path):
    path, model = checkpoint(tmp_path, name)
    out, report = tmp_path / "out.mp4", tmp_path / "out.json"
    assert main(["predict", str(path), "--video", str(video), "--out", str(out),
                 "--json", str(report)]) == 0

    inputs, fps = read_frames(video)
    outputs, out_fps = read_frames(out)
    assert len(outputs) == len(inputs) == FRAMES and out_fps == fps
    assert outputs[0].shape == inputs[0].shape == (54, 96, 3)
    height, width = inputs[0].shape[:2]

    def difference(region):
        return np.mean([np.abs(o[region].astype(int) - i[region]).mean()
                        for o, i in zip(outputs, inputs, strict=True)])
    caption, untouched = np.s_[:8, :24], np.s_[-10:, :10]
    assert difference(caption) > 30 > 10 > difference(untouched)
    inset = np.s_[-12:-3, -12:-3]  # inside the depth inset's frame
    assert (difference(inset) > 30) == (name == "tsn_msd")

    record = json.loads(report.read_text())
    assert record["classes"] == ["open_then_close_index", "close_then_open_index", "tap_index"]
    assert [(w["start"], w["end"]) for w in record["windows"]] == [(0, 4), (2, 6), (4, 8),
                                                                    (6, 10)]
    for w in record["windows"]:
        probs = [t["prob"] for t in w["top5"]]
        assert len(probs) == 3 and all(0 <= p <= 1 for p in probs) and sum(probs) <= 1 + 1e-6
        assert probs == sorted(probs, reverse=True) and w["top5"][0]["label"] == w["label"]
        # the model on the same clip, converted here independently of handmt.predict
        with torch.no_grad():
            modality = "depth" if name == "tsn_depth" else "rgb"
            clip = network_clip(inputs[w["start"]:w["end"]], modality)
            result = model.predict({modality: clip[None]})
        expected = result.logits[0].softmax(-1)
        assert w["label"] == int(expected.argmax())
        assert w["prob"] == pytest.approx(float(expected.max()), abs=1e-6)
        assert w["name"] == record["classes"][w["label"]]
        if w["start"] == 0 and name == "collab":
            # frame 0 shows window 0: its joints, from input pixels back to the frame's
            side, x0 = height, (width - height) // 2
            joints = (result.joints2d[0, 0].numpy() + 0.5) * side / SIZE - 0.5 + [x0, 0]
            np.testing.assert_allclose(record["joints2d"][0], joints, atol=0.01)

    if name == "collab":
        joints = np.array(record["joints2d"])
        assert joints.shape == (FRAMES, 21, 2)
        assert (joints >= 0).all() and (joints[..., 0] < width).all()
        assert (joints[..., 1] < height).all()
    else:
        assert "joints2d" not in record


def test_a_multimodal_model_runs_the_network_of_the_chosen_modality(video, tmp_path):
    cfg = load_config("configs/cpu_fpha_mtut.yaml", ["model.heads.gesture.num_classes=3",
                                                     "data.synthetic.classes=3",
                                                     f"data.size={SIZE}", "data.num_frames=8"])
    del cfg["_source"]
    model = build(cfg)
    path, report = tmp_path / "mtut.pt", tmp_path / "mtut.json"
    save_checkpoint(path, {"model": model.state_dict(), "config": cfg})
    assert main(["predict", str(path), "--video", str(video), "--out", str(tmp_path / "o.mp4"),
                 "--json", str(report), "--modality", "depth"]) == 0
    record = json.loads(report.read_text())
    assert record["modality"] == "depth" and len(record["classes"]) == 3
    inputs, _ = read_frames(video)
    for w in record["windows"]:
        with torch.no_grad():
            clip = network_clip(inputs[w["start"]:w["end"]], "depth")
            probs = model.deploy("depth").predict({"depth": clip[None]}).logits[0].softmax(-1)
        assert w["name"] == record["classes"][w["label"]]
        assert w["prob"] == pytest.approx(float(probs.max()), abs=1e-6)


def test_the_mask_overlay_tints_the_predicted_hand_in_the_centre_square(video, tmp_path):
    # segmentation alone, its last bias pushing every logit far up (all hand) or down (none)
    cfg = load_config("configs/cpu_fpha_seg.yaml",
                      [*TINY, "model.heads={segmentation: {name: segmentation}}"])
    del cfg["_source"]
    model = build(cfg)
    inputs, _ = read_frames(video)
    height, width = inputs[0].shape[:2]
    square = np.s_[:, (width - height) // 2:(width + height) // 2]  # the network's input
    outside = np.s_[:, :(width - height) // 2]
    for bias, hand in ((50.0, True), (-50.0, False)):
        model.heads["segmentation"].decoder[-1].bias.data.fill_(bias)
        path, report = tmp_path / "seg.pt", tmp_path / "seg.json"
        save_checkpoint(path, {"model": model.state_dict(), "config": cfg})
        assert main(["predict", str(path), "--video", str(video), "--out",
                     str(tmp_path / "seg.mp4"), "--json", str(report)]) == 0
        outputs, _ = read_frames(tmp_path / "seg.mp4")
        difference = {name: np.mean([np.abs(o[region].astype(int) - i[region]).mean()
                                     for o, i in zip(outputs, inputs, strict=True)])
                      for name, region in (("square", square), ("outside", outside))}
        assert difference["outside"] < 10  # no caption without a gesture head, no tint
        assert (difference["square"] > 30) == hand
        if hand:  # half magenta (BGR 255, 0, 255): green halves, red and blue rise
            green = np.mean([o[square][..., 1] / np.maximum(i[square][..., 1], 1)
                             for o, i in zip(outputs, inputs, strict=True)])
            assert green == pytest.approx(0.5, abs=0.1)
        record = json.loads(report.read_text())
        assert record["classes"] is None
        assert record["windows"][0] == {"start": 0, "end": WINDOW}


def test_a_short_video_is_padded_and_errors_name_the_file(video, tmp_path, capsys):
    path, _ = checkpoint(tmp_path, "tsn")
    out, report = tmp_path / "short.mp4", tmp_path / "short.json"
    with pytest.warns(UserWarning, match="padded by repeating the last frame 2 times"):
        assert main(["predict", str(path), "data.num_frames=12", "--video", str(video),
                     "--out", str(out), "--json", str(report)]) == 0
    record = json.loads(report.read_text())
    assert record["padded_frames"] == 2 and record["window"] == 12
    assert [(w["start"], w["end"]) for w in record["windows"]] == [(0, FRAMES)]
    assert len(read_frames(out)[0]) == FRAMES

    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    assert main(["predict", str(path), "--video", str(broken), "--out", str(out)]) == 2
    assert "broken.mp4: missing, or not a video OpenCV can open" in capsys.readouterr().err

    bare = tmp_path / "bare.pt"
    save_checkpoint(bare, {"model": torch.load(path, weights_only=True)["model"]})
    assert main(["predict", str(bare), "--video", str(video), "--out", str(out)]) == 2
    assert "bare.pt: no 'config' entry" in capsys.readouterr().err

    assert main(["predict", str(path), "--video", str(video), "--out", str(out),
                 "--modality", "depth"]) == 2
    assert "reads rgb clips, not depth" in capsys.readouterr().err

    assert main(["synth", "fpha", "--classes", "3"]) == 2
    assert "--out DIR" in capsys.readouterr().err


def test_the_video_is_the_sequence_of_the_set(tmp_path):
    args = {"classes": 2, "frames": 3, "size": 64, "seed": 4}
    root = generate_fpha(tmp_path / "set", subjects=1, seqs=2, workers=1, progress=False, **args)
    video = render_fpha_video(tmp_path / "seq.mp4", label=1, subject=1, seq=2, **args)
    frames, _ = read_frames(video)
    assert len(frames) == 3

    def jpeg(sequence, index):
        folder = root / "Video_files" / "Subject_1" / sequence / "color"
        return cv2.imread(str(folder / f"color_{index:04d}.jpeg")).astype(int)
    same, other = "close_then_open_index/2", "close_then_open_index/1"
    for index, frame in enumerate(frames):  # both lossy: mp4v and JPEG
        difference = {name: np.abs(frame - jpeg(name, index)).mean() for name in (same, other)}
        assert difference[same] < 8 < difference[other], difference
