"""Pretrained weights for the backbones: `model.backbone.pretrained`.

    pretrained: true                         # timm's published weights for `arch` (ResNet/Res2Net)
    pretrained: /path/weights.pt             # a file: state dict or checkpoint (below)
    pretrained: {rgb: RGB.pt, depth: D.pt}   # MTUT: one entry per modality (multimodal.py)

A file is read with `torch.load(..., weights_only=True)`; a checkpoint holding its weights under
`state_dict` (ACTION-Net's, TSM's) is unwrapped, and of a handmt checkpoint (`handmt train`'s
checkpoint.pt) the backbone is taken. Each backbone converts the key layouts it
accepts into its own (resnet_tsn.py: timm/torchvision ResNets and ACTION-Net's checkpoints;
i3d.py: the pytorch-i3d port's; c3d.py: the c3d-pytorch port's) and calls `load_weights`,
which checks the keys and shapes and names every one that does not fit.

The papers start depth and flow networks from RGB weights: a first convolution with 3 input
channels given to a 1-channel (depth) or 2-channel (flow) network is replaced by the mean of its
RGB kernels, repeated per channel (TSN's cross-modality initialization, Wang et al. 2016,
section 3.2; MTUT section 4 starts its depth network from the RGB I3D).
"""

import sys
from pathlib import Path

import timm
import torch


def read_weights(pretrained, arch=None):
    """The state dict `pretrained` names: True -> timm's published weights for `arch` (needs the
    network or timm's cache), a path -> the file's state dict."""
    if pretrained is True:
        if arch is None:
            raise ValueError("pretrained: true loads timm's weights, which this backbone has "
                             "none of; set model.backbone.pretrained to a weights file")
        try:
            return timm.create_model(arch, pretrained=True).state_dict()
        except Exception as err:  # no network, no cache: hub errors come in many types
            raise RuntimeError(
                f"timm's pretrained weights for {arch!r} could not be loaded "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                f"without internet access download them elsewhere (e.g. "
                f"timm.create_model({arch!r}, pretrained=True).state_dict() saved with "
                f"torch.save) and set model.backbone.pretrained: /path/to/{arch}.pt") from None
    return read_state_dict(pretrained)


def read_state_dict(path):
    """The tensors of the weights file `path` (a checkpoint's `state_dict` unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained weights file not found "
                                "(model.backbone.pretrained)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a weights file torch.load(weights_only=True) can read "
                         f"({type(err).__name__}: {err})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    elif isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = backbone_of(state["model"], path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (or a checkpoint with one "
                         "under 'state_dict')")
    return state


def backbone_of(model_state, path):
    """The backbone's weights in a handmt checkpoint's `model` (`backbone.` keys, prefix
    removed): the MSD paper starts NVGesture and IsoGD from its EgoGesture model."""
    state = drop(model_state, ("heads.",), "handmt checkpoint's heads; only the backbone "
                 "loads", path)
    return {k.removeprefix("backbone."): v for k, v in state.items()}


def drop(state, prefixes, why, origin):
    """`state` without the keys starting with one of `prefixes`, with a note when some go."""
    dropped = [k for k in state if k.startswith(prefixes)]
    if dropped:
        print(f"handmt: {origin}: {len(dropped)} keys of {', '.join(prefixes)} not loaded "
              f"({why})", file=sys.stderr)
    return {k: v for k, v in state.items() if k not in dropped}


def adapt_first_conv(state, key, in_channels, origin):
    """Give the first convolution `key` `in_channels` inputs: RGB kernels averaged for depth
    and flow (module docstring)."""
    weight = state[key]
    if weight.shape[1] == in_channels:
        return state
    if weight.shape[1] != 3:
        raise ValueError(f"{origin}: {key} has {weight.shape[1]} input channels; a network with "
                         f"{in_channels} can start only from 3 (RGB) or {in_channels}")
    mean = weight.mean(dim=1, keepdim=True)
    return {**state, key: mean.expand(-1, in_channels, *mean.shape[2:]).contiguous()}


def load_weights(module, state, origin, new_layers=frozenset()):
    """Load `state` into `module`; every key must match in name and shape. `new_layers` are
    keys of layers image weights do not have (temporal layers): they keep their initialization
    when `state` has none of them, and must all be there when it has some. BatchNorm's
    `num_batches_tracked`, absent from old checkpoints, may be missing."""
    own = module.state_dict()
    optional = {k for k in own if k.endswith("num_batches_tracked")}
    if not new_layers & state.keys():
        optional |= new_layers
    missing = sorted(own.keys() - state.keys() - optional)
    unexpected = sorted(state.keys() - own.keys())
    if missing or unexpected:
        raise ValueError(f"{origin}: weights do not fit this backbone: missing "
                         f"{name_some(missing)}; unexpected {name_some(unexpected)}")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise ValueError(f"{origin}: {key} has shape {tuple(value.shape)}, this backbone "
                             f"needs {tuple(own[key].shape)}")
    module.load_state_dict(state, strict=False)


def name_some(keys, limit=6):
    if not keys:
        return "none"
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{len(keys)} ({', '.join(keys[:limit])}{more})"


def origin_of(pretrained, arch=None):
    """How error messages name the weights."""
    return f"timm's {arch} weights" if pretrained is True else str(pretrained)
