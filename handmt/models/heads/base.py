"""The head registry and the lookup of the backbone feature a head reads.

A head (docs/design.md, "Model contract") is an nn.Module built with the backbone's
`feature_info` and its config arguments, with `forward(features, batch)` -> named outputs,
`loss(outputs, batch)` -> named weighted losses, `predict(outputs, batch)` -> the `Prediction`
fields it provides (models/base.py), `auxiliary` (true for a training aid that
`Model.deploy()` drops) and `requires(args)`: from its arguments (the config's, defaults filled
in), the data its loss reads besides the label: modalities of `data.modalities` ("depth",
"mask") or "pose", the joint labels of a dataset that has them; config.py checks them when a
config is loaded."""

from ...errors import ConfigError, closest
from ...registry import Registry

HEADS = Registry("head")


def feature_spec(feature_info, name):
    """The FeatureSpec of feature `name`, or a ConfigError listing the backbone's features."""
    if name not in feature_info:
        raise ConfigError("feature", f"the backbone has no feature {name!r}"
                          f"{closest(name, feature_info)}; it has: {', '.join(feature_info)}")
    return feature_info[name]

