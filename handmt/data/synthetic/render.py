"""Software renderer of a skeleton sequence into colour, depth and hand-mask frames (numpy/OpenCV).

Implements the renderer of docs/design.md, "Synthetic FPHA-format data". The hand is drawn from its
21 joints alone (so any skeleton, real FPHA motion included, can be rendered): tapered capsules
along the bones, a palm of thick metacarpal capsules, a sleeved forearm, all z-buffered, in front
of a static scene that lies behind the hand's farthest joint.

- colour (colour camera, `camera.to_color` + `color_K`): cluttered background with skin-coloured
  blobs and finger-like strokes, near objects, Lambert + specular shading under a light that
  wanders, global illumination drift and colour cast, sensor noise (JPEG on writing).
- depth (depth camera, `depth_K`, uint16 mm, 0 = invalid): a table/wall plane at 700 mm or more,
  the same near objects, disparity-quantized noise (error growing with depth squared), random
  dropouts, dropouts along depth edges and a few unreadable patches. Depth separates the hand
  from the clutter; colour does not.
- mask (colour image pixels, uint8 0/255): the visible hand (the forearm is a sleeve, not hand).

Speed: all capsules are evaluated in one vectorized pass, each only inside its bounding box; the
scene (backgrounds, objects, noise banks) is built once per video. A 320 px frame costs a few ms.
"""

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

from ...geometry import project
from ...hand import BONES, FINGER_CHAINS, WRIST

NEAR_MM = 120.0  # capsules are clipped to the half-space in front of this plane
DISPARITY_MM = 250_000.0  # depth = DISPARITY_MM / disparity, disparity in whole steps
NO_DISPARITY = -1e9  # marks unreadable pixels: its depth saturates to 0
BACKGROUNDS = ("clutter", "plain")  # Scene's backgrounds
HAND, SLEEVE = 0, 1  # part ids; distractor objects follow

# (start, end) radii in mm of each bone's capsule in `hand.BONES` order, for a hand whose
# wrist-to-middle-MCP bone is REFERENCE_PALM_MM long; other hands scale them.
REFERENCE_PALM_MM = 84.0
BONE_RADII = np.array([
    [16.0, 13.0], [13.0, 11.5], [13.0, 11.5], [13.0, 11.0], [12.5, 10.0],
    [12.0, 10.5], [10.5, 9.5], [9.5, 8.5],
    [9.8, 9.0], [9.0, 8.3], [8.3, 7.4],
    [10.2, 9.4], [9.4, 8.6], [8.6, 7.7],
    [9.6, 8.9], [8.9, 8.2], [8.2, 7.3],
    [8.5, 7.8], [7.8, 7.2], [7.2, 6.6],
])
MIDDLE_MCP = FINGER_CHAINS[2][0]
MCPS = np.array([chain[0] for chain in FINGER_CHAINS[1:]])  # index..pinky
METACARPALS = np.array([BONES.index((WRIST, mcp)) for mcp in MCPS])
TIPS = np.array([BONES.index((chain[2], chain[3])) for chain in FINGER_CHAINS])
PALM_BASE_SPREAD = 0.6  # metacarpals start this fraction of the knuckle spread apart


@dataclass
class Shapes:
    """Tapered capsules in one camera's frame (mm): ends (N, 2, 3), radii (N, 2), part ids (N,)."""

    ends: np.ndarray
    radii: np.ndarray
    parts: np.ndarray

    def moved(self, camera):
        """The same shapes seen from the colour camera (they are given in the depth camera's)."""
        return Shapes(camera.to_color(self.ends), self.radii, self.parts)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def hand_shapes(joints):
    """Capsules of a hand from its joints (21, 3): one per bone, the metacarpals spread apart at
    the wrist so that they fill the palm, a knuckle bar, and the sleeved forearm."""
    scale = np.linalg.norm(joints[MIDDLE_MCP] - joints[WRIST]) / REFERENCE_PALM_MM
    ends = joints[np.array(BONES)]
    radii = BONE_RADII * scale
    # Fingertip joints lie on the skin: stop the capsule axis one radius short of them.
    ends[TIPS, 1] -= _unit(ends[TIPS, 1] - ends[TIPS, 0]) * radii[TIPS, 1:]
    ends[METACARPALS, 0] += PALM_BASE_SPREAD * (joints[MCPS] - joints[MIDDLE_MCP])
    along = _unit(joints[MCPS].mean(0) - joints[WRIST])
    forearm = joints[WRIST] - along * np.array([[18.0], [260.0]]) * scale
    ends = np.concatenate([ends, joints[MCPS[[0, -1]]][None], forearm[None]])
    radii = np.concatenate([radii, np.array([[10.5, 9.5], [30.0, 40.0]]) * scale])
    return Shapes(ends, radii, np.array([HAND] * (len(BONES) + 1) + [SLEEVE]))


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
    """Rasterized shapes inside `box` = (x0, y0, x1, y1): z (mm, inf where empty), part id (-1
    where empty), diffuse shade and specular highlight (when a light was given)."""

    box: tuple
    z: np.ndarray
    part: np.ndarray
    shade: np.ndarray | None = None
    highlight: np.ndarray | None = None

    @property
    def window(self):
        x0, y0, x1, y1 = self.box
        return slice(y0, y1), slice(x0, x1)


def rasterize(shapes, K, size, light=None, ambient=0.45):
    """Z-buffer `shapes` into an image of `size` = (width, height) with intrinsics K.

    A capsule is drawn in image space: its projected axis with a pixel radius interpolated along
    it, the depth bulging toward the camera by the 3D radius. All capsules are evaluated in one
    vectorized pass over the pixels of their bounding boxes. With a `light` (unit vector toward
    it, camera frame) it also returns Lambert shade and a Phong highlight. Returns None when
    nothing falls inside the image."""
    ends, radii, keep = _clip_near(shapes.ends, shapes.radii)
    uv = project(ends, K)
    pix_radii = K[0, 0] * radii / ends[..., 2]
    boxes = np.concatenate([np.floor((uv - pix_radii[..., None]).min(1)),
                            np.ceil((uv + pix_radii[..., None]).max(1)) + 1], 1)
    boxes = np.clip(boxes, 0, [*size, *size]).astype(int)
    if not len(boxes):
        return None
    (x0, y0), (x1, y1) = boxes[:, :2].min(0), boxes[:, 2:].max(0)
    if x1 <= x0 or y1 <= y0:
        return None

    u, v, z, normal, owner = _capsule_fragments(uv, ends[..., 2], radii, pix_radii, boxes)
    # Visibility: the nearest fragment of every pixel wins.
    width, height = x1 - x0, y1 - y0
    flat = ((v - y0) * width + (u - x0)).astype(np.intp)
    zbuf = np.full(width * height, np.inf, np.float32)
    np.minimum.at(zbuf, flat, z)
    win = np.nonzero(z <= zbuf[flat])[0]
    flat = flat[win]
    part = np.full(width * height, -1, np.int8)
    part[flat] = shapes.parts[keep][owner[win].astype(np.intp)]
    layer = Layer((x0, y0, x1, y1), zbuf.reshape(height, width), part.reshape(height, width))
    if light is not None:
        normals = np.zeros((3, width * height), np.float32)
        normals[:, flat] = normal[:, win]
        light = np.asarray(light, dtype=np.float32)
        shade = ambient + (1.0 - ambient) * np.maximum(light @ normals, 0.0)
        highlight = np.maximum(_unit(light - np.float32([0, 0, 1])) @ normals, 0.0)
        for _ in range(4):  # a Phong exponent of 16
            highlight *= highlight
        layer.shade, layer.highlight = shade.reshape(height, width), highlight.reshape(height,
                                                                                       width)
    return layer


def _capsule_fragments(uv, depth, radii, pix_radii, boxes):
    """Covered pixels of the capsules: u, v, z, normal (3, n) and capsule index, float32."""
    widths, heights = (boxes[:, 2:] - boxes[:, :2]).clip(0).T
    counts = widths * heights
    axis = uv[:, 1] - uv[:, 0]
    inverse = 1.0 / np.maximum((axis * axis).sum(1), 1e-6)
    params = np.stack([boxes[:, 0], boxes[:, 1], widths, np.cumsum(counts) - counts,
                       *uv[:, 0].T, *(axis * inverse[:, None]).T, *axis.T,
                       pix_radii[:, 0], pix_radii[:, 1] - pix_radii[:, 0],
                       depth[:, 0], depth[:, 1] - depth[:, 0], radii[:, 0],
                       radii[:, 1] - radii[:, 0], np.arange(len(uv))]).astype(np.float32)
    (x0, y0, widths, starts, ax, ay, gx, gy, ex, ey, R0, dR, z0, dz, r0, dr,
     owner) = np.repeat(params, counts, axis=1)
    k = np.arange(counts.sum(), dtype=np.float32) - starts  # pixel index inside its box
    row = np.floor((k + 0.5) / widths)
    u, v = x0 + (k - row * widths), y0 + row
    du, dv = u - ax, v - ay
    s = np.clip(du * gx + dv * gy, 0.0, 1.0)  # position along the projected axis
    R = R0 + s * dR
    dx, dy = (du - s * ex) / R, (dv - s * ey) / R
    inside = np.nonzero(dx * dx + dy * dy < 1.0)[0]
    s, dx, dy = s[inside], dx[inside], dy[inside]
    bulge = np.sqrt(np.maximum(1.0 - dx * dx - dy * dy, 0.0))
    z = z0[inside] + s * dz[inside] - (r0[inside] + s * dr[inside]) * bulge
    return u[inside], v[inside], z, np.stack([dx, dy, -bulge]), owner[inside]


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
    """Two or three objects (bottles, cans, balls) at depths between the hand and the background,
    in the depth camera's frame; parts numbered from SLEEVE + 1."""
    (fx, fy), (cx, cy) = camera.depth_K[[0, 1], [0, 1]], camera.depth_K[:2, 2]
    width, height = camera.depth_size
    count = rng.integers(2, 4)
    z = rng.uniform(nearest, farthest, count)
    centres = np.stack([(rng.uniform(0, width, count) - cx) / fx * z,
                        (rng.uniform(0.2, 1.0, count) * height - cy) / fy * z, z], 1)
    # Upright, slightly tilted axes; a zero half-length makes a ball.
    axes = _unit(np.stack([rng.normal(0, 0.2, count), -np.ones(count),
                           rng.normal(0, 0.3, count)], 1))
    half = axes * rng.uniform(30, 70, count)[:, None] * (rng.random(count) < 0.7)[:, None]
    radii = np.repeat(rng.uniform(18, 40, count)[:, None], 2, 1)
    return Shapes(np.stack([centres - half, centres + half], 1), radii,
                  np.arange(SLEEVE + 1, SLEEVE + 1 + count))


def _wall(rng, width, height):
    """A plain background: one colour of any hue under uneven light (BGR float32, 0-255)."""
    shading = cv2.resize(rng.normal(1.0, 0.08, (3, 4)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)
    return np.float32(_colour(rng, (0.0, 0.6), (0.2, 0.9))) * shading[..., None]


def _plane(rng, K, size, nearest):
    """Depth (mm) of a table/wall plane, nearer at the bottom of the image, at least `nearest`."""
    u = (np.arange(size[0], dtype=np.float32)[None] - K[0, 2]) / K[0, 0]
    v = (np.arange(size[1], dtype=np.float32)[:, None] - K[1, 2]) / K[1, 1]
    depth = rng.uniform(850, 1150) / (1.0 + rng.uniform(-0.15, 0.15) * u
                                      + rng.uniform(0.15, 0.6) * v)
    return depth * max(1.0, nearest / depth.min())


class Scene:
    """What stays fixed over one video (docs/design.md, "Synthetic FPHA-format data"): backgrounds,
    near objects (all behind the hand's farthest joint), colours, light path, illumination drift
    and noise banks. `render` draws one frame of the hand in it. `background`: "clutter" (a
    cluttered desk with objects and skin-coloured distractors) or "plain" (one coloured wall, no
    objects: the hand is the only thing to look at)."""

    def __init__(self, camera, rng, skin, joints, noise_margin=16, background="clutter"):
        self.camera = camera
        frames = len(joints)
        hand_far = float(joints[..., 2].max())
        objects = (_objects(rng, camera, hand_far + 40.0, hand_far + 200.0)
                   if background == "clutter" else None)
        count = len(objects.parts) if objects is not None else 0
        self.albedo = np.float32([_colour(rng, (0.1, 0.9), (0.2, 0.95))
                                  for _ in range(SLEEVE + 1 + count)])
        self.albedo[HAND] = np.asarray(skin) * 255.0
        self.albedo[SLEEVE] = _colour(rng, (0.2, 0.9), (0.1, 0.8))
        self.gloss = rng.uniform(0, 60, len(self.albedo)).astype(np.float32)
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

        self.color_bg = (_clutter(rng, *camera.color_size, skin) if background == "clutter" else
                         _wall(rng, *camera.color_size))
        self.color_z = np.full(self.color_bg.shape[:2], np.inf, np.float32)
        layer = (rasterize(objects.moved(camera), camera.color_K, camera.color_size, _unit(light))
                 if objects is not None else None)
        if layer is not None:
            self._paint(self.color_bg, layer)
            np.minimum(self.color_z[layer.window], layer.z, out=self.color_z[layer.window])
        depth = _plane(rng, camera.depth_K, camera.depth_size, max(700.0, hand_far + 250.0))
        layer = (rasterize(objects, camera.depth_K, camera.depth_size) if objects is not None
                 else None)
        if layer is not None:
            np.minimum(depth[layer.window], layer.z, out=depth[layer.window])
        self.depth_z = depth.astype(np.float32)
        for _ in range(rng.integers(1, 4)):  # dark or shiny patches the sensor cannot read
            centre = tuple(int(c) for c in rng.uniform(0, 1, 2) * camera.depth_size)
            axes = tuple(int(a) for a in rng.uniform(0.02, 0.08, 2) * camera.depth_size[0])
            cv2.ellipse(depth, centre, axes, rng.uniform(0, 180), 0, 360, 0.0, -1)
        self.disparity = np.where(depth > 0, DISPARITY_MM / np.maximum(depth, 1.0),
                                  NO_DISPARITY).astype(np.float32)

        # Noise banks, cropped at a random offset per frame.
        width, height = camera.color_size
        self.color_noise = rng.normal(0, rng.uniform(2.0, 6.0), (
            height + noise_margin, width + noise_margin, 3)).astype(np.float32)
        width, height = camera.depth_size
        self.disparity_noise = rng.normal(0, 0.35, (
            height + noise_margin, width + noise_margin)).astype(np.float32)
        self.dropout = rng.random((height + noise_margin, width + noise_margin), np.float32)
        self.dropout_rate = rng.uniform(0.005, 0.02)
        self.offsets = rng.integers(0, noise_margin + 1, (frames, 2))

    def _paint(self, image, layer, gain=1.0):
        """Draw a shaded layer into `image` where it is nearer than the scene; returns the
        painted pixels of the layer's window."""
        front = layer.z < self.color_z[layer.window]
        part = layer.part[front]
        image[layer.window][front] = gain * (
            self.albedo[part] * layer.shade[front][:, None]
            + self.gloss[part][:, None] * layer.highlight[front][:, None])
        return front

    def render(self, joints, index):
        """Frame `index` with the hand at `joints` (21, 3; depth camera, mm): colour (H, W, 3)
        uint8 BGR, depth (h, w) uint16 mm (0 invalid), mask (H, W) uint8 0/255."""
        camera = self.camera
        shapes = hand_shapes(joints)
        dy, dx = self.offsets[index]

        gain = self.gain[index]
        color = self.color_bg * gain
        mask = np.zeros(color.shape[:2], np.uint8)
        layer = rasterize(shapes.moved(camera), camera.color_K, camera.color_size,
                          self.lights[index])
        if layer is not None:
            front = self._paint(color, layer, gain)
            mask[layer.window][front & (layer.part == HAND)] = 255
        # Optics blur the image; then sensor noise, rounded and saturated to uint8.
        color = cv2.add(cv2.GaussianBlur(color, (3, 3), 0.6),
                        self.color_noise[dy:dy + color.shape[0], dx:dx + color.shape[1]],
                        dtype=cv2.CV_8U)

        # Depth: like a structured-light sensor, measure a disparity with noise and keep whole
        # steps, so the error grows with depth squared (1 mm steps at 500 mm, 4 mm at 1 m).
        height, width = self.disparity.shape
        noise = self.disparity_noise[dy:dy + height, dx:dx + width]
        dropout = self.dropout[dy:dy + height, dx:dx + width]
        disparity = self.disparity + noise
        layer = rasterize(shapes, camera.depth_K, camera.depth_size)
        if layer is not None:
            window = layer.window
            front = layer.z < self.depth_z[window]
            disparity[window][front] = DISPARITY_MM / layer.z[front] + noise[window][front]
            # Sensors lose pixels along depth discontinuities: drop most of them.
            x0, y0, x1, y1 = layer.box
            grown = slice(max(y0 - 2, 0), y1 + 2), slice(max(x0 - 2, 0), x1 + 2)
            edges = cv2.morphologyEx(disparity[grown], cv2.MORPH_GRADIENT, np.ones((3, 3)))
            disparity[grown][(edges > 20.0) & (dropout[grown] < 0.6)] = NO_DISPARITY
        disparity[dropout < self.dropout_rate] = NO_DISPARITY
        # Whole disparity steps -> depth in mm, rounded; negative (unreadable) saturates to 0.
        depth = cv2.divide(DISPARITY_MM, np.rint(disparity), dtype=cv2.CV_16U)
        return color, depth, mask


def render_video(joints, camera, rng, skin, background="clutter"):
    """Frames (colour, depth, mask) of a skeleton sequence (F, 21, 3; depth camera, mm) in a
    random scene (`Scene`'s `background`) drawn from `rng`, one per frame."""
    scene = Scene(camera, rng, skin, joints, background=background)
    for index, frame_joints in enumerate(joints):
        yield scene.render(frame_joints, index)
