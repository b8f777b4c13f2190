"""FPHA's two cameras: the official intrinsics and the depth-to-colour extrinsic (docs/design.md).

Skeleton files hold joints in the depth camera's frame, in mm. `to_color` moves them to the colour
camera's frame; `project_color` / `project_depth` give pixels. A dataset may override every
constant with a `handmt_camera.json` at its root (the synthetic generator writes one).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry import project

CAMERA_FILE = "handmt_camera.json"


def _intrinsics(fx, fy, cx, cy):
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


@dataclass
class FPHACamera:
    color_K: np.ndarray = field(default_factory=lambda: _intrinsics(
        1395.749023, 1395.749268, 935.732544, 540.681030))
    depth_K: np.ndarray = field(default_factory=lambda: _intrinsics(
        475.065948, 475.065857, 315.944855, 245.287079))
    # [R | t] taking depth-camera points to colour-camera points, t in mm.
    extrinsic: np.ndarray = field(default_factory=lambda: np.array([
        [0.999988496304, -0.00468848412856, 0.000982563360594, 25.7],
        [0.00469115935266, 0.999985218048, -0.00273845880292, 1.22],
        [-0.000969709653873, 0.00274303671904, 0.99999576807, 3.902]]))
    color_size: tuple = (1920, 1080)  # (width, height)
    depth_size: tuple = (640, 480)

    @classmethod
    def for_dataset(cls, root):
        """The camera of the dataset at `root`: its `handmt_camera.json` if present, else FPHA's."""
        path = Path(root) / CAMERA_FILE
        if not path.exists():
            return cls()
        try:
            spec = json.loads(path.read_text())
            return cls(color_K=_intrinsics(*(spec["color"][k] for k in ("fx", "fy", "cx", "cy"))),
                       depth_K=_intrinsics(*(spec["depth"][k] for k in ("fx", "fy", "cx", "cy"))),
                       extrinsic=np.asarray(spec["extrinsic"], dtype=np.float64).reshape(3, 4),
                       color_size=(int(spec["color"]["width"]), int(spec["color"]["height"])),
                       depth_size=(int(spec["depth"]["width"]), int(spec["depth"]["height"])))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: malformed camera file ({err!r}); expected keys color/depth "
                             "{fx, fy, cx, cy, width, height} and a 3x4 extrinsic") from err

    def to_dict(self):
        def intr(K, size):
            return {"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2],
                    "width": size[0], "height": size[1]}
        return {"color": intr(self.color_K, self.color_size),
                "depth": intr(self.depth_K, self.depth_size),
                "extrinsic": self.extrinsic.tolist()}

    def save(self, root):
        (Path(root) / CAMERA_FILE).write_text(json.dumps(self.to_dict(), indent=2))

    def to_color(self, points):
        """Depth-camera points (..., 3) in mm -> colour-camera points (..., 3) in mm."""
        points = np.asarray(points, dtype=np.float64)
        return points @ self.extrinsic[:, :3].T + self.extrinsic[:, 3]

    def to_depth(self, points):
        """Colour-camera points (..., 3) -> depth-camera points (..., 3); inverse of to_color."""
        points = np.asarray(points, dtype=np.float64)
        return (points - self.extrinsic[:, 3]) @ self.extrinsic[:, :3]

    def project_color(self, points):
        """Depth-camera points (..., 3) in mm -> colour pixels (..., 2)."""
        return project(self.to_color(points), self.color_K)

    def project_depth(self, points):
        """Depth-camera points (..., 3) in mm -> depth pixels (..., 2)."""
        return project(points, self.depth_K)

