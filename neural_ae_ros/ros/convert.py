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


def float_map_to_image(values: np.ndarray, header) -> Image:
    """float (H, W) map (attention / exposure map) -> sensor_msgs/Image ``32FC1`` (little endian)."""
    arr = np.asarray(values)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise MessageFormatError(f"map must be a 2-D float array, got {arr.dtype} {arr.shape}")
    return _to_image(arr.astype("<f4", copy=False), header, "32FC1")


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


# -- exposure records <-> messages --------------------------------------------------------------
# One record (imaging.exposure.FrameExposure) on the Python side; these functions are the only
# place that knows the message fields.

def applied_to_msg(exposure, header, mean_level_dn: float, fallback_active: bool = False):
    """FrameExposure of a captured frame -> AppliedExposure (same header as the image)."""
    from neural_ae_ros.msg import AppliedExposure

    msg = AppliedExposure()
    msg.header = header
    msg.frame_index = int(exposure.frame_index)
    msg.exposure_time_s = float(exposure.exposure_time_s)
    msg.analog_gain = float(exposure.analog_gain)
    msg.effective_exposure_s = exposure.effective_exposure_s
    msg.from_command = exposure.from_command
    msg.command_source_frame_index = max(int(exposure.source_frame_index), 0)
    msg.command_method = exposure.method
    msg.clamped = bool(exposure.clamped)
    msg.session_id = int(exposure.session_id)
    msg.command_age_frames = int(min(max(exposure.command_age_frames, 0), 2**32 - 1))
    msg.fallback_active = bool(fallback_active)
    msg.mean_level_dn = float(mean_level_dn)
    return msg


def applied_from_msg(msg):
    """AppliedExposure -> FrameExposure (``source_frame_index`` -1 for the initial settings)."""
    from neural_ae_ros.imaging.exposure import FrameExposure

    return FrameExposure(msg.exposure_time_s, msg.analog_gain, int(msg.frame_index),
                         int(msg.command_source_frame_index) if msg.from_command else -1,
                         msg.command_method, bool(msg.clamped), int(msg.session_id), int(msg.command_age_frames))


def command_to_msg(command, header, observed_effective_exposure_s: float):
    """FrameExposure command -> ExposureCommand; ``header`` is the source frame's header and
    ``delta_ev`` is relative to the exposure that frame was captured with."""
    import math

    from neural_ae_ros.msg import ExposureCommand

    msg = ExposureCommand()
    msg.header = header
    msg.session_id = int(command.session_id)
    msg.source_frame_index = int(command.source_frame_index)
    msg.target_frame_index = int(command.source_frame_index) + 1
    msg.exposure_time_s = float(command.exposure_time_s)
    msg.analog_gain = float(command.analog_gain)
    msg.effective_exposure_s = command.effective_exposure_s
    msg.delta_ev = math.log2(command.effective_exposure_s / observed_effective_exposure_s)
    msg.method = command.method
    msg.clamped = bool(command.clamped)
    return msg


def command_from_msg(msg):
    """ExposureCommand -> FrameExposure (not applied yet: ``frame_index`` -1)."""
    from neural_ae_ros.imaging.exposure import FrameExposure

    return FrameExposure(msg.exposure_time_s, msg.analog_gain, -1, int(msg.source_frame_index), msg.method,
                         bool(msg.clamped), int(msg.session_id))


def camera_info_to_msg(info, header):
    """CameraExposureInfo (plain) -> neural_ae_ros/CameraExposureInfo."""
    from neural_ae_ros.msg import CameraExposureInfo as Msg

    lim = info.limits
    return Msg(header=header, session_id=int(info.session_id),
               min_exposure_time_s=lim.min_exposure_time_s, max_exposure_time_s=lim.max_exposure_time_s,
               min_analog_gain=lim.min_analog_gain, max_analog_gain=lim.max_analog_gain, t_max_s=info.t_max_s,
               black_level_dn=float(info.black_level_dn), white_level_dn=int(info.white_level_dn),
               saturation_level_dn=float(info.saturation_level_dn),
               actuation_latency_frames=int(info.actuation_latency_frames), frame_rate_hz=float(info.frame_rate_hz))


def camera_info_from_msg(msg, topic: str = "camera_exposure_info"):
    """neural_ae_ros/CameraExposureInfo -> the plain record; bad limits raise ValueError naming the topic."""
    from neural_ae_ros.imaging.exposure import CameraExposureInfo, CameraLimits

    try:
        limits = CameraLimits(msg.min_exposure_time_s, msg.max_exposure_time_s, msg.min_analog_gain,
                              msg.max_analog_gain)
    except ValueError as exc:
        raise ValueError(f"{topic} (session {msg.session_id}): {exc}") from None
    return CameraExposureInfo(limits, msg.t_max_s, msg.black_level_dn, int(msg.white_level_dn),
                              int(msg.actuation_latency_frames), msg.frame_rate_hz, msg.saturation_level_dn,
                              int(msg.session_id))


# -- the stamp join (plain Python: keys are stamps in ns) -----------------------------------------
class StampJoin:
    """Collects the parts of one frame that arrive on different topics, keyed by header stamp.

    ``add(stamp_ns, part, value)`` returns the dict of all ``required`` parts once the frame is
    complete (and forgets it), else None. At most ``capacity`` incomplete frames are kept; the
    oldest incomplete one is evicted (counted in ``evicted``; the caller reports a failed join).
    ``required`` can change (a method that needs the raw image); ``reset()`` forgets everything
    (a new camera session: its stamps are not comparable frame by frame).
    """

    def __init__(self, required, capacity: int = 30) -> None:
        if int(capacity) < 1:
            raise ValueError(f"capacity={capacity} must be >= 1")
        self.required = frozenset(required)
        self.capacity = int(capacity)
        self._slots = {}
        self.evicted = 0
        self.last_evicted = None  # (stamp_ns, parts present) of the last eviction

    def add(self, stamp_ns: int, part: str, value):
        slot = self._slots.setdefault(int(stamp_ns), {})
        slot[part] = value
        if self.required <= slot.keys():
            del self._slots[int(stamp_ns)]
            return {k: slot[k] for k in self.required}
        while len(self._slots) > self.capacity:
            oldest = min(self._slots)
            self.last_evicted = (oldest, sorted(self._slots.pop(oldest)))
            self.evicted += 1
        return None

    def set_required(self, required) -> None:
        self.required = frozenset(required)

    def reset(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)
