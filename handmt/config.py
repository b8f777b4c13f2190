"""Experiment configs: one self-contained YAML file with sections `model`, `data`, `train`, `eval`.

`load_config(path, overrides)` reads the file, applies dotlist overrides (`train.epochs=3`) and
checks every section against the components' signatures, so a typo fails at once with the dotted
path and the nearest valid names, before any model or dataset is built.
"""

import copy
from pathlib import Path

import yaml

from . import data, engine, models
from .errors import ConfigError, closest

SECTIONS = ("model", "data", "train", "eval")


def load_config(path, overrides=()):
    """Read, override and check a config; returns a plain dict (with `_source` = the file)."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError("", f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError("", f"{path} is not valid YAML: {err}") from None
    if not isinstance(cfg, dict):
        raise ConfigError("", f"{path} must hold a mapping with sections {', '.join(SECTIONS)}")
    cfg = apply_overrides(cfg, overrides)
    try:
        check_config(cfg)
    except ConfigError as err:
        raise ConfigError(err.path, f"{err.message} (in {path})") from None
    cfg["_source"] = str(path)
    return cfg


def apply_overrides(cfg, overrides):
    """Apply `a.b.c=value` strings (values parsed as YAML) to a copy of `cfg`."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(item, "an override must look like section.key=value")
        node, parts = cfg, key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(".".join(parts[:i + 1]), f"is a {type(child).__name__}, "
                                  f"cannot set {key}")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.MarkedYAMLError as err:
            raise ConfigError(key, f"the value {raw!r} is not valid YAML ({err.problem}); quote "
                              "it in YAML to pass a string") from None
    return cfg


def check_config(cfg):
    """Raise ConfigError for anything a later build would reject."""
    for key in cfg:
        if key not in SECTIONS and key != "_source":
            raise ConfigError(key, f"unknown section{closest(key, SECTIONS)}; "
                              f"valid: {', '.join(SECTIONS)}")
    for section in ("model", "data"):
        if not isinstance(cfg.get(section), dict):
            raise ConfigError(section, "missing or not a mapping")
    models.check_config(cfg["model"], "model")
    data.check_config(cfg["data"], "data")
    engine.check_config(cfg, "train", "eval")
