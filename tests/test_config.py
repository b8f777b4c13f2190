"""Config loading: inheritance, overrides, checks across sections, and errors that name the dotted
path and the nearest names."""

import pickle
from pathlib import Path

import pytest
import yaml

from handmt import ConfigError, load_config
from handmt.config import apply_overrides

TSN = "configs/cpu_fpha_tsn.yaml"


def write(tmp_path, cfg):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def base():
    return yaml.safe_load(open(TSN))


def test_overrides_set_nested_values_parsed_as_yaml():
    cfg = load_config(TSN, ["train.epochs=3", "train.optimizer.lr=0.5", "data.root=null",
                            "data.modalities=[rgb, depth]"])
    assert cfg["train"]["epochs"] == 3
    assert cfg["train"]["optimizer"]["lr"] == 0.5
    assert cfg["data"]["root"] is None
    assert cfg["data"]["modalities"] == ["rgb", "depth"]


def test_overrides_do_not_touch_the_input():
    cfg = {"train": {"epochs": 1}}
    out = apply_overrides(cfg, ["train.epochs=2"])
    assert cfg["train"]["epochs"] == 1 and out["train"]["epochs"] == 2


@pytest.mark.parametrize("override, path, hint", [
    ("train.epoch=3", "train.epoch", "'epochs'"),
    ("model.heads.gesture.num_clases=3", "model.heads.gesture.num_clases", "'num_classes'"),
    ("model.backbone.name=resnet_tms", "model.backbone.name", "'resnet_tsn'"),
    ("model.heads.gesture.name=clip_clasifier", "model.heads.gesture.name", "'clip_classifier'"),
    ("train.optimizer.name=adamw", "train.optimizer.name", "'adam'"),
    ("train.optimizer.weight_decy=0.1", "train.optimizer.weight_decy", "'weight_decay'"),
    ("train.schedule.name=cosin", "train.schedule.name", "'cosine'"),
    ("data.name=fhpa", "data.name", "'fpha'"),
    ("data.num_frame=8", "data.num_frame", "'num_frames'"),
    ("data.augment.scale=[1.0]", "data.augment.scale", "'scales'"),
    ("data.synthetic.clases=4", "data.synthetic.clases", "'classes'"),
])
def test_unknown_names_raise_with_path_and_nearest_name(override, path, hint):
    with pytest.raises(ConfigError) as err:
        load_config(TSN, [override])
    assert err.value.path == path
    assert hint in str(err.value) and TSN in str(err.value)


@pytest.mark.parametrize("override, path, expected", [
    ("train.epochs=three", "train.epochs", "int"),
    ("train.epochs=2.5", "train.epochs", "int"),
    ("model.heads.gesture.dropout=high", "model.heads.gesture.dropout", "float"),
    ("model.backbone.modality=infrared", "model.backbone.modality", "Literal"),
    ("data.modalities=rgb", "data.modalities", "list"),
    ("train.clip_grad=yes", "train.clip_grad", "float"),
])
def test_wrong_types_raise_with_path(override, path, expected):
    with pytest.raises(ConfigError) as err:
        load_config(TSN, [override])
    assert err.value.path == path and expected in str(err.value)


def test_ints_are_accepted_where_floats_are_expected():
    assert load_config(TSN, ["train.optimizer.lr=1"])["train"]["optimizer"]["lr"] == 1


def test_unknown_section_and_missing_required_argument(tmp_path):
    cfg = base()
    cfg["trian"] = {}
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, cfg))
    assert err.value.path == "trian" and "'train'" in str(err.value)

    cfg = base()
    del cfg["model"]["heads"]["gesture"]["num_classes"]
    with pytest.raises(ConfigError, match="num_classes") as err:
        load_config(write(tmp_path, cfg))
    assert err.value.path == "model.heads.gesture"


def test_library_provided_arguments_cannot_be_configured():
    with pytest.raises(ConfigError) as err:
        load_config(TSN, ["model.heads.gesture.feature_info=3"])
    assert err.value.path == "model.heads.gesture.feature_info"
    assert "feature_info" in str(err.value)


def test_bad_files_raise_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(TSN, ["train.epochs"])


def test_unknown_feature_is_reported_at_build_time_with_the_path():
    from handmt.models import build
    cfg = load_config(TSN, ["model.heads.gesture.feature=res6"])
    with pytest.raises(ConfigError) as err:
        build(cfg)
    assert err.value.path == "model.heads.gesture.feature"
    assert "'res5'" in str(err.value)


# -- inheritance (`base:`) ---------------------------------------------------------------------

def write_files(tmp_path, files):
    for name, cfg in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(yaml.safe_dump(cfg))
    return tmp_path / list(files)[-1]


def test_every_shipped_config_and_benchmark_row_loads():
    paths = sorted(Path("configs").rglob("*.yaml"))
    assert len([p for p in paths if "benchmarks" in p.parts]) >= 80
    for path in paths:
        cfg = load_config(path)
        assert "base" not in cfg and cfg["_source"] == str(path)
        assert ("bench" in cfg) == ("benchmarks" in path.parts)


def test_a_child_merges_mappings_and_replaces_lists_and_scalars(tmp_path):
    leaf = write_files(tmp_path, {"base.yaml": base(), "sub/child.yaml": {
        "base": "../base.yaml",
        "model": {"heads": {"gesture": {"dropout": 0.1}}},
        "data": {"modalities": ["rgb", "depth"], "augment": {"scales": [1.0]}},
        "train": {"epochs": 1, "optimizer": {"lr": 0.5}}}})
    cfg, parent = load_config(leaf), base()
    assert cfg["model"]["heads"]["gesture"] == {**parent["model"]["heads"]["gesture"],
                                                "dropout": 0.1}
    assert cfg["data"]["augment"] == {**parent["data"]["augment"], "scales": [1.0]}
    assert cfg["data"]["modalities"] == ["rgb", "depth"]
    assert cfg["train"]["optimizer"] == {"name": "adam", "lr": 0.5}
    assert cfg["train"]["epochs"] == 1 and cfg["eval"] == parent["eval"]
    assert cfg["_source"] == str(leaf)


def test_another_component_replaces_and_null_removes_a_mapping_or_sets_a_value(tmp_path):
    leaf = write_files(tmp_path, {"base.yaml": base(), "child.yaml": {
        "base": "base.yaml",
        "model": {"heads": {"gesture": None,
                            "segmentation": {"name": "segmentation", "feature": "res2"}}},
        "data": {"modalities": ["rgb", "mask"], "augment": None},
        "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "clip_grad": None}}})
    cfg = load_config(leaf)
    assert cfg["model"]["heads"] == {"segmentation": {"name": "segmentation", "feature": "res2"}}
    assert "augment" not in cfg["data"]
    assert cfg["train"]["optimizer"] == {"name": "sgd", "lr": 0.1}  # adam's arguments dropped
    assert cfg["train"]["clip_grad"] is None  # a value set to null, not removed (default 20)


def test_a_benchmark_row_merges_its_bench_section_with_its_bases(tmp_path):
    leaf = write_files(tmp_path, {"base.yaml": {**base(), "bench": {
        "name": "MTUT", "tables": ["multimodal"], "synthetic": ["train.epochs=2"]}},
        "row.yaml": {"base": "base.yaml", "bench": {"name": "RGB alone", "quick": []}}})
    assert load_config(leaf)["bench"] == {"name": "RGB alone", "tables": ["multimodal"],
                                          "synthetic": ["train.epochs=2"], "quick": []}


def test_bases_chain_and_apply_in_order(tmp_path):
    leaf = write_files(tmp_path, {
        "a.yaml": base(),
        "b.yaml": {"base": "a.yaml", "train": {"epochs": 2, "batch_size": 3}},
        "c.yaml": {"train": {"epochs": 5}},
        "d.yaml": {"base": ["b.yaml", "c.yaml"], "train": {"seed": 7}}})
    train = load_config(leaf)["train"]
    assert (train["epochs"], train["batch_size"], train["seed"]) == (5, 3, 7)


def test_a_cycle_or_a_missing_base_names_the_files(tmp_path):
    leaf = write_files(tmp_path, {"a.yaml": {"base": "b.yaml"}, "b.yaml": {"base": "a.yaml"}})
    with pytest.raises(ConfigError, match="cycle") as err:
        load_config(leaf)
    assert err.value.path == "base" and "a.yaml" in str(err.value) and "b.yaml" in str(err.value)
    leaf = write_files(tmp_path, {"c.yaml": {"base": "gone.yaml"}})
    with pytest.raises(ConfigError, match=r"gone.yaml \(the base of .*c.yaml\) does not exist"):
        load_config(leaf)
    leaf = write_files(tmp_path, {"e.yaml": {"base": 3}})
    with pytest.raises(ConfigError, match="expected a file or a list of files"):
        load_config(leaf)


def test_the_saved_run_config_is_the_resolved_one(tmp_path):
    """`handmt train` writes the resolved config: it trains again without its bases."""
    from handmt.cli import main
    from handmt.engine.trainer import CONFIG
    leaf = write_files(tmp_path, {"base.yaml": base(), "child.yaml": {
        "base": "base.yaml", "model": {"backbone": {"arch": "resnet10t"}}}})
    out = tmp_path / "run"
    tiny = ["data.synthetic.classes=2", "data.synthetic.subjects=2", "data.synthetic.seqs=1",
            "data.synthetic.frames=4", "data.synthetic.size=96", "data.size=16",
            "data.num_frames=2", "model.heads.gesture.num_classes=2", "train.epochs=1",
            "train.batch_size=2", "eval.clips=1", "data.cache=false"]
    assert main(["train", str(leaf), "--out", str(out), *tiny]) == 0
    saved = yaml.safe_load((out / CONFIG).read_text())
    (tmp_path / "base.yaml").unlink()  # the run no longer needs it
    assert "base" not in saved and saved["model"]["backbone"]["arch"] == "resnet10t"
    assert saved["train"]["optimizer"] == base()["train"]["optimizer"]  # inherited
    copy = tmp_path / "copy.yaml"
    copy.write_text(yaml.safe_dump(saved))
    resolved = load_config(copy)
    assert {k: v for k, v in resolved.items() if k != "_source"} == \
        {k: v for k, v in saved.items() if k != "_source"}
    assert resolved["model"]["backbone"]["arch"] == "resnet10t"
    assert resolved["train"]["epochs"] == 1 and resolved["data"]["size"] == 16


# -- the bench section and checks across sections ------------------------------------------------

def test_the_bench_section_is_checked_and_training_ignores_it():
    from handmt.engine.trainer import run_config
    cfg = load_config(TSN, ["bench={name: TSN, tables: [gesture], folds: 2}"])
    assert "bench" not in run_config(cfg)
    with pytest.raises(ConfigError) as err:
        load_config(TSN, ["bench={name: TSN, tables: [gesture], fold: 2}"])
    assert err.value.path == "bench.fold" and "'folds'" in str(err.value)
    with pytest.raises(ConfigError, match="tables") as err:
        load_config(TSN, ["bench={name: TSN}"])
    assert err.value.path == "bench"


@pytest.mark.parametrize("config, overrides, path, message", [
    (TSN, ["model.heads.gesture.num_classes=6"], "model.heads.gesture.num_classes",
     "is 6, but the dataset has 45 classes (data.synthetic.classes"),
    (TSN, ["data.synthetic.classes=[victory, wave, 3]", "model.heads.gesture.num_classes=2"],
     "model.heads.gesture.num_classes", "is 2, but the dataset has 3 classes"),
    ("configs/egogesture_action.yaml", ["model.heads.gesture.num_classes=25"],
     "model.heads.gesture.num_classes", "has 83 classes (data.name 'egogesture'"),
    ("configs/cpu_fpha_action_msd.yaml", ["data.modalities=[rgb]"], "model.heads.depth",
     "needs data.modalities to include 'depth' (has: rgb)"),
    ("configs/cpu_fpha_seg.yaml", ["data.modalities=[rgb, depth]"], "model.heads.segmentation",
     "needs data.modalities to include 'mask' (has: rgb, depth)"),
    (TSN, ["model.heads.depth={name: msd, target: flow}"], "model.heads.depth",
     "needs data.modalities to include 'flow' (has: rgb)"),
    (TSN, ["model.backbone.modality=depth"], "model.backbone",
     "needs data.modalities to include 'depth' (has: rgb)"),
    ("configs/nvgesture_mtut_i3d_flow.yaml", ["data.modalities=[rgb, depth]"],
     "model.modalities", "needs data.modalities to include 'flow' (has: rgb, depth)"),
    ("configs/fpha_skeleton.yaml", ["data.modalities=[rgb]", "data.augment=null"],
     "model.backbone", "needs data.modalities to include 'joints' (has: rgb)"),
    ("configs/egogesture_action.yaml", ["model.heads.gesture={name: collab, num_classes: 83, "
                                        "feature: res3}"], "model.heads.gesture",
     "needs pose labels, which data.name 'egogesture' does not have"),
])
def test_checks_across_sections_name_both_keys(config, overrides, path, message):
    with pytest.raises(ConfigError) as err:
        load_config(config, overrides)
    assert err.value.path == path and message in str(err.value)


def test_a_head_may_have_more_classes_than_the_data_and_a_folder_is_checked_when_read():
    assert load_config(TSN, ["data.synthetic.classes=6"])["data"]["synthetic"]["classes"] == 6
    # an FPHA-layout folder lists its own classes (FPHA's 45, fewer in a subset): not at load
    load_config(TSN, ["data.root=/somewhere", "model.heads.gesture.num_classes=3"])


def test_a_config_error_survives_pickling():
    """A --jobs worker's ConfigError crosses to run.py pickled: its path and message arrive."""
    error = pickle.loads(pickle.dumps(ConfigError("train.semi.weight", "must be >= 0")))
    assert (error.path, error.message, str(error)) == (
        "train.semi.weight", "must be >= 0", "train.semi.weight: must be >= 0")
