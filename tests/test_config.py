"""Config loading: overrides, and errors that name the dotted path and the nearest names."""

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
