"""The error every layer raises for a bad config value, and the hint it carries. The bottom of
the package: it imports nothing from handmt (docs/design.md, "Layers")."""

import difflib


class ConfigError(ValueError):
    """A config value that cannot be used; `path` is its dotted location (e.g. `train.lr`)."""

    def __init__(self, path, message):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)

    def __reduce__(self):  # pickled whole: a --jobs worker's error reaches run.py as it was
        return type(self), (self.path, self.message)


def closest(name, choices):
    """A ' (did you mean ...?)' hint for an unknown name, or ''."""
    near = difflib.get_close_matches(str(name), [str(c) for c in choices], n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""
