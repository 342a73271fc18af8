"""Message <-> numpy conversions with validation. Every error says what is wrong and where."""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

RAW_ENCODING = "bayer_rggb16"
RGB_ENCODING = "rgb8"


class MessageFormatError(ValueError):
    """A message that cannot be turned into an array; the text names topic and problem."""


def raw_to_image(raw: np.ndarray, header) -> Image:
    """uint16 RGGB mosaic (H, W) -> sensor_msgs/Image ``bayer_rggb16`` (little endian)."""
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise MessageFormatError(f"raw frame must be a 2-D uint16 array, got {raw.dtype} {raw.shape}")
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(raw.shape[0]), int(raw.shape[1])
    msg.encoding = RAW_ENCODING
    msg.is_bigendian = 0
    msg.step = msg.width * 2
    msg.data = np.ascontiguousarray(raw).astype("<u2", copy=False).tobytes()
    return msg


def rgb_to_image(rgb: np.ndarray, header) -> Image:
    """uint8 (H, W, 3) -> sensor_msgs/Image ``rgb8``."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageFormatError(f"rgb frame must be a (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = RGB_ENCODING
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def _check_layout(msg: Image, topic: str, encoding: str, bytes_per_pixel: int,
                  expected_size=None) -> None:
    where = f"{topic} (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d})"
    if msg.encoding != encoding:
        raise MessageFormatError(f"{where}: encoding '{msg.encoding}', expected '{encoding}'")
    if msg.width == 0 or msg.height == 0:
        raise MessageFormatError(f"{where}: empty image {msg.width}x{msg.height}")
    if expected_size is not None and (msg.width, msg.height) != tuple(expected_size):
        raise MessageFormatError(
            f"{where}: size {msg.width}x{msg.height}, expected {expected_size[0]}x{expected_size[1]}")
    if msg.step < msg.width * bytes_per_pixel:
        raise MessageFormatError(
            f"{where}: step {msg.step} B is shorter than a row ({msg.width} px x {bytes_per_pixel} B)")
    need = msg.step * msg.height
    if len(msg.data) != need:
        raise MessageFormatError(
            f"{where}: data has {len(msg.data)} B, step x height = {msg.step} x {msg.height} = {need} B"
            + (" (truncated)" if len(msg.data) < need else ""))
    if bytes_per_pixel > 1 and msg.is_bigendian:
        raise MessageFormatError(f"{where}: big-endian data is not supported")


def image_to_raw(msg: Image, topic: str = "image_raw", expected_size=None) -> np.ndarray:
    """sensor_msgs/Image ``bayer_rggb16`` -> uint16 (H, W) view (no copy when step is tight)."""
    _check_layout(msg, topic, RAW_ENCODING, 2, expected_size)
    if msg.width % 2 or msg.height % 2:
        raise MessageFormatError(f"{topic}: RGGB mosaic needs even width and height, got {msg.width}x{msg.height}")
    buf = np.frombuffer(msg.data, dtype="<u2")
    rows = buf.reshape(msg.height, msg.step // 2)
    return rows[:, : msg.width]


def image_to_rgb(msg: Image, topic: str = "image_rgb", expected_size=None) -> np.ndarray:
    """sensor_msgs/Image ``rgb8`` -> uint8 (H, W, 3) view."""
    _check_layout(msg, topic, RGB_ENCODING, 3, expected_size)
    buf = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    return buf[:, : msg.width * 3].reshape(msg.height, msg.width, 3)


def stamp_key(header) -> int:
    """Nanoseconds of a header stamp: the key that joins messages of one frame."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
