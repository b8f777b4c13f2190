"""One small registry per kind of component: a dict of names plus a decorator.

Each package keeps its registry in its `base` module; importing the package imports every
component file, and each registers itself there. `check` validates a config section against the
component's signature (names and simple annotated types), so a wrong config fails with the dotted
path before anything is built; `build` then calls the component.
"""

import inspect
import types
import typing

from .errors import ConfigError, closest


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name=None):
        def decorator(fn):
            key = name or fn.__name__
            if key in self._entries:
                raise KeyError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = fn
            return fn
        return decorator

    def __contains__(self, name):
        return name in self._entries

    def __getitem__(self, name):
        return self._entries[name]

    def names(self):
        return sorted(self._entries)

    def get(self, name, path):
        if name not in self._entries:
            raise ConfigError(path, f"unknown {self.kind} {name!r}{closest(name, self._entries)}; "
                              f"known: {', '.join(self.names())}")
        return self._entries[name]

    def check(self, cfg, path, **defaults):
        """Validate `cfg` = {name: ..., **kwargs} against the signature; return (fn, kwargs)."""
        if not isinstance(cfg, dict) or "name" not in cfg:
            raise ConfigError(path, f"expected a mapping with a 'name' key naming a {self.kind}")
        fn = self.get(cfg["name"], f"{path}.name")
        kwargs = {k: v for k, v in cfg.items() if k != "name"}
        check_arguments(fn, kwargs, path, provided=defaults)
        return fn, kwargs

    def arguments(self, cfg):
        """The arguments the component `cfg` names is built with: the config's, and the
        signature's defaults for the others (those the library provides excepted)."""
        params = inspect.signature(self[cfg["name"]]).parameters.values()
        return {**{p.name: p.default for p in params if p.default is not p.empty},
                **{k: v for k, v in cfg.items() if k != "name"}}

    def build(self, cfg, path, **defaults):
        """Build the component `cfg` names; `defaults` are arguments the caller supplies
        (e.g. in_channels read from a backbone), which the config may not set."""
        fn, kwargs = self.check(cfg, path, **defaults)
        try:
            return fn(**kwargs, **defaults)
        except ConfigError as err:  # a component rejecting one of its arguments
            raise ConfigError(f"{path}.{err.path}", err.message) from None


def check_arguments(fn, kwargs, path, provided=()):
    """Raise ConfigError naming `path.key` for unknown, missing or wrongly typed arguments."""
    signature = inspect.signature(fn)
    params = {n: p for n, p in signature.parameters.items()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    settable = [n for n in params if n not in provided]
    for key in kwargs:
        if key in provided:
            raise ConfigError(f"{path}.{key}", "is set by the library (e.g. read from the "
                              "backbone's feature_info); remove it from the config")
        if key not in params:
            raise ConfigError(f"{path}.{key}", f"unknown argument{closest(key, settable)}; "
                              f"valid: {', '.join(settable)}")
    try:
        signature.bind(**kwargs, **{n: None for n in provided if n in params})
    except TypeError as err:
        raise ConfigError(path, str(err)) from None
    hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    for key, value in kwargs.items():
        if key in hints and not matches(value, hints[key]):
            raise ConfigError(f"{path}.{key}", f"expected {type_name(hints[key])}, "
                              f"got {type(value).__name__} {value!r}")


def matches(value, annotation):
    """Whether a YAML value fits a simple annotation (int, float, str, bool, None, list/tuple,
    dict, Literal, Optional/Union). Unknown annotations accept anything."""
    if annotation is typing.Any:
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        homogeneous = origin is list or (len(args) == 2 and args[1] is Ellipsis)
        return not (args and homogeneous) or all(matches(v, args[0]) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def type_name(annotation):
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
