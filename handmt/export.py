"""Deployment export: a trained HandModel as an ONNX or TorchScript file that maps one clip to
the gesture logits, written only after its outputs were checked against PyTorch's.

    from handmt.export import export
    export(model, "gesture.onnx", example=torch.randn(1, 8, 3, 224, 224))

`export` exports `model.deploy(modality)` of any `Model` (models/base.py: auxiliary heads such as
the MSD decoders are dropped; for MTUT the network of `modality` alone), wrapped so the graph
takes one tensor, the clip (B, T, C, H, W) of that modality, and returns one tensor, the
predicted logits (B, classes). The batch axis is dynamic; T, C, H and W are those of the
example (ResNetTSN's temporal layers read T when the graph is traced, so a file exported for
8 frames serves 8-frame clips only; both formats reject other shapes).

The file is written to a temporary name beside `path` and checked on a random clip with a batch
one larger than the example's (so the dynamic axis is exercised): ONNX files through
onnxruntime, TorchScript files through `torch.jit.load`, against the deployed PyTorch model in
eval mode. The error is max |exported - pytorch| / max |pytorch| over all logits (relative to
the largest reference logit, so logits near zero do not inflate it). When it is above `rtol`
the exported logits are compared with the same model run in float64 too, and the file passes if
they are within `rtol` of those: float32 PyTorch is not exact either, and on badly conditioned
weights it is the farther of the two (a random-weight ResNet-50 ACTION-Net at 224 px, logits
~6e9: PyTorch float32 is 3.5e-3 from float64, onnxruntime 6e-6). Above `rtol` in both, the
temporary file is removed, nothing is written at `path` (an older file there stays as it was)
and ExportParityError says by how much; otherwise the file is renamed to `path` atomically
(with the mode the umask gives new files).

Exporters (torch 2.14 here):
- ONNX uses the TorchScript-based exporter (`torch.onnx.export(..., dynamo=False)`): with
  opset 17 the torch.export-based one (dynamo=True) emits opset 18 and fails to convert it down
  (onnx's version converter asserts in its axes-input-to-attribute adapter, and the file stays
  at opset 18), and it takes ~9x longer to export
  a ResNet-18; the legacy exporter writes the requested opset, folds BatchNorm into the
  convolutions and gives the same outputs. Its deprecation warning is silenced here.
  It needs the `onnx` package (not onnxscript); the check needs `onnxruntime` (both in the
  `dev` extra; missing ones raise ImportError before anything is exported).
- TorchScript uses `torch.jit.trace` (einops' rearranges and the dict outputs do not script),
  inside a small scripted ShapeGuard that raises on a clip of another (T, C, H, W): the trace
  itself would run it with the example's T baked in and return wrong logits.

The temporal shift (TSM's cat of slices, ACTION-Net's depthwise Conv1d) and the ACTION module's
excitation paths trace to ordinary ops, so frame order still matters in the exported graph.
"""

import copy
import importlib.util
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .models.backbones import MODALITY_CHANNELS

FORMATS = ("onnx", "torchscript")
DEFAULT_FRAMES, DEFAULT_SIZE = 8, 224  # the example clip when none is given

# Warnings of the deliberate exporter choices above; nothing else is silenced.
_QUIET = [(DeprecationWarning, r"You are using the legacy TorchScript-based ONNX export"),
          (UserWarning, r"Constant folding - Only steps=1 can be constant folded"),
          (Warning, r"`torch\.jit\.(trace|trace_method|script|load)` is deprecated")]


class ExportParityError(ValueError):
    """The exported file's logits differ from PyTorch's by more than `rtol` (in float32 and in
    float64); nothing was written. `error`: against float32, `float64_error`: against float64."""

    def __init__(self, path, format, error, rtol, float64_error=None):
        self.path, self.format, self.rtol = Path(path), format, rtol
        self.error, self.float64_error = error, float64_error
        exact = "" if float64_error is None else f" ({float64_error:.3g} against float64)"
        super().__init__(f"{format} export of {self.path} refused: max relative error "
                         f"{error:.3g} against PyTorch{exact} exceeds rtol {rtol:g}; "
                         "nothing written")


class ClipToLogits(nn.Module):
    """The exported graph: clip (B, T, C, H, W) -> predicted logits (B, classes)."""

    def __init__(self, model, modality):
        super().__init__()
        self.model, self.modality = model, modality

    def forward(self, clip):
        logits = self.model.predict({self.modality: clip}).logits
        if logits is None:
            raise ValueError("the deployed model predicts no gesture logits")
        return logits


def export(model, path, *, format="onnx", example=None, modality=None, opset=17, rtol=1e-4):
    """Write `model.deploy(modality)` as an ONNX (`opset`) or TorchScript file at `path` after
    checking its logits against PyTorch's within `rtol` (see the module docstring); returns the
    path.

    `modality`: the clips the graph reads (default: the model's first modality). `example`: a
    clip (B, T, C, H, W) fixing T, C, H and W; default (1, 8, C, 224, 224) with C the channels
    of `modality`."""
    if format not in FORMATS:
        raise ValueError(f"format {format!r} is not one of {', '.join(FORMATS)}")
    modality = modality or model.modalities[0]
    if modality not in MODALITY_CHANNELS:
        raise ValueError(f"modality {modality!r} is not one of {', '.join(MODALITY_CHANNELS)}")
    if example is None:
        example = torch.randn(1, DEFAULT_FRAMES, MODALITY_CHANNELS[modality], DEFAULT_SIZE,
                              DEFAULT_SIZE)
    if not isinstance(example, torch.Tensor) or example.dim() != 5:
        raise ValueError("example must be one clip tensor (B, T, C, H, W)")
    if format == "onnx":
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(f"ONNX export needs {' and '.join(missing)} (the exporter writes "
                              f"with onnx, the parity check runs onnxruntime): pip install "
                              f"{' '.join(missing)}")
    example = example.detach().float().cpu()
    wrapped = ClipToLogits(model.deploy(modality).cpu(), modality).eval()
    clip = random_clip(example)
    reference = reference_logits(wrapped, clip)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            for category, message in _QUIET:
                warnings.filterwarnings("ignore", message, category)
            warnings.filterwarnings("ignore", category=DeprecationWarning,
                                    module=r"torch\.onnx\._internal\.torchscript_exporter\.")
            WRITERS[format](wrapped, example, tmp, opset)
            exported = RUNNERS[format](tmp, clip)
        error = relative_error(exported, reference)
        if not error <= rtol:  # also refuses NaN
            exact = reference_logits(wrapped, clip, torch.float64)
            float64_error = relative_error(exported, exact)
            if not float64_error <= rtol:
                raise ExportParityError(path, format, error, rtol, float64_error)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def random_clip(example, seed=0):
    """A normal random clip shaped like `example` with one more clip in the batch."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((example.shape[0] + 1, *example.shape[1:]), generator=generator)


def reference_logits(wrapped, clip, dtype=torch.float32):
    """The wrapped PyTorch model's logits for `clip` computed in `dtype` (on a copy for another
    dtype), as float32."""
    if dtype != torch.float32:
        wrapped = copy.deepcopy(wrapped).to(dtype)
    with torch.no_grad():
        return wrapped(clip.to(dtype)).float()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def relative_error(exported, reference):
    """max |exported - reference| / max |reference| (the latter floored at 1e-12)."""
    exported = torch.as_tensor(exported, dtype=torch.float32)
    if exported.shape != reference.shape:
        return float("inf")
    scale = reference.abs().max().clamp_min(1e-12)
    return float((exported - reference).abs().max() / scale)


def _write_onnx(wrapped, example, file, opset):
    torch.onnx.export(wrapped, (example,), file, dynamo=False, opset_version=opset,
                      input_names=["clip"], output_names=["logits"],
                      dynamic_axes={"clip": {0: "batch"}, "logits": {0: "batch"}})


class ShapeGuard(nn.Module):
    """TorchScript counterpart of ONNX's static input dims: the trace bakes T (and reshapes by
    it), so a clip of another (T, C, H, W) would run and give wrong logits; this refuses it."""

    def __init__(self, traced, frame_shape: list[int]):
        super().__init__()
        self.traced, self.frame_shape = traced, frame_shape

    def forward(self, clip):
        if clip.dim() != 5 or clip.shape[1:] != self.frame_shape:
            raise ValueError(f"expected a clip (B, T, C, H, W) with (T, C, H, W) = "
                             f"{self.frame_shape}, got {clip.shape}")
        return self.traced(clip)


def _write_torchscript(wrapped, example, file, opset):
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, example, check_trace=False)
    torch.jit.script(ShapeGuard(traced, list(example.shape[1:]))).save(file)


def _run_onnx(file, clip):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(file, options, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: clip.numpy()})
    return torch.from_numpy(logits)


def _run_torchscript(file, clip):
    with torch.no_grad():
        return torch.jit.load(file, map_location="cpu")(clip)


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript}
RUNNERS = {"onnx": _run_onnx, "torchscript": _run_torchscript}
