"""Experiment configs: YAML files with sections `model`, `data`, `train`, `eval` (and `bench`, a
benchmark row's metadata, which training ignores).

`load_config(path, overrides)` reads the file and the files it inherits from (`base:`, see
`resolve`), applies dotlist overrides (`train.epochs=3`) and checks every section against the
components' signatures, then the sections against each other (`check_across`), so a typo or a
misfit fails at once with the dotted paths and the nearest valid names, before any model or
dataset is built.
"""

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import data, engine, models
from .data import DATASETS
from .errors import ConfigError, closest
from .models import BACKBONES, HEADS, multimodal
from .registry import check_arguments

SECTIONS = ("model", "data", "train", "eval", "bench")


@dataclass
class BenchOptions:
    """The `bench` section: a benchmark row's metadata (benchmarks/run.py reads it)."""
    name: str  # the row's name in the tables (and its run folder)
    tables: list[str]  # the suite's tables the row appears in
    modality: str = "RGB"  # what the tested network sees, as the tables print it
    metric: str = "top1"  # a multi-modal model reports top1_<modality> and top1_fusion too
    folds: int = 0  # cross-subject folds (VIVA: 8), each trained and tested; 0: no folds
    floor: str | None = None  # a trivial baseline computed from the data instead of a training
    weak: dict | None = None  # {task whose labels are withheld, fraction kept, column: variant}
    quick: list[str] | None = None  # --quick: the row's own overrides; null: not run
    # fpha on its embedded synthetic set (no --root), default and --quick: the row's overrides
    synthetic: list[str] = field(default_factory=list)
    plots: bool = False  # its seed-0 confusion matrix and training curves are plotted
    # the row it changes (adds or removes one component): the tables print the difference and,
    # over seeds, whether it is beyond the noise
    compare: str | None = None


def load_config(path, overrides=()):
    """Read, inherit, override and check a config; returns a plain dict (with `_source` = the
    file)."""
    path = Path(path)
    cfg = apply_overrides(resolve(path), overrides)
    try:
        check_config(cfg)
    except ConfigError as err:
        raise ConfigError(err.path, f"{err.message} (in {path})") from None
    cfg["_source"] = str(path)
    return cfg


def read_yaml(path, child=None):
    """The mapping in `path`; `child`: the file that names it as its base."""
    try:
        cfg = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        where = f" (the base of {child})" if child else ""
        raise ConfigError("", f"config file {path}{where} does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError("", f"{path} is not valid YAML: {err}") from None
    if not isinstance(cfg, dict):
        raise ConfigError("", f"{path} must hold a mapping with sections {', '.join(SECTIONS)}")
    return cfg


def resolve(path, chain=(), child=None):
    """The config in `path` with its bases merged in: `base: FILE` (or a list of files, merged in
    order), each relative to `path`, is read first (with its own bases), then `path`'s keys are
    merged over it (`merge`)."""
    if path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise ConfigError("base", f"inheritance cycle: {cycle}")
    cfg = read_yaml(path, child)
    bases = cfg.pop("base", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError("base", f"expected a file or a list of files, got {bases!r} (in {path})")
    merged = {}
    for base in bases:
        merged = merge(merged, resolve(path.parent / base, (*chain, path.resolve()), path))
    return merge(merged, cfg)


def merge(base, child):
    """`child` over `base`: mappings merge key by key, recursively, except that a mapping naming
    another component than the inherited one (`name: ...`, e.g. another head or optimizer)
    replaces it with its own arguments (the `bench` section always merges: its `name` is a
    row's); lists and scalars replace. `key: null` in the child removes an inherited mapping (a
    head; a section, whose defaults then apply) and sets any other inherited value to null (e.g.
    `train.clip_grad: null`, no clipping)."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        inherited = out.get(key)
        if value is None and isinstance(inherited, dict):
            del out[key]
        elif (isinstance(value, dict) and isinstance(inherited, dict)
              and (key == "bench" or value.get("name", inherited.get("name"))
                   == inherited.get("name"))):
            out[key] = merge(inherited, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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
    check_across(cfg["model"], cfg["data"])
    if "bench" in cfg:
        if not isinstance(cfg["bench"], dict):
            raise ConfigError("bench", "expected a mapping (a benchmark row's name, tables, ...)")
        check_arguments(BenchOptions, cfg["bench"], "bench")


def check_across(model, data):
    """Checks between `model` and `data`: a head's `num_classes` covers the classes the dataset
    declares, and every backbone and head finds what it `requires` in the data (a modality
    loaded by `data.modalities`, or labels the dataset has)."""
    dataset = DATASETS[data["name"]]
    loaded = list(DATASETS.arguments(data)["modalities"])
    declared = dataset.declared_classes(data)
    backbones = [("model.backbone", model["backbone"])]
    if "modalities" in model:  # MTUT: one backbone per modality, built with that `modality`
        backbones = [("model.modalities", {**multimodal.backbone_for(model["backbone"], m),
                                           "modality": m}) for m in model["modalities"]]
    needs = [(path, BACKBONES[b["name"]].requires(BACKBONES.arguments(b)))
             for path, b in backbones]
    for task, head in model["heads"].items():
        path = f"model.heads.{task}"
        if declared and "num_classes" in head and head["num_classes"] < declared[0]:
            raise ConfigError(f"{path}.num_classes", f"is {head['num_classes']}, but the dataset "
                              f"has {declared[0]} classes ({declared[1]}; labels up to "
                              f"{declared[0] - 1})")
        needs.append((path, HEADS[head["name"]].requires(HEADS.arguments(head))))
    for path, wanted in needs:
        for need in sorted(wanted):
            if need in dataset.MODALITIES and need not in loaded:
                raise ConfigError(path, f"needs data.modalities to include {need!r} (has: "
                                  f"{', '.join(loaded)})")
            if need not in dataset.MODALITIES and need not in dataset.LABELS:
                raise ConfigError(path, f"needs {need} labels, which data.name {data['name']!r} "
                                  f"does not have (it has: {', '.join(dataset.LABELS)})")
