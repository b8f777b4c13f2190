"""Multi-order multi-stream feature analysis (collaborative paper, section 3.2, Fig. 2, eq. 1-4;
docs/design.md, "Collaborative pose and gesture").

A building block of the collaborative head, not a head itself. From the zero-order per-joint
features Zo of a clip it derives the first-order (velocity, eq. 2) and second-order
(acceleration, eq. 4) features, measures how much each joint moves in them (FD), and turns that
into per-joint slow and fast weights by two Gaussians. Each weight vector rescales Zo joint by
joint, giving one stream; with every order and both speeds the streams are zero order,
first-order slow and fast, second-order slow and fast: five in all.

Choices the paper leaves open:
- Ends: eq. 2 needs the previous frame and eq. 4 both neighbours, so Fo is zero at the first frame
  and So at the first and the last frame (docs/design.md: "zero at the sequence ends").
- FD per frame or per clip (`fd`). Section 3.2 computes FD from order features shaped
  N x C x H x W, one frame's: `fd: frame` takes the L2 norm over each joint's channels and pixels
  at every frame, so the streams carry when each joint moves (at the zeroed end frames all FDs
  are equal and every weight is 1). `fd: clip` takes one norm over the joint's whole clip, so
  the first- and second-order streams are the zero-order features times a per-clip constant.
  Measured on the real FPHA skeletons (docs/collaborative.md), and the default is the better one.
- The weights are detached: they are a fixed, non-learned mapping (the paper trains nothing in it)
  whose min/max selection and 1/std scale would send sparse, ill-conditioned gradients; Zo still
  gets its gradient through the product.
"""

import torch
from einops import rearrange
from torch import nn

ORDER_CHOICES = ((0,), (0, 1), (0, 2), (0, 1, 2))  # Table 4's variants; zero order always on
FD_CHOICES = ("frame", "clip")  # feature difference per frame (section 3.2) or per clip
SPEEDS = {"slow": ("slow",), "fast": ("fast",), "both": ("slow", "fast")}
ORDER_NAMES = {1: "first", 2: "second"}


def order_features(z):
    """Zero-order features (B, T, N, ...) -> (first, second), each of the same shape.

    first[:, t] = Zo_t - Zo_{t-1} (eq. 2) for t >= 1, zero at t = 0;
    second[:, t] = Fo_{t+1} - Fo_t = Zo_{t+1} - 2 Zo_t + Zo_{t-1} (eq. 4) for 1 <= t <= T-2,
    zero at t = 0 and t = T-1 (at t = 0, Fo_0 is the padding, not a velocity).
    """
    first = torch.zeros_like(z)
    first[:, 1:] = z[:, 1:] - z[:, :-1]
    second = torch.zeros_like(z)
    second[:, 1:-1] = first[:, 2:] - first[:, 1:-1]
    return first, second


def slow_fast_weights(order, per_frame=False):
    """An order feature (B, T, N, ...) -> (slow, fast) weights, each (B, N), or (B, T, N) with
    `per_frame`, detached.

    FD_i = ||order feature of joint i over the clip (or frame)||_2; min and max are over the
    joints; with std = (FD_max - FD_min) / 3,
    slow = exp(-(FD - FD_min)^2 / (2 std^2)) and fast = exp(-(FD - FD_max)^2 / (2 std^2))
    (unnormalized Gaussians; the paper's fast std (FD_min - FD_max)/3 differs only in sign).
    The slowest joint's slow weight is exactly 1, the fastest one's exp(-4.5) = 0.011, and the
    converse for fast. When all FDs are equal (std = 0, e.g. a still clip) every joint is both
    the slowest and the fastest: all weights are 1.
    """
    pattern = "b t n ... -> b t n (...)" if per_frame else "b t n ... -> b n (t ...)"
    fd = torch.linalg.vector_norm(rearrange(order.detach(), pattern), dim=-1)
    fd_min, fd_max = fd.amin(dim=-1, keepdim=True), fd.amax(dim=-1, keepdim=True)
    # The floor only matters when std = 0, where FD - mean is exactly 0: 0 / tiny = 0, weight 1.
    std = ((fd_max - fd_min) / 3).clamp_min(torch.finfo(fd.dtype).tiny)

    def gaussian(mean):
        return torch.exp(-((fd - mean) / std) ** 2 / 2)

    return gaussian(fd_min), gaussian(fd_max)


class MultiOrder(nn.Module):
    """Zero-order features (B, T, N, C, h, w) -> a list of `num_streams` streams of that shape.

    The first stream is the input itself; then, for each chosen order > 0 (first, then second),
    the input reweighted per joint by that order's slow and/or fast vector (section 3.2: "All
    these four vectors are used to refine the zero-order features Zo", reshaped to N x CHW and
    multiplied). `stream_names` names them, e.g. ("zero", "first_slow", "first_fast", ...).
    """

    def __init__(self, orders=(0, 1, 2), slow_fast="both", fd="frame"):
        super().__init__()
        orders = tuple(orders)
        if orders not in ORDER_CHOICES:
            raise ValueError(f"orders must be one of {', '.join(map(str, ORDER_CHOICES))} "
                             f"(the zero-order stream is always kept), got {orders!r}")
        if slow_fast not in SPEEDS:
            raise ValueError(f"slow_fast must be one of {', '.join(SPEEDS)}, got {slow_fast!r}")
        if fd not in FD_CHOICES:
            raise ValueError(f"fd must be one of {', '.join(FD_CHOICES)}, got {fd!r}")
        self.per_frame = fd == "frame"
        self.orders, self.speeds = orders[1:], SPEEDS[slow_fast]
        self.stream_names = ("zero", *(f"{ORDER_NAMES[order]}_{speed}"
                                       for order in self.orders for speed in self.speeds))
        self.num_streams = len(self.stream_names)

    def forward(self, z):
        # the weights are detached (module docstring): no graph for the order features
        features = dict(zip((1, 2), order_features(z.detach()), strict=True))
        streams = [z]
        for order in self.orders:
            weights = dict(zip(("slow", "fast"),
                               slow_fast_weights(features[order], self.per_frame), strict=True))
            shape = "b t n -> b t n 1 1 1" if self.per_frame else "b n -> b 1 n 1 1 1"
            streams += [z * rearrange(weights[speed], shape) for speed in self.speeds]
        return streams
