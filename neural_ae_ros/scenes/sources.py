"""Scene radiance sources for the camera bridge: a built-in drive or a scene recording (bag).

A source yields, per frame index, linear radiance in photo-electrons per second (3, H, W) and
the ground-truth boxes of that frame. No ROS here.
"""
from __future__ import annotations

import queue
import threading
from typing import Optional, Protocol, Sequence

import numpy as np

from .illumination_events import IlluminationEvent


class RadianceSource(Protocol):
    width: int
    height: int
    num_frames: Optional[int]  # None: endless
    events: Sequence[IlluminationEvent]

    def frame(self, index: int): ...  # -> (radiance (3, H, W) or RGGB mosaic (H, W), float32 e-/s; boxes)


class StepTestSource:
    """A fast synthetic test scene: a textured chart whose illumination steps on a script.

    Radiance spans ~40 dB (a log ramp of patches over a fine texture), scaled by
    ``factor`` (1, then ``step_factor`` from ``step_frame`` on, then back at ``return_frame``).
    Meant for tests and latency measurements, where rendering cost must not dominate.
    """

    def __init__(self, width: int = 320, height: int = 200, seed: int = 0, mean_e_per_s: float = 2.0e6,
                 step_frame: int = 60, return_frame: int = 150, step_factor: float = 0.1) -> None:
        if width % 2 or height % 2 or width < 16 or height < 16:
            raise ValueError(f"step_test source needs even width/height >= 16, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.num_frames = None
        self.events = [IlluminationEvent(step_frame, step_factor, "step_down"),
                       IlluminationEvent(return_frame, 1.0 / step_factor, "step_up")]
        self._schedule = [(0, 1.0), (step_frame, step_factor), (return_frame, 1.0)]
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        patches = 10.0 ** (2.0 * (np.floor(xx / width * 8) / 7.0) - 1.0)  # 0.1 .. 10: 40 dB
        texture = 1.0 + 0.3 * np.sin(xx * 0.7) * np.sin(yy * 0.9) + 0.05 * rng.standard_normal((height, width))
        base = (patches * np.clip(texture, 0.2, None)).astype(np.float32)
        base *= mean_e_per_s / base.mean()
        # Stored already Bayer-sampled (RGGB, mild colour): the camera skips the sampling step.
        mosaic = base.copy()
        mosaic[0::2, 0::2] *= 0.9
        mosaic[1::2, 1::2] *= 0.8
        self._base = mosaic

    def factor(self, index: int) -> float:
        return [f for start, f in self._schedule if index >= start][-1]

    def frame(self, index: int):
        """(H, W) RGGB mosaic of radiance in e-/s, and no boxes."""
        return self._base * np.float32(self.factor(index)), []


class DriveAdapter:
    """A built-in drive (:class:`neural_ae_ros.scenes.drives.DriveSource`) as a radiance source.

    The drive's script (event times) is laid out over ``script_frames`` frames; past that the
    drive starts over.
    """

    def __init__(self, name: str, width: int, height: int, seed: int, fps: float, script_frames: int) -> None:
        from neural_ae_ros.scenes.drives import DriveSource

        self.drive = DriveSource(name, width=width, height=height, seed=seed, fps=fps, num_frames=script_frames)
        self.width, self.height = int(width), int(height)
        self.num_frames = None
        self.events = list(self.drive.events)

    def frame(self, index: int):
        radiance, boxes, _events = self.drive.frame(index)
        return radiance, boxes


class EndOfSource(Exception):
    """The source has no frame at this index (a recording ended)."""


class SceneBagSource:
    """A scene recording (``neural-ae record-scene``, rosbag2 MCAP) as a radiance source.

    Frames are decoded ahead of the camera in a reader thread (``prefetch_frames`` frames
    deep; bag I/O, checksum and half-float conversion release the GIL, so on two cores the
    decoding overlaps the capture) and handed out in order (a frame's radiance array is reused a few frames later: capture it
before asking for the next frames); ``events`` come from the bag's
    ``/scene/info`` record, ``num_frames`` from the bag's index (the frames it holds). Errors (unreadable or damaged bag, missing topic, malformed or
    non-finite/negative radiance) name the file, topic and frame
    (:class:`neural_ae_ros.scenes.scene_bag.SceneBagError`) and are raised for the frame at
    which they occur; the frames before it are delivered.
    """

    def __init__(self, path: str, allow_truncated: bool = False, prefetch_frames: int = 3) -> None:
        from neural_ae_ros.scenes.scene_bag import read_scene_bag

        if prefetch_frames < 1:
            raise ValueError(f"prefetch_frames={prefetch_frames} must be >= 1")
        self.bag = read_scene_bag(path, allow_truncated=allow_truncated)
        self.width, self.height = self.bag.width, self.bag.height
        # the frames the bag holds (its index), not what /scene/info announced: a cut-short
        # recording ends where its frames end, and the loop stops there instead of waiting
        self.num_frames = self.bag.frame_count
        self.events = list(self.bag.events)
        self._queue: "queue.Queue" = queue.Queue(maxsize=prefetch_frames)
        self._stop = threading.Event()
        self._next = 0
        self._done = None  # what every later frame() raises once the stream has ended
        self._thread = threading.Thread(target=self._read_ahead, name="scene-bag-reader", daemon=True)
        self._started = False  # the reader starts with the first frame asked for

    def _read_ahead(self) -> None:
        try:
            # the queue holds prefetch_frames, the camera one more, the reader decodes one more
            for f in self.bag.frames(reuse_buffers=self._queue.maxsize + 2):
                if not self._put((f.index, f.radiance, f.boxes)):
                    return
            self._put(EndOfSource)
        except BaseException as exc:  # noqa: BLE001 - handed to the camera with the frame it hit
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def frame(self, index: int):
        if index < self._next:
            raise ValueError(f"{self.bag.path}: frames are read in order; frame {index} was already read")
        if not self._started:
            self._started = True
            self._thread.start()
        while True:
            if self._done is not None:
                raise self._done
            item = self._queue.get()
            if item is EndOfSource:
                self.num_frames = self._next
                self._done = EndOfSource(f"{self.bag.path}: recording ends after {self._next} frames")
                continue
            if isinstance(item, BaseException):
                # this frame fails loudly; the recording ends there
                self.num_frames = self._next
                self._done = EndOfSource(f"{self.bag.path}: recording unreadable from frame {self._next} on")
                raise item
            f_index, radiance, boxes = item
            if f_index == index:
                self._next = index + 1
                return radiance, boxes
            if f_index > index:
                raise ValueError(f"{self.bag.path}: frame {index} missing (next is {f_index})")

    def close(self) -> None:
        """Stop the reader thread (it also stops with the process: daemon)."""
        self._stop.set()
        if self._started:
            self._thread.join(timeout=2.0)


#: Frames over which a built-in drive's script is laid out when the run length is open.
DEFAULT_SCRIPT_FRAMES = 300


def open_source(source: str, drive: str = "panorama_pan", bag_path: str = "", seed: int = 0,
                width: int = 960, height: int = 600, frame_rate_hz: float = 30.0,
                script_frames: int = 0) -> RadianceSource:
    """Open the configured source; errors say which source and why."""
    if source == "drive" and drive == "step_test":
        return StepTestSource(width, height, seed)
    if source == "drive":
        return DriveAdapter(drive, width, height, seed, frame_rate_hz, script_frames or DEFAULT_SCRIPT_FRAMES)
    if source == "bag":
        if not bag_path:
            raise ValueError("source 'bag' needs bag_path")
        return SceneBagSource(bag_path)
    raise ValueError(f"unknown source {source!r}: expected 'drive' or 'bag'")
