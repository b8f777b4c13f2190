"""Blocks shared by several models (docs/design.md, Principles)."""

from .action import Action
from .tea import MotionExcitation, TEABottleneck
from .temporal_shift import ClipLayer, LearnableShift, TemporalShift, set_num_segments, shift_frames

__all__ = ["Action", "ClipLayer", "LearnableShift", "MotionExcitation", "TEABottleneck",
           "TemporalShift", "set_num_segments", "shift_frames"]
