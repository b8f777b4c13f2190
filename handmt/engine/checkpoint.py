"""Checkpoints: written atomically (atomic.py), read with `torch.load(weights_only=True)`;
`load_trained(cfg, checkpoint)`, a config's model with a checkpoint's weights.

A checkpoint holds plain data only (tensors, numbers, strings, lists, dicts): model, optimizer
and scheduler state, the epoch, the RNG states, the config it was trained with and the log
records of its epochs.
"""

import pickle
import random
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write
from ..models import build


def save_checkpoint(path, state):
    """Write `state` to `path` so that a crash leaves the previous checkpoint or this one, never
    a truncated file."""
    with atomic_write(path) as temp:
        torch.save(state, temp)


def load_checkpoint(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False, wrong advice for a file of unknown origin
        detail = str(err).rpartition("WeightsUnpickler error:")[2].strip().splitlines()[0]
        raise ValueError(f"{path} is not a handmt checkpoint: it holds more than tensors and "
                         f"plain data ({detail}); refused, since loading it could run "
                         "code") from None
    except Exception as err:
        raise ValueError(f"{path} is not a readable handmt checkpoint (truncated or corrupt: "
                         f"{str(err).splitlines()[0]})") from None


def load_model_state(model, state, source):
    """Load `state['model']` into `model`, naming the checkpoint and the mismatching keys when it
    comes from another model."""
    if "model" not in state:
        raise ValueError(f"{source}: no 'model' entry; keys: {', '.join(state)}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state["model"]]
    unexpected = [k for k in state["model"] if k not in expected]
    wrong_shape = [k for k, v in state["model"].items()
                   if k in expected and v.shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        def head(keys):
            return ", ".join(keys[:3]) + (" ..." if len(keys) > 3 else "")
        raise ValueError(f"{source} holds weights of another model: {len(missing)} missing "
                         f"({head(missing)}), {len(unexpected)} unexpected ({head(unexpected)}), "
                         f"{len(wrong_shape)} of another shape ({head(wrong_shape)})")
    model.load_state_dict(state["model"])


def load_trained(cfg, checkpoint, state=None):
    """The model of `cfg` (models.build) with the weights of the checkpoint file `checkpoint`;
    `state`: that file's contents when the caller has read them already."""
    model = build(cfg)
    load_model_state(model, load_checkpoint(checkpoint) if state is None else state, checkpoint)
    return model


def rng_state():
    """RNG states as plain data (numpy's array as a list, so weights_only loading accepts it)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, keys.tolist(), pos, has_gauss, gauss]}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
