"""camera_bridge: simulated camera over an HDR radiance source, driven by exposure commands.

Publishes per frame ``image_raw`` (bayer_rggb16, 12-bit data) and ``exposure``
(AppliedExposure, same header); subscribes ``exposure_command``. Every command is sanitised and
clamped to the camera's limits (read-only parameters) before it is scheduled; a bad command is
logged with what was wrong and the camera keeps running.
"""
from __future__ import annotations

import sys
import time

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from neural_ae_ros.msg import AppliedExposure, ExposureCommand

from neural_ae_ros.imaging.camera import ExposureScheduler, SimulatedSensor
from neural_ae_ros.imaging.exposure import CameraLimits
from neural_ae_ros.imaging.histograms import mean_green_level
from neural_ae_ros.imaging.sensor import SensorParams
from neural_ae_ros.scenes.sources import EndOfSource, open_source
from . import topics
from .convert import raw_to_image
from .params import DeclaredParameters
from .run import run_node


class CameraBridge(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("camera_bridge", **node_kwargs)
        self.params = DeclaredParameters(self, "camera_bridge", on_change=self._on_parameter_change)
        p = self.params
        self.limits = CameraLimits(p["min_exposure_time_s"], p["max_exposure_time_s"],
                                   p["min_analog_gain"], p["max_analog_gain"])
        self.scheduler = ExposureScheduler(self.limits, p["actuation_latency_frames"],
                                           p["initial_exposure_time_s"], p["initial_analog_gain"])
        self.sensor = SimulatedSensor(SensorParams.from_yaml(), seed=p["seed"], simulate_noise=p["simulate_noise"],
                                      reuse_output_buffer=True)  # each frame is copied into its message
        self.source = open_source(p["source"], p["drive"], p["bag_path"], p["seed"], p["width"], p["height"],
                                  p["frame_rate_hz"], script_frames=p["max_frames"])
        self.image_pub = self.create_publisher(Image, topics.IMAGE_RAW, topics.IMAGE_QOS)
        self.exposure_pub = self.create_publisher(AppliedExposure, topics.APPLIED_EXPOSURE, topics.RECORD_QOS)
        self.create_subscription(ExposureCommand, topics.EXPOSURE_COMMAND, self._on_command, topics.RECORD_QOS)
        self.frame_index = 0
        self.finished = False
        self._started = False
        self._waiting_since = None  # lockstep: monotonic time we started waiting for a command
        self._wait_started = time.monotonic()
        self.timer = self.create_timer(1.0 / p["frame_rate_hz"], self._on_timer)
        self.get_logger().info(
            f"camera_bridge: source={p['source']}:{p['drive'] if p['source'] == 'drive' else p['bag_path']} "
            f"{self.source.width}x{self.source.height} @ {p['frame_rate_hz']} fps, "
            f"latency {p['actuation_latency_frames']} frames")

    # -- parameters -------------------------------------------------------------------------
    def _on_parameter_change(self, name, value) -> None:
        if name == "frame_rate_hz":
            self.timer.cancel()
            self.timer = self.create_timer(1.0 / value, self._on_timer)
        elif name == "actuation_latency_frames":
            self.scheduler.actuation_latency_frames = int(value)
        elif name == "simulate_noise":
            self.sensor.simulate_noise = bool(value)

    # -- commands ---------------------------------------------------------------------------
    def _on_command(self, msg: ExposureCommand) -> None:
        problems = self.scheduler.submit(int(msg.source_frame_index), msg.exposure_time_s, msg.analog_gain,
                                         msg.method)
        if problems:
            self.get_logger().warning(
                f"exposure_command from frame {msg.source_frame_index} ({msg.method or 'unnamed'}): "
                + "; ".join(problems))
        if self._waiting_since is not None and not self.scheduler.command_expected(self.frame_index):
            self._capture_next()

    # -- frames -----------------------------------------------------------------------------
    def _ready(self) -> bool:
        """True once the subscribers asked for are connected (or the wait timed out)."""
        if self._started:
            return True
        p = self.params
        connected = (self.image_pub.get_subscription_count() >= p["wait_for_image_subscribers"]
                     and self.exposure_pub.get_subscription_count() >= p["wait_for_exposure_subscribers"])
        if connected or time.monotonic() - self._wait_started > p["wait_timeout_s"]:
            if not connected:
                self.get_logger().warning("starting before all expected subscribers connected "
                                          f"(waited {p['wait_timeout_s']} s)")
            self._started = True
        return self._started

    def _on_timer(self) -> None:
        if self.finished or not self._ready():
            return
        timeout = self.params["lockstep_timeout_s"]
        if timeout > 0 and self.scheduler.command_expected(self.frame_index):
            now = time.monotonic()
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < timeout:
                return  # the command callback captures the frame as soon as it arrives
            self.get_logger().warning(
                f"lockstep: no command from frame {self.frame_index - 1 - self.scheduler.actuation_latency_frames} "
                f"after {timeout} s; capturing frame {self.frame_index} with the settings in force")
        self._capture_next()

    def _capture_next(self) -> None:
        self._waiting_since = None
        max_frames = self.params["max_frames"]
        num_frames = self.source.num_frames
        if (max_frames and self.frame_index >= max_frames) or (num_frames is not None and self.frame_index >= num_frames):
            self.finished = True
            self.get_logger().info(f"camera_bridge: finished after {self.frame_index} frames")
            return
        try:
            radiance, _boxes = self.source.frame(self.frame_index)
        except EndOfSource as exc:
            self.finished = True
            self.get_logger().info(f"camera_bridge: {exc}")
            return
        except Exception as exc:  # a broken source frame: say which, keep the node alive
            self.get_logger().error(f"source frame {self.frame_index}: {exc}")
            self.frame_index += 1
            return
        settings = self.scheduler.settings_for(self.frame_index)
        raw = self.sensor.capture(radiance, settings)
        header = Header()
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = self.params["frame_id"]
        applied = AppliedExposure()
        applied.header = header
        applied.frame_index = self.frame_index
        applied.exposure_time_s = settings.exposure_time_s
        applied.analog_gain = settings.analog_gain
        applied.effective_exposure_s = settings.effective_exposure_s
        applied.from_command = settings.from_command
        applied.command_source_frame_index = max(settings.command_source_frame_index, 0)
        applied.command_method = settings.command_method
        applied.clamped = settings.clamped
        applied.mean_level_dn = mean_green_level(raw)
        try:
            self.exposure_pub.publish(applied)
            self.image_pub.publish(raw_to_image(raw, header))
        except Exception as exc:  # RCLError under overload: drop the frame, keep running
            self.get_logger().warning(f"frame {self.frame_index}: publish failed: {exc}")
        self.frame_index += 1


def main(args=None) -> int:
    return run_node(CameraBridge, args)


if __name__ == "__main__":
    sys.exit(main())
