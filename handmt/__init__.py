"""handmt: multi-task hand understanding from video (gesture, 3D pose, depth-supervised masks)."""

from .config import load_config
from .errors import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "load_config", "__version__"]
