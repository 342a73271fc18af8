"""Message <-> numpy conversions with validation. Every error says what is wrong and where."""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from neural_ae_ros.imaging.image_buffers import RAW_ENCODING, ImageFormatError, raw_from_buffer, rgb_from_buffer

RGB_ENCODING = "rgb8"


#: A message that cannot be turned into an array; the text names topic, stamp and problem.
MessageFormatError = ImageFormatError


def _to_image(array: np.ndarray, header, encoding: str) -> Image:
    tight = np.ascontiguousarray(array)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(tight.shape[0]), int(tight.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(tight.strides[0])
    msg.data = tight.tobytes()  # bytes, never a numpy array (its setter is ~1000x slower)
    return msg


def raw_to_image(raw: np.ndarray, header) -> Image:
    """uint16 RGGB mosaic (H, W) -> sensor_msgs/Image ``bayer_rggb16`` (little endian)."""
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise MessageFormatError(f"raw frame must be a 2-D uint16 array, got {raw.dtype} {raw.shape}")
    return _to_image(raw.astype("<u2", copy=False), header, RAW_ENCODING)


def rgb_to_image(rgb: np.ndarray, header) -> Image:
    """uint8 (H, W, 3) -> sensor_msgs/Image ``rgb8``."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageFormatError(f"rgb frame must be a (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    return _to_image(rgb, header, RGB_ENCODING)


def _where(msg: Image, topic: str) -> str:
    return f"{topic} (stamp {msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d})"


def _check_size(msg: Image, where: str, expected_size) -> None:
    if expected_size is not None and (msg.width, msg.height) != tuple(expected_size):
        raise MessageFormatError(
            f"{where}: size {msg.width}x{msg.height}, expected {expected_size[0]}x{expected_size[1]}")


def image_to_raw(msg: Image, topic: str = "image_raw", expected_size=None) -> np.ndarray:
    """sensor_msgs/Image ``bayer_rggb16`` -> uint16 (H, W) view (no copy when step is tight)."""
    where = _where(msg, topic)
    _check_size(msg, where, expected_size)
    return raw_from_buffer(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian), where)


def image_to_rgb(msg: Image, topic: str = "image_rgb", expected_size=None) -> np.ndarray:
    """sensor_msgs/Image ``rgb8`` -> uint8 (H, W, 3) view."""
    where = _where(msg, topic)
    _check_size(msg, where, expected_size)
    return rgb_from_buffer(msg.data, msg.height, msg.width, msg.encoding, msg.step, where, encodings=(RGB_ENCODING,))


def stamp_key(header) -> int:
    """Nanoseconds of a header stamp: the key that joins messages of one frame."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
