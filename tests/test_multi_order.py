"""Multi-order slow-fast features (collaborative paper, section 3.2, eq. 2 and 4;
docs/design.md)."""

import math
import re

import pytest
import torch

from handmt.models.collab.multi_order import MultiOrder, order_features, slow_fast_weights


def test_order_features_of_a_quadratic_sequence():
    z = torch.arange(6.0).pow(2).reshape(1, 6, 1)  # one joint, Zo_t = t^2: 0 1 4 9 16 25
    first, second = order_features(z)
    # Fo_t = Zo_t - Zo_{t-1}, zero at the first frame.
    assert first.flatten().tolist() == [0, 1, 3, 5, 7, 9]
    # So_t = Fo_{t+1} - Fo_t: the constant acceleration 2, zero at the first and last frames.
    assert second.flatten().tolist() == [0, 2, 2, 2, 2, 0]


def test_order_features_of_short_clips_are_zero():
    first, second = order_features(torch.tensor([[3.0, 5.0]]))  # T = 2
    assert first.tolist() == [[0, 2]] and second.tolist() == [[0, 0]]
    first, second = order_features(torch.tensor([[3.0]]))  # T = 1
    assert first.tolist() == [[0]] and second.tolist() == [[0]]


def linear_motion(T=5):
    """(1, T, 3, 2, 1, 1): joint 0 still, joint 1 moving by (1, 0) a frame, joint 2 by (2, 0)."""
    t = torch.arange(T, dtype=torch.float64)
    x = torch.stack([torch.zeros(T), t, 2 * t], dim=1)  # (T, 3)
    return torch.stack([x, torch.ones(T, 3, dtype=torch.float64)], dim=-1)[None, ..., None, None]


def test_slow_fast_weights_by_hand():
    z = linear_motion()
    first, second = order_features(z)
    slow, fast = slow_fast_weights(first)
    # FD = (0, 2, 4) (four unit or double steps), std = 4/3: exponents 0, -9/8, -9/2.
    assert torch.allclose(slow, torch.tensor([[1, math.exp(-9 / 8), math.exp(-9 / 2)]],
                                             dtype=torch.float64))
    assert torch.allclose(fast, torch.tensor([[math.exp(-9 / 2), math.exp(-9 / 8), 1]],
                                             dtype=torch.float64))
    # No acceleration anywhere: all FDs are 0, std = 0, and every weight is 1.
    slow, fast = slow_fast_weights(second)
    assert slow.tolist() == [[1, 1, 1]] and fast.tolist() == [[1, 1, 1]]


def test_slow_and_fast_single_out_the_slowest_and_fastest_joints():
    torch.manual_seed(0)
    speeds = torch.rand(2, 21) + 0.1  # per clip and joint
    z = torch.randn(2, 8, 21, 4, 3, 3).cumsum(dim=1) * speeds[:, None, :, None, None, None]
    first, _ = order_features(z)
    slow, fast = slow_fast_weights(first)
    assert slow.shape == fast.shape == (2, 21)
    fd = first.flatten(3).norm(dim=-1).norm(dim=1)  # (B, N): norm over frames and features
    rows = torch.arange(2)
    slowest, fastest = fd.argmin(dim=1), fd.argmax(dim=1)
    assert torch.allclose(slow[rows, slowest], torch.ones(2))
    assert (slow[rows, fastest] < 0.02).all()
    assert torch.allclose(fast[rows, fastest], torch.ones(2))
    assert (fast[rows, slowest] < 0.02).all()
    # Slower joints weigh more in the slow vector, less in the fast one.
    order = fd.argsort(dim=1)
    assert (slow.gather(1, order).diff(dim=1) <= 0).all()
    assert (fast.gather(1, order).diff(dim=1) >= 0).all()


def test_equal_motion_gives_finite_unit_weights():
    z = torch.arange(4.0).reshape(1, 4, 1, 1).expand(1, 4, 21, 2)  # every joint moves alike
    for feature in order_features(z):
        slow, fast = slow_fast_weights(feature)
        assert torch.isfinite(slow).all() and torch.isfinite(fast).all()
        assert (slow == 1).all() and (fast == 1).all()


def test_weights_are_detached():
    z = torch.randn(1, 4, 21, 2, requires_grad=True)
    slow, fast = slow_fast_weights(order_features(z)[0])
    assert not slow.requires_grad and not fast.requires_grad


@pytest.mark.parametrize("orders, slow_fast, names", [
    ((0,), "both", ["zero"]),
    ([0, 1], "both", ["zero", "first_slow", "first_fast"]),
    ((0, 2), "slow", ["zero", "second_slow"]),
    ((0, 1, 2), "fast", ["zero", "first_fast", "second_fast"]),
    ((0, 1, 2), "both", ["zero", "first_slow", "first_fast", "second_slow", "second_fast"]),
])
def test_stream_count_and_zero_order_stream(orders, slow_fast, names):
    module = MultiOrder(orders, slow_fast)
    z = torch.randn(2, 5, 21, 3, 4, 4)
    streams = module(z)
    assert list(module.stream_names) == names and module.num_streams == len(names)
    assert len(streams) == len(names)
    assert torch.equal(streams[0], z)
    assert all(stream.shape == z.shape for stream in streams)


def test_streams_are_the_input_reweighted_per_joint():
    z = linear_motion()
    zero, first_slow, first_fast, second_slow, second_fast = MultiOrder(fd="clip")(z)
    slow = torch.tensor([1, math.exp(-9 / 8), math.exp(-9 / 2)], dtype=torch.float64)
    assert torch.allclose(first_slow, z * slow[:, None, None, None])
    assert torch.allclose(first_fast, z * slow.flip(0)[:, None, None, None])
    # Linear motion has no acceleration: second-order weights are all 1.
    assert torch.equal(second_slow, z) and torch.equal(second_fast, z)


def test_gradient_reaches_the_input_through_every_stream():
    z = torch.randn(1, 4, 21, 2, 2, 2, requires_grad=True)
    sum(stream.sum() for stream in MultiOrder()(z)).backward()
    assert z.grad.abs().min() > 0


@pytest.mark.parametrize("kwargs, value", [
    ({"orders": (1, 2)}, "(1, 2)"), ({"orders": (0, 3)}, "(0, 3)"),
    ({"orders": (0, 2, 1)}, "(0, 2, 1)"), ({"slow_fast": "medium"}, "'medium'")])
def test_invalid_settings_name_the_value(kwargs, value):
    with pytest.raises(ValueError, match=re.escape(f"got {value}")):
        MultiOrder(**kwargs)
