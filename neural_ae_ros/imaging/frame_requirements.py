"""What frame sizes the algorithms need, checked once at start-up and per frame (no ROS).

- RGGB mosaic (sensor, ISP, histograms): even width and height (whole 2x2 quads).
- Histogram stack of paper 000 Section 4.1: the first-green plane (H/2 x W/2 of the mosaic)
  must hold at least one pixel per cell of the finest grid (7x7), so the mosaic must be at
  least 14x14 pixels.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from .histograms import GRIDS


def min_mosaic_side(grids: Sequence[int] = GRIDS) -> int:
    """Smallest mosaic width/height (pixels) whose green plane covers the finest grid."""
    return 2 * max(grids)


def rggb_size_problem(width: int, height: int) -> Optional[str]:
    """None if ``width`` x ``height`` is a whole number of RGGB quads, else the reason."""
    if width <= 0 or height <= 0:
        return f"frame size {width}x{height} is empty"
    if width % 2 or height % 2:
        return f"frame size {width}x{height}: an RGGB mosaic needs even width and height"
    return None


def histogram_size_problem(width: int, height: int, grids: Sequence[int] = GRIDS) -> Optional[str]:
    """None if the histogram stack can be computed on a ``width`` x ``height`` mosaic."""
    side = min_mosaic_side(grids)
    if width < side or height < side:
        n = max(grids)
        return (f"frame size {width}x{height}: its green plane {width // 2}x{(height + 1) // 2} is smaller than "
                f"the {n}x{n} histogram grid needs (mosaic at least {side}x{side})")
    return None


def camera_size_problems(width: int, height: int, grids: Sequence[int] = GRIDS) -> List[str]:
    """Every reason a camera of ``width`` x ``height`` could not feed the loop (empty: fine)."""
    return [p for p in (rggb_size_problem(width, height), histogram_size_problem(width, height, grids)) if p]
