"""Deployment export (handmt/export.py): ONNX and TorchScript files that match PyTorch, keep the
temporal mixing of TSM and ACTION, hold only the deployed model, and are never written when
they do not match; `handmt export`."""

import warnings

import pytest
import torch

from handmt import export as export_module
from handmt import load_config
from handmt.cli import main
from handmt.engine.checkpoint import save_checkpoint
from handmt.export import ExportParityError, export
from handmt.models import build

FRAMES, SIZE = 4, 64
SMALL = [f"data.size={SIZE}", f"data.num_frames={FRAMES}"]
ACTION, MSD = "configs/cpu_fpha_action.yaml", "configs/cpu_fpha_action_msd.yaml"


def small_model(config=ACTION, temporal="action"):
    """ResNet-18 recognizer with non-trivial temporal and BatchNorm state: the ACTION shift
    moved off TSM's one-hot initialization, running statistics away from 0 and 1."""
    torch.manual_seed(0)
    model = build(load_config(config, [*SMALL, f"model.backbone.temporal={temporal}"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("shift.conv.weight"):
                param.add_(0.2 * torch.randn_like(param))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


def example(batch=1):
    return torch.randn(batch, FRAMES, 3, SIZE, SIZE)


def count(model):
    return sum(p.numel() for p in model.parameters())


def reference(model, clip):
    with torch.no_grad():
        return model.deploy()({"rgb": clip})["logits"]


def assert_matches(exported, expected, rtol=1e-4):
    torch.testing.assert_close(exported, expected, rtol=0, atol=rtol * expected.abs().max())


def load_torchscript(path):
    with warnings.catch_warnings():  # torch 2.14 deprecates torch.jit.load
        warnings.simplefilter("ignore")
        return torch.jit.load(str(path))


def needs_onnx():
    """onnx writes the file, onnxruntime checks it (the `dev` extra has both)."""
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def onnx_runner(path):
    ort = needs_onnx()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(clip):
        return torch.from_numpy(session.run(None, {"clip": clip.numpy()})[0])
    return session, run


@pytest.fixture(scope="module")
def action_model():
    return small_model()


@pytest.mark.parametrize("temporal", ["tsm", "action"])
def test_onnx_matches_pytorch_and_keeps_frame_order(temporal, tmp_path):
    needs_onnx()
    model = small_model(temporal=temporal)
    path = export(model, tmp_path / "model.onnx", example=example())
    assert path == tmp_path / "model.onnx" and [p.name for p in tmp_path.iterdir()] == [path.name]
    session, run = onnx_runner(path)
    assert [o.name for o in session.get_outputs()] == ["logits"]
    clip = torch.randn(3, FRAMES, 3, SIZE, SIZE)  # another batch size than the example's
    reversed_clip = clip.flip(1)
    expected, expected_reversed = reference(model, clip), reference(model, reversed_clip)
    assert_matches(run(clip), expected)
    assert_matches(run(reversed_clip), expected_reversed)
    # The temporal mixing survived: reversing the frames changes the exported logits as much
    # as PyTorch's (a TSN would be invariant).
    change = (expected - expected_reversed).abs().max()
    assert change > 1e-2 * expected.abs().max()
    assert (run(clip) - run(reversed_clip)).abs().max() > 0.5 * change


def test_torchscript_matches_pytorch_and_keeps_frame_order(action_model, tmp_path):
    path = export(action_model, tmp_path / "model.pt", format="torchscript", example=example(2))
    loaded = load_torchscript(path)
    clip = torch.randn(1, FRAMES, 3, SIZE, SIZE)
    with torch.no_grad():
        exported, exported_reversed = loaded(clip), loaded(clip.flip(1))
    expected, expected_reversed = reference(action_model, clip), reference(action_model,
                                                                           clip.flip(1))
    assert_matches(exported, expected)
    assert_matches(exported_reversed, expected_reversed)
    assert (exported - exported_reversed).abs().max() > 1e-2 * expected.abs().max()
    # The trace bakes T in; the file refuses other clip shapes instead of misreading them.
    for shape in [(1, 2 * FRAMES, 3, SIZE, SIZE), (1, FRAMES, 3, SIZE // 2, SIZE // 2)]:
        with pytest.raises(torch.jit.Error, match=r"\(T, C, H, W\) = \[4, 3, 64, 64\]"):
            loaded(torch.randn(shape))


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_a_failed_parity_check_writes_nothing(format, action_model, tmp_path, monkeypatch):
    if format == "onnx":
        needs_onnx()
    run = export_module.RUNNERS[format]
    monkeypatch.setitem(export_module.RUNNERS, format, lambda file, clip: run(file, clip) * 1.01)
    path = tmp_path / "model.out"
    with pytest.raises(ExportParityError, match=r"max relative error 0\.01 .* rtol 0\.0001") as e:
        export(action_model, path, format=format, example=example())
    assert e.value.error == pytest.approx(0.01, rel=1e-3) and "model.out" in str(e.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    if format == "onnx":
        return  # the rest is the same code path
    path.write_text("an older export")
    with pytest.raises(ExportParityError):
        export(action_model, path, format=format, example=example())
    assert path.read_text() == "an older export" and list(tmp_path.iterdir()) == [path]


def test_float32_noise_in_pytorch_is_judged_against_float64(action_model, tmp_path,
                                                             monkeypatch):
    # Badly conditioned weights (e.g. a random-init ResNet-50, logits ~1e9) make PyTorch's own
    # float32 logits the inexact ones; a file matching the float64 logits is still written.
    reference = export_module.reference_logits

    def noisy_float32(wrapped, clip, dtype=torch.float32):
        logits = reference(wrapped, clip, dtype)
        return logits * 1.01 if dtype == torch.float32 else logits
    monkeypatch.setattr(export_module, "reference_logits", noisy_float32)
    path = export(action_model, tmp_path / "model.pt", format="torchscript", example=example())
    assert path.is_file()
    # Off from both: refused, naming both errors.
    run = export_module.RUNNERS["torchscript"]
    monkeypatch.setitem(export_module.RUNNERS, "torchscript",
                        lambda file, clip: run(file, clip) * 0.98)
    with pytest.raises(ExportParityError, match=r"error 0\.0297 .*\(0\.02 against float64\)"):
        export(action_model, tmp_path / "refused.pt", format="torchscript", example=example())
    assert not (tmp_path / "refused.pt").exists()


def test_msd_exports_only_the_deployed_recognizer(tmp_path):
    model = small_model(MSD)
    deployed = model.deploy()
    assert count(model) > count(deployed) + 1_000_000  # the decoders are sizeable

    path = export(model, tmp_path / "msd.pt", format="torchscript", example=example())
    loaded = load_torchscript(path)
    assert count(loaded) == count(deployed)
    names = [name for name, _ in loaded.named_parameters()]
    assert any(".heads.gesture." in n for n in names)
    assert not any(".heads.depth." in n for n in names)
    clip = example(2)
    with torch.no_grad():
        logits = loaded(clip)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 45)
    assert_matches(logits, reference(model, clip))

    needs_onnx()
    import onnx

    path = export(model, tmp_path / "msd.onnx", example=example())
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ["logits"]
    # Initializers: the deployed weights with BatchNorm folded into the convolutions, so at
    # most the deployed state's size and far below the decoders' share.
    weights = sum(torch.Size(t.dims).numel() for t in graph.initializer)
    deployed_state = sum(t.numel() for t in deployed.state_dict().values())
    assert count(deployed) * 0.99 < weights <= deployed_state < count(model)
    assert_matches(onnx_runner(path)[1](clip), reference(model, clip))


def test_rejects_a_bad_format_or_example(action_model, tmp_path):
    with pytest.raises(ValueError, match="format 'tflite'"):
        export(action_model, tmp_path / "m", format="tflite")
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        export(action_model, tmp_path / "m", example=torch.randn(FRAMES, 3, SIZE, SIZE))
    assert list(tmp_path.iterdir()) == []


def test_cli_exports_a_checkpoint_and_names_a_bad_one(action_model, tmp_path, capsys):
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(checkpoint, {"model": action_model.state_dict()})
    assert main(["export", ACTION, str(checkpoint), *SMALL, "--format", "torchscript"]) == 0
    written = tmp_path / "run" / "checkpoint.torchscript.pt"
    assert capsys.readouterr().out.strip() == f"wrote {written}"
    loaded = load_torchscript(written)
    clip = example()
    with torch.no_grad():
        assert_matches(loaded(clip), reference(action_model, clip))

    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    for broken in (bad, tmp_path / "none.pt"):
        out = tmp_path / "out.onnx"
        assert main(["export", ACTION, str(broken), *SMALL, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("handmt export: error:") and broken.name in err
        assert not out.exists()
    # weights of another model (a TSM checkpoint for the ACTION config)
    save_checkpoint(bad, {"model": small_model(temporal="tsm").state_dict()})
    assert main(["export", ACTION, str(bad), *SMALL]) == 2
    assert "garbage.pt holds weights of another model" in capsys.readouterr().err


def test_cli_refuses_a_model_that_reads_no_clip(tmp_path, capsys):
    config = "configs/fpha_skeleton.yaml"
    checkpoint = tmp_path / "skeleton.pt"
    save_checkpoint(checkpoint, {"model": build(load_config(config)).state_dict()})
    assert main(["export", config, str(checkpoint)]) == 2
    assert "a model of joints cannot be exported" in capsys.readouterr().err


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_collaborative_model_exports_its_gesture_logits(format, tmp_path):
    """The collaborative network (pose and gesture sub-networks, multi-order, relation, TCN)
    traces to a graph whose logits match PyTorch on a clip of another batch size."""
    if format == "onnx":
        needs_onnx()
    torch.manual_seed(0)
    model = build(load_config("configs/cpu_fpha_collab.yaml", [
        "data.size=32", f"data.num_frames={FRAMES}", "model.backbone.arch=resnet10t",
        "model.heads.gesture.joint_channels=2"])).eval()
    clip = torch.randn(2, FRAMES, 3, 32, 32)
    path = export(model, tmp_path / f"collab.{format}", format=format,
                  example=torch.randn(1, FRAMES, 3, 32, 32))
    if format == "onnx":
        exported = onnx_runner(path)[1](clip)
    else:
        exported = load_torchscript(path)(clip)
    assert_matches(exported, reference(model, clip))
