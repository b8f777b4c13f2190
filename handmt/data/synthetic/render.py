"""Software renderer of a skeleton sequence into colour, depth and hand-mask frames (numpy/OpenCV).

Implements the renderer of DESIGN.md, "Synthetic FPHA-format data". The hand is drawn from its
21 joints alone (so any skeleton, real FPHA motion included, can be rendered): tapered capsules
along the bones, an ellipsoid palm, a sleeved forearm, z-buffered against a static scene.

- colour (colour camera, `camera.to_color` + `color_K`): cluttered background with
  skin-coloured blobs, near objects, Lambert + specular shading under a light that moves, global
  illumination drift and colour cast, sensor noise, JPEG.
- depth (depth camera, `depth_K`, uint16 mm, 0 = invalid): a far table/wall plane (>= 700 mm),
  the same near objects, axial noise growing with depth, random dropouts, dropouts along depth
  edges and a few invalid patches. Depth separates the hand from the clutter, colour does not.
- mask (colour image pixels, uint8 0/255): visible hand pixels (the forearm is a sleeve, not hand).

Speed: each primitive is evaluated only inside its bounding box, the scene (background, objects,
noise banks) once per video; a frame costs a few ms at 320 px.
"""

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from ...hand import BONES, FINGER_CHAINS, WRIST

NEAR_MM = 120.0  # primitives are clipped to the half-space in front of this plane
HAND, SLEEVE = 0, 1  # part ids; distractor objects follow

# (start, end) radii in mm of each bone's capsule in `hand.BONES` order, for a hand whose
# wrist-to-middle-MCP bone is REFERENCE_PALM_MM long; other hands scale them.
REFERENCE_PALM_MM = 84.0
BONE_RADII = np.array([
    [16.0, 13.0], [12.0, 11.0], [12.0, 11.0], [12.0, 10.5], [11.0, 9.5],
    [12.0, 10.5], [10.5, 9.5], [9.5, 8.5],
    [9.8, 9.0], [9.0, 8.3], [8.3, 7.4],
    [10.2, 9.4], [9.4, 8.6], [8.6, 7.7],
    [9.6, 8.9], [8.9, 8.2], [8.2, 7.3],
    [8.5, 7.8], [7.8, 7.2], [7.2, 6.6],
])
TIPS = np.array([BONES.index((chain[2], chain[3])) for chain in FINGER_CHAINS])
MCPS = np.array([chain[0] for chain in FINGER_CHAINS[1:]])  # index..pinky


@dataclass
class Shapes:
    """Primitives in one camera's frame (mm): capsules (N, 2, 3) ends with (N, 2) radii, and
    ellipsoids with (M, 3) centres and (M, 3, 3) half-axes as columns; each has a part id."""

    capsule_ends: np.ndarray
    capsule_radii: np.ndarray
    capsule_parts: np.ndarray
    centres: np.ndarray
    axes: np.ndarray
    ellipsoid_parts: np.ndarray

    def moved(self, camera):
        """The same shapes seen from the colour camera (they are given in the depth camera's)."""
        rotation = camera.extrinsic[:, :3]
        return Shapes(camera.to_color(self.capsule_ends), self.capsule_radii, self.capsule_parts,
                      camera.to_color(self.centres), rotation @ self.axes, self.ellipsoid_parts)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def hand_shapes(joints):
    """Capsules and palm ellipsoid of a hand from its joints (21, 3), plus the sleeved forearm."""
    along = joints[MCPS].mean(0) - joints[WRIST]
    palm_length = np.linalg.norm(along)
    scale = np.linalg.norm(joints[FINGER_CHAINS[2][0]] - joints[WRIST]) / REFERENCE_PALM_MM
    along = along / palm_length
    across = joints[MCPS[0]] - joints[MCPS[-1]]
    half_width = 0.5 * np.linalg.norm(across) + 9.0 * scale
    across = _unit(across - (across @ along) * along)
    normal = np.cross(along, across)

    ends = joints[np.array(BONES)].copy()
    radii = BONE_RADII * scale
    # Fingertip joints lie on the skin: stop the capsule axis one radius short of them.
    tip_direction = _unit(ends[TIPS, 1] - ends[TIPS, 0])
    ends[TIPS, 1] -= tip_direction * radii[TIPS, 1:]
    knuckles = joints[MCPS[[0, -1]]]
    forearm = joints[WRIST] - along[None] * np.array([[18.0], [260.0]]) * scale
    ends = np.concatenate([ends, knuckles[None], forearm[None]])
    radii = np.concatenate([radii, [[10.5 * scale, 9.5 * scale]], [[30 * scale, 40 * scale]]])
    parts = np.array([HAND] * (len(BONES) + 1) + [SLEEVE])

    centre = joints[WRIST] + along * 0.52 * palm_length
    axes = np.stack([along * 0.58 * palm_length, across * half_width, normal * 14.0 * scale], 1)
    return Shapes(ends, radii, parts, centre[None], axes[None], np.array([HAND]))


def _clip_near(ends, radii):
    """Cut capsules at the near plane; drop those wholly behind it."""
    z = ends[..., 2]
    keep = z.max(1) > NEAR_MM
    ends, radii, z = ends[keep].copy(), radii[keep].copy(), z[keep]
    for near, far in ((0, 1), (1, 0)):
        cut = z[:, near] < NEAR_MM
        w = ((NEAR_MM - z[cut, near]) / (z[cut, far] - z[cut, near]))[:, None]
        ends[cut, near] += w * (ends[cut, far] - ends[cut, near])
        radii[cut, near] += w[:, 0] * (radii[cut, far] - radii[cut, near])
    return ends, radii, keep


@dataclass
class Layer:
    """Rasterized primitives inside `box` = (x0, y0, x1, y1): z (mm, inf where empty), part id
    (-1 where empty), diffuse shade and specular highlight (when a light was given)."""

    box: tuple
    z: np.ndarray
    part: np.ndarray
    shade: np.ndarray | None
    highlight: np.ndarray | None


def rasterize(shapes, K, size, light=None, ambient=0.45):
    """Z-buffer `shapes` into an image of `size` = (width, height) with intrinsics K.

    Capsules are drawn in image space: the projected axis with a radius interpolated along it,
    depth bulging by the 3D radius toward the camera. Ellipsoids are ray-cast exactly. With a
    `light` (unit vector toward it, camera frame) it also returns Lambert shade and a Phong
    highlight. Every primitive is evaluated inside its bounding box only, all of them in one
    vectorized pass. Returns None when nothing falls inside the image."""
    (fx, fy), (cx, cy) = K[[0, 1], [0, 1]].tolist(), K[:2, 2].tolist()
    ends, radii, keep = _clip_near(shapes.capsule_ends, shapes.capsule_radii)
    uv = ends[..., :2] / ends[..., 2:] * (fx, fy) + (cx, cy)
    pix_radii = fx * radii / ends[..., 2]
    capsule_boxes = np.concatenate([(uv - pix_radii[..., None]).min(1),
                                    (uv + pix_radii[..., None]).max(1)], 1)
    # Ellipsoid boxes: the projected corners of their bounding parallelepipeds.
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, 8)
    corners = shapes.centres[:, None] + np.einsum("mij,jk->mki", shapes.axes, signs)
    in_front = corners[..., 2].min(1) > NEAR_MM
    corner_uv = corners[..., :2] / np.maximum(corners[..., 2:], NEAR_MM) * (fx, fy) + (cx, cy)
    ellipsoid_boxes = np.concatenate([corner_uv.min(1), corner_uv.max(1)], 1)[in_front]
    capsule_boxes, ellipsoid_boxes = (_pixel_boxes(b, size) for b in (capsule_boxes,
                                                                      ellipsoid_boxes))
    boxes = np.concatenate([capsule_boxes, ellipsoid_boxes])
    x0, y0 = boxes[:, :2].min(0) if len(boxes) else (0, 0)
    x1, y1 = boxes[:, 2:].max(0) if len(boxes) else (0, 0)
    if x1 <= x0 or y1 <= y0:
        return None

    fragments = [_capsule_fragments(uv, ends[..., 2], radii, pix_radii, capsule_boxes),
                 _ellipsoid_fragments(shapes.centres[in_front], shapes.axes[in_front],
                                      ellipsoid_boxes, (fx, fy, cx, cy))]
    u, v, z, normal, owner = (np.concatenate(f, axis=-1) for f in zip(*fragments, strict=True))
    parts = np.concatenate([shapes.capsule_parts[keep], shapes.ellipsoid_parts[in_front]])
    # Resolve visibility: the nearest fragment of every pixel wins.
    width, height = x1 - x0, y1 - y0
    flat = ((v - y0) * width + (u - x0)).astype(np.intp)
    zbuf = np.full(width * height, np.inf, np.float32)
    np.minimum.at(zbuf, flat, z)
    win = np.nonzero(z <= zbuf[flat])[0]
    flat = flat[win]
    part = np.full(width * height, -1, np.int8)
    part[flat] = parts[owner[win].astype(np.intp)]
    shade = highlight = None
    if light is not None:
        normals = np.zeros((3, width * height), np.float32)
        normals[:, flat] = normal[:, win]
        light = np.asarray(light, dtype=np.float32)
        shade = ambient + (1.0 - ambient) * np.maximum(light @ normals, 0.0)
        highlight = np.maximum(_unit(light - np.float32([0, 0, 1])) @ normals, 0.0)
        for _ in range(4):  # a Phong exponent of 16
            highlight *= highlight
        shade, highlight = shade.reshape(height, width), highlight.reshape(height, width)
    return Layer((x0, y0, x1, y1), zbuf.reshape(height, width), part.reshape(height, width),
                 shade, highlight)


def _pixel_boxes(boxes, size):
    """Float boxes (x0, y0, x1, y1) -> integer pixel ranges [x0, x1) x [y0, y1) in the image."""
    boxes = np.concatenate([np.floor(boxes[:, :2]), np.ceil(boxes[:, 2:]) + 1], 1)
    return np.clip(boxes, 0, [size[0], size[1], size[0], size[1]]).astype(int)


def _box_pixels(boxes):
    """The pixels of every box, concatenated: counts per box, u and v (float32)."""
    widths, heights = (boxes[:, 2:] - boxes[:, :2]).clip(0).T
    counts = widths * heights
    x0, y0, widths, starts = np.repeat(np.stack([boxes[:, 0], boxes[:, 1], widths,
                                                 np.cumsum(counts) - counts]).astype(np.float32),
                                       counts, axis=1)
    k = np.arange(counts.sum(), dtype=np.float32) - starts  # index inside the box
    row = np.floor((k + 0.5) / widths)
    return counts, x0 + (k - row * widths), y0 + row


def _capsule_fragments(uv, depth, radii, pix_radii, boxes):
    """Covered pixels of each capsule: u, v, z, normal (3, n), capsule index."""
    counts, u, v = _box_pixels(boxes)
    axis = uv[:, 1] - uv[:, 0]
    inverse = 1.0 / np.maximum((axis * axis).sum(1), 1e-6)
    params = np.stack([*uv[:, 0].T, *(axis * inverse[:, None]).T, *axis.T,
                       pix_radii[:, 0], np.diff(pix_radii)[:, 0], depth[:, 0],
                       np.diff(depth)[:, 0], radii[:, 0], np.diff(radii)[:, 0],
                       np.arange(len(uv))]).astype(np.float32)
    ax, ay, gx, gy, ex, ey, R0, dR, z0, dz, r0, dr, owner = np.repeat(params, counts, axis=1)
    du, dv = u - ax, v - ay
    s = np.clip(du * gx + dv * gy, 0.0, 1.0)  # position along the projected axis
    R = R0 + s * dR
    dx, dy = (du - s * ex) / R, (dv - s * ey) / R
    inside = np.nonzero(dx * dx + dy * dy < 1.0)[0]
    s, dx, dy = s[inside], dx[inside], dy[inside]
    bulge = np.sqrt(np.maximum(1.0 - dx * dx - dy * dy, 0.0))
    z = z0[inside] + s * dz[inside] - (r0[inside] + s * dr[inside]) * bulge
    return u[inside], v[inside], z, np.stack([dx, dy, -bulge]), owner[inside]


def _ellipsoid_fragments(centres, axes, boxes, intrinsics):
    """Covered pixels of each ellipsoid, ray-cast: the ray X = t (x, y, 1) in the ellipsoid's
    unit-sphere coordinates is o + t d, with |o + t d| = 1 at the surface (z = t)."""
    fx, fy, cx, cy = intrinsics
    counts, u, v = _box_pixels(boxes)
    inverse = np.linalg.inv(axes).astype(np.float32) if len(axes) else np.zeros((0, 3, 3))
    o = -np.einsum("mij,mj->mi", inverse, centres)
    params = np.concatenate([inverse.reshape(-1, 9), o, (o * o).sum(1, keepdims=True) - 1.0,
                             np.arange(len(axes))[:, None]], 1).T.astype(np.float32)
    params = np.repeat(params, counts, axis=1)
    inverse, o, oo, owner = params[:9].reshape(3, 3, -1), params[9:12], params[12], params[13]
    x, y = (u - cx) / fx, (v - cy) / fy
    d = inverse[:, 0] * x + inverse[:, 1] * y + inverse[:, 2]
    dd, od = (d * d).sum(0), (o * d).sum(0)
    disc = od * od - dd * oo
    hit = np.nonzero(disc > 0.0)[0]
    t = (-od[hit] - np.sqrt(disc[hit])) / dd[hit]
    sphere = o[:, hit] + t * d[:, hit]
    normal = (inverse[:, :, hit] * sphere[:, None]).sum(0)  # the gradient inverse^T sphere
    return u[hit], v[hit], t, normal / np.sqrt((normal * normal).sum(0)), owner[hit]


def _window(layer, grow=0, size=None):
    x0, y0, x1, y1 = layer.box
    if grow:
        x0, y0 = max(x0 - grow, 0), max(y0 - grow, 0)
        x1, y1 = min(x1 + grow, size[0]), min(y1 + grow, size[1])
    return slice(y0, y1), slice(x0, x1)


def _clutter(rng, width, height, skin):
    """A cluttered desk: wall and table colours, blotchy texture, random shapes and stripes, and
    skin-coloured blobs and finger-like strokes (BGR float32, 0-255)."""
    canvas = np.empty((height, width, 3), np.uint8)
    horizon = int(height * rng.uniform(0.0, 0.4))
    canvas[:horizon] = _colour(rng, (0.0, 0.3), (0.5, 0.95))
    canvas[horizon:] = _colour(rng, (0.0, 0.45), (0.25, 0.85))
    scale = width / 100.0

    def point():
        return int(rng.uniform(-0.1, 1.1) * width), int(rng.uniform(-0.1, 1.1) * height)

    for _ in range(rng.integers(10, 18)):
        colour = _colour(rng, (0.05, 0.75), (0.1, 0.95))
        kind = rng.integers(4)
        if kind == 0:
            box = cv2.boxPoints((point(), tuple(rng.uniform(5, 35, 2) * scale),
                                 rng.uniform(0, 180)))
            cv2.fillPoly(canvas, [box.astype(np.int32)], colour, cv2.LINE_AA)
        elif kind == 1:
            axes = tuple(int(a) for a in rng.uniform(2, 18, 2) * scale)
            cv2.ellipse(canvas, point(), axes, rng.uniform(0, 180), 0, 360, colour, -1,
                        cv2.LINE_AA)
        elif kind == 2:
            cv2.line(canvas, point(), point(), colour, max(1, int(rng.uniform(0.3, 3) * scale)),
                     cv2.LINE_AA)
        else:  # a striped patch (fabric, keyboard, book edges)
            x, y = point()
            w, h = (int(a) for a in rng.uniform(8, 30, 2) * scale)
            step = max(2, int(rng.uniform(0.8, 3) * scale))
            other = _colour(rng, (0.05, 0.75), (0.1, 0.95))
            cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, -1)
            for offset in range(0, w, 2 * step):
                cv2.rectangle(canvas, (x + offset, y), (x + offset + step - 1, y + h), other, -1)
    for _ in range(rng.integers(2, 5)):  # skin-coloured distractors: blobs and finger strokes
        tone = (np.asarray(skin) * 255 * rng.uniform(0.8, 1.15, 3)).clip(0, 255).tolist()
        centre, angle = point(), rng.uniform(0, 180)
        if rng.random() < 0.5:
            axes = tuple(int(a) for a in rng.uniform(4, 14, 2) * scale)
            cv2.ellipse(canvas, centre, axes, angle, 0, 360, tone, -1, cv2.LINE_AA)
        else:
            direction = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
            for k in range(rng.integers(2, 5)):
                base = np.array(centre) + k * 2.2 * scale * direction[::-1] * (1, -1)
                tip = base + rng.uniform(10, 20) * scale * direction
                cv2.line(canvas, tuple(base.astype(int)), tuple(tip.astype(int)), tone,
                         max(1, int(1.8 * scale)), cv2.LINE_AA)
    shading = cv2.resize(rng.normal(1.0, 0.12, (5, 8)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)  # uneven light on the desk
    return cv2.GaussianBlur(canvas.astype(np.float32) * shading[..., None], (3, 3), 0)


def _colour(rng, saturation, value):
    """A random BGR colour (0-255 floats) of any hue within the saturation and value ranges."""
    red, green, blue = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*saturation),
                                           rng.uniform(*value))
    return [255.0 * blue, 255.0 * green, 255.0 * red]


def _objects(rng, camera, nearest, farthest):
    """Two or three objects (bottles, cups, balls, boxes) at depths between the hand and the
    background, in the depth camera's frame; parts numbered from SLEEVE + 1."""
    (fx, fy), (cx, cy) = camera.depth_K[[0, 1], [0, 1]], camera.depth_K[:2, 2]
    width, height = camera.depth_size
    ends, radii, centres, axes = [], [], [], []
    for _ in range(rng.integers(2, 4)):
        z = rng.uniform(nearest, farthest)
        centre = np.array([(rng.uniform(0, width) - cx) / fx * z,
                           (rng.uniform(0.2, 1.0) * height - cy) / fy * z, z])
        if rng.random() < 0.5:  # an upright capsule, slightly tilted
            axis = _unit(np.array([rng.normal(0, 0.2), -1.0, rng.normal(0, 0.3)]))
            half = rng.uniform(30, 70) * axis
            ends.append([centre - half, centre + half])
            radii.append([rng.uniform(18, 40)] * 2)
        else:
            rotation = cv2.Rodrigues(rng.normal(0, 1.0, 3))[0]
            centres.append(centre)
            axes.append(rotation * rng.uniform(20, 60, 3))
    count = len(ends) + len(centres)
    return Shapes(np.reshape(ends, (-1, 2, 3)), np.reshape(radii, (-1, 2)),
                  np.arange(SLEEVE + 1, SLEEVE + 1 + len(ends)),
                  np.reshape(centres, (-1, 3)), np.reshape(axes, (-1, 3, 3)),
                  np.arange(SLEEVE + 1 + len(ends), SLEEVE + 1 + count))


def _plane(rng, K, size, nearest):
    """Depth (mm) of a table/wall plane, nearer at the bottom of the image, at least `nearest`."""
    u = (np.arange(size[0], dtype=np.float32)[None] - K[0, 2]) / K[0, 0]
    v = (np.arange(size[1], dtype=np.float32)[:, None] - K[1, 2]) / K[1, 1]
    depth = rng.uniform(850, 1150) / (1.0 + rng.uniform(-0.15, 0.15) * u
                                      + rng.uniform(0.15, 0.6) * v)
    return depth * max(1.0, nearest / depth.min())


class Scene:
    """What stays fixed over one video (DESIGN.md, "Synthetic FPHA-format data"): backgrounds,
    near objects, colours, light path, illumination drift and noise banks. `render` draws one
    frame of the hand in it."""

    def __init__(self, camera, rng, skin, joints, noise_margin=16):
        self.camera = camera
        frames = len(joints)
        hand_far = float(joints[..., 2].max())
        sleeve = _colour(rng, (0.2, 0.9), (0.1, 0.8))
        objects = _objects(rng, camera, hand_far + 40.0, hand_far + 200.0)
        count = SLEEVE + 1 + len(objects.capsule_parts) + len(objects.centres)
        self.albedo = np.float32([_colour(rng, (0.1, 0.9), (0.2, 0.95)) for _ in range(count)])
        self.albedo[HAND] = np.asarray(skin) * 255.0
        self.albedo[SLEEVE] = sleeve
        self.gloss = rng.uniform(0, 60, count).astype(np.float32)
        self.gloss[HAND] = rng.uniform(20, 45)

        # A light above and in front of the hand that wanders, a global gain and colour cast
        # that drift: the illumination changes over the sequence.
        time = np.linspace(0.0, 1.0, frames)[:, None]
        light = rng.uniform([-0.6, -1.0, -1.0], [0.6, -0.3, -0.4])
        wander = rng.normal(0.0, 0.35, 3) * np.sin(2 * np.pi * (rng.uniform(0.3, 1.0) * time
                                                                + rng.uniform()))
        self.lights = _unit(light + wander)
        drift = 1.0 + rng.uniform(0.05, 0.25) * np.sin(2 * np.pi * (rng.uniform(0.3, 1.2) * time
                                                                    + rng.uniform()))
        cast = 1.0 + rng.normal(0.0, 0.05, 3) + rng.normal(0.0, 0.03, 3) * time
        self.gain = (rng.uniform(0.75, 1.15) * drift * cast).astype(np.float32)

        self.color_bg = _clutter(rng, *camera.color_size, skin)
        self.color_z = np.full(self.color_bg.shape[:2], np.inf, np.float32)
        self._paint(self.color_bg, self.color_z, rasterize(
            objects.moved(camera), camera.color_K, camera.color_size, _unit(light)))
        self.depth_bg = _plane(rng, camera.depth_K, camera.depth_size,
                               max(700.0, hand_far + 250.0)).astype(np.float32)
        layer = rasterize(objects, camera.depth_K, camera.depth_size)
        if layer is not None:
            window = _window(layer)
            np.minimum(self.depth_bg[window], layer.z, out=self.depth_bg[window])
        for _ in range(rng.integers(1, 4)):  # dark or shiny patches the sensor cannot read
            centre = tuple(int(c) for c in rng.uniform(0, 1, 2) * camera.depth_size)
            axes = tuple(int(a) for a in rng.uniform(0.02, 0.08, 2) * camera.depth_size[0])
            cv2.ellipse(self.depth_bg, centre, axes, rng.uniform(0, 180), 0, 360, 0.0, -1)

        # Noise banks, cropped at a random offset per frame.
        margin = noise_margin
        width, height = camera.color_size
        self.color_noise = rng.normal(0, rng.uniform(2.0, 6.0),
                                      (height + margin, width + margin, 3)).astype(np.float32)
        width, height = camera.depth_size
        self.depth_noise = rng.normal(0, 1.0, (height + margin, width + margin)).astype(np.float32)
        self.dropout = rng.random((height + margin, width + margin), dtype=np.float32)
        self.dropout_rate = rng.uniform(0.005, 0.02)
        self.offsets = rng.integers(0, margin + 1, (frames, 2))

    def _paint(self, image, image_z, layer):
        """Draw a shaded layer into `image` where it is nearer than `image_z`; returns the window
        and the painted pixels."""
        if layer is None:
            return None, None
        window = _window(layer)
        front = layer.z < image_z[window]
        part = layer.part[front]
        image[window][front] = (self.albedo[part] * layer.shade[front][:, None]
                                + self.gloss[part][:, None] * layer.highlight[front][:, None])
        image_z[window][front] = layer.z[front]
        return window, front & (layer.part == HAND)

    def render(self, joints, index):
        """Frame `index` with the hand at `joints` (21, 3; depth camera, mm): colour (H, W, 3)
        uint8 BGR, depth (h, w) uint16 mm (0 invalid), mask (H, W) uint8 0/255."""
        camera = self.camera
        shapes = hand_shapes(joints)
        dy, dx = self.offsets[index]

        color, color_z = self.color_bg.copy(), self.color_z.copy()
        mask = np.zeros(color.shape[:2], np.uint8)
        window, hand = self._paint(color, color_z, rasterize(
            shapes.moved(camera), camera.color_K, camera.color_size, self.lights[index]))
        if window is not None:
            mask[window][hand] = 255
        color *= self.gain[index]
        color += self.color_noise[dy:dy + color.shape[0], dx:dx + color.shape[1]]
        color = cv2.GaussianBlur(color, (3, 3), 0.6)
        color = np.clip(color, 0, 255).astype(np.uint8)

        depth = self.depth_bg.copy()
        layer = rasterize(shapes, camera.depth_K, camera.depth_size)
        height, width = depth.shape
        dropout = self.dropout[dy:dy + height, dx:dx + width]
        if layer is not None:
            window = _window(layer)
            behind = depth[window]
            front = (layer.z < behind) | ((behind == 0) & (layer.part >= 0))
            behind[front] = layer.z[front]
            # Sensors lose pixels along depth discontinuities: drop most of them.
            window = _window(layer, grow=2, size=camera.depth_size)
            edges = cv2.morphologyEx(depth[window], cv2.MORPH_GRADIENT, np.ones((3, 3)))
            depth[window][(edges > 25.0) & (dropout[window] < 0.6)] = 0.0
        # Axial noise grows with depth (about 1 mm at 500 mm, 3 mm at 1 m); 0 stays invalid.
        depth += self.depth_noise[dy:dy + height, dx:dx + width] * depth * (1.5e-3 + 1.5e-6 * depth)
        depth[dropout < self.dropout_rate] = 0.0
        depth = np.rint(depth)
        return color, depth.astype(np.uint16), mask


def render_video(joints, camera, rng, skin):
    """Frames (colour, depth, mask) of a skeleton sequence (F, 21, 3; depth camera, mm) in a
    random scene drawn from `rng`, one per frame."""
    scene = Scene(camera, rng, skin, joints)
    for index, frame_joints in enumerate(joints):
        yield scene.render(frame_joints, index)
