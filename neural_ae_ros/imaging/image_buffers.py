"""sensor_msgs/Image-style buffers <-> numpy, with validation (no ROS import).

Every error says what is wrong and where (``where``: e.g. the topic and stamp), so a node can log
it and drop the frame. Conversions are zero-copy views when the layout allows.
"""
from __future__ import annotations

import numpy as np

RAW_ENCODING = "bayer_rggb16"
RGB_ENCODINGS = ("rgb8", "bgr8")


class ImageFormatError(ValueError):
    """A buffer that cannot be read as the expected image."""


def _check(data, height: int, width: int, encoding: str, expected, step, bytes_per_pixel: int, where: str) -> int:
    prefix = f"{where}: " if where else ""
    if encoding not in expected:
        raise ImageFormatError(f"{prefix}encoding '{encoding}', expected '{' or '.join(expected)}'")
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"{prefix}empty image {width}x{height}")
    step = int(step) if step else width * bytes_per_pixel
    if step < width * bytes_per_pixel:
        raise ImageFormatError(f"{prefix}step {step} B is shorter than a row ({width} px x {bytes_per_pixel} B)")
    need = step * height
    if len(data) != need:
        raise ImageFormatError(f"{prefix}data has {len(data)} bytes, step x height = {step} x {height} = {need} "
                               f"bytes expected" + (" (truncated)" if len(data) < need else ""))
    return step


def raw_from_buffer(data, height: int, width: int, encoding: str = RAW_ENCODING, step: int | None = None,
                    is_bigendian: bool = False, where: str = "") -> np.ndarray:
    """16-bit RGGB mosaic buffer -> uint16 (H, W) DN (a view unless big-endian)."""
    step = _check(data, height, width, encoding, (RAW_ENCODING,), step, 2, where)
    if step % 2:
        raise ImageFormatError(f"{where + ': ' if where else ''}step {step} B is odd for 16-bit pixels")
    if width % 2 or height % 2:
        raise ImageFormatError(f"{where + ': ' if where else ''}RGGB mosaic needs even width and height, "
                               f"got {width}x{height}")
    rows = np.frombuffer(data, dtype=">u2" if is_bigendian else "<u2").reshape(height, step // 2)[:, :width]
    return rows.astype(np.uint16) if is_bigendian else rows


def rgb_from_buffer(data, height: int, width: int, encoding: str = "rgb8", step: int | None = None,
                    where: str = "", encodings=RGB_ENCODINGS) -> np.ndarray:
    """8-bit 3-channel buffer -> uint8 (H, W, 3) view, channel order as ``encoding`` says."""
    step = _check(data, height, width, encoding, tuple(encodings), step, 3, where)
    return np.frombuffer(data, np.uint8).reshape(height, step)[:, : 3 * width].reshape(height, width, 3)
