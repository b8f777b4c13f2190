"""Procedural FPHA-format data: a kinematic hand driven by gesture programs (`motion`), a software
renderer (`render`) and the writer of the FPHA layout (`writer`). docs/design.md, "Synthetic
FPHA-format data"."""

from .writer import ensure_fpha, generate_fpha, render_fpha, render_fpha_video, render_skeleton

__all__ = ["ensure_fpha", "generate_fpha", "render_fpha", "render_fpha_video",
           "render_skeleton"]
