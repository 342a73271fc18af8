"""standin_camera_driver: a camera driver of our own that behaves like spinnaker_camera_driver
towards the camera bridge, for tests and bring-up without a camera.

Like that driver it publishes ``~/image_raw`` (here bayer_rggb16, 12-bit data) and ``~/meta``
(the settings each frame was captured with: ``exposure_time`` in us, ``gain`` in dB, same header
as the image), and takes its exposure through node parameters ``exposure_time`` (us) and ``gain``
(dB) declared with ranges: rclpy refuses a set outside them with the reason, as
``ros2 param set`` shows. Like a real camera, an accepted set lands ``actuation_latency_frames``
frames after the frame being captured when it arrived, and with ``ignore_every_nth_set`` it drops
some sets silently (accepted, never applied: what a bridge must notice from the metadata).
The scene is a built-in drive through the sensor model (paper 000 Eq. 1-3).
"""
from __future__ import annotations

import sys
from typing import List, Tuple

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from neural_ae_ros.msg import DriverImageMetaData

from neural_ae_ros.imaging.camera import SimulatedSensor
from neural_ae_ros.imaging.camera_driver import DriverUnits
from neural_ae_ros.imaging.exposure import FrameExposure
from neural_ae_ros.imaging.sensor import SensorParams
from neural_ae_ros.scenes.sources import open_source
from . import topics
from .convert import raw_to_image
from .params import DeclaredParameters
from .run import run_node

#: The driver parameters that carry exposure, named and in the units of spinnaker_camera_driver.
EXPOSURE_PARAMETER = "exposure_time"  # us
GAIN_PARAMETER = "gain"  # dB
UNITS = DriverUnits("us", "dB")


class StandinCameraDriver(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("standin_camera_driver", **node_kwargs)
        self.params = DeclaredParameters(self, "standin_camera_driver")
        p = self.params
        if not p["min_exposure_time_us"] < p["max_exposure_time_us"]:
            raise ValueError(f"min_exposure_time_us={p['min_exposure_time_us']} must be below "
                             f"max_exposure_time_us={p['max_exposure_time_us']}")
        self.declare_parameter(EXPOSURE_PARAMETER, float(p["initial_exposure_time_us"]), ParameterDescriptor(
            description="Exposure time (us).", floating_point_range=[FloatingPointRange(
                from_value=float(p["min_exposure_time_us"]), to_value=float(p["max_exposure_time_us"]), step=0.0)]))
        self.declare_parameter(GAIN_PARAMETER, float(p["initial_gain_db"]), ParameterDescriptor(
            description="Analog gain (dB).", floating_point_range=[FloatingPointRange(
                from_value=0.0, to_value=float(p["max_gain_db"]), step=0.0)]))
        self.declare_parameter("exposure_auto", "Continuous", ParameterDescriptor(description="Off | Continuous"))
        self.declare_parameter("gain_auto", "Continuous", ParameterDescriptor(description="Off | Continuous"))
        self.add_on_set_parameters_callback(self._on_set)
        self.sets_received = 0
        self.sets_ignored = 0
        self._pending: List[Tuple[int, str, float]] = []  # (due frame, parameter, value)
        self.current = {EXPOSURE_PARAMETER: float(p["initial_exposure_time_us"]),
                        GAIN_PARAMETER: float(p["initial_gain_db"])}
        sensor = SensorParams.from_yaml()
        self.sensor = SimulatedSensor(sensor, seed=p["seed"], simulate_noise=True, reuse_output_buffer=True)
        self.source = open_source("drive", p["drive"], "", p["seed"], p["width"], p["height"], p["frame_rate_hz"])
        self.image_pub = self.create_publisher(Image, "~/image_raw", topics.IMAGE_QOS)
        self.meta_pub = self.create_publisher(DriverImageMetaData, "~/meta", topics.RECORD_QOS) \
            if p["publish_metadata"] else None
        self.frame_index = 0
        self.timer = self.create_timer(1.0 / p["frame_rate_hz"], self._on_timer)
        self.get_logger().info(
            f"stand-in driver: {p['drive']} {p['width']}x{p['height']} @ {p['frame_rate_hz']} fps, latency "
            f"{p['actuation_latency_frames']} frames, ignoring every {p['ignore_every_nth_set'] or 'no'} n-th set, "
            f"exposure_time {p['min_exposure_time_us']}..{p['max_exposure_time_us']} us, gain 0..{p['max_gain_db']} dB")

    def _on_set(self, parameters) -> SetParametersResult:
        """The range check already passed (descriptor); schedule the change after the latency, or
        drop it silently when it is the n-th set."""
        exposure = [q for q in parameters if q.name in (EXPOSURE_PARAMETER, GAIN_PARAMETER)]
        if not exposure:
            return SetParametersResult(successful=True)
        self.sets_received += 1
        nth = self.params["ignore_every_nth_set"]
        if nth and self.sets_received % nth == 0:
            self.sets_ignored += 1
            self.get_logger().info(f"set {self.sets_received} ignored (as a camera sometimes does): "
                                   + ", ".join(f"{q.name}={q.value}" for q in exposure))
            return SetParametersResult(successful=True)
        due = self.frame_index + 1 + self.params["actuation_latency_frames"]
        self._pending += [(due, q.name, float(q.value)) for q in exposure]
        return SetParametersResult(successful=True)

    def _on_timer(self) -> None:
        f = self.frame_index
        for due, name, value in [e for e in self._pending if e[0] <= f]:
            self.current[name] = value
        self._pending = [e for e in self._pending if e[0] > f]
        t_s = UNITS.exposure_from_driver(round(self.current[EXPOSURE_PARAMETER]))  # the camera's us grid
        gain = UNITS.gain_from_driver(self.current[GAIN_PARAMETER])
        radiance, _ = self.source.frame(f)
        raw = self.sensor.capture(radiance, FrameExposure(t_s, gain, f))
        header = Header()
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = self.params["frame_id"]
        if self.meta_pub is not None:
            meta = DriverImageMetaData()
            meta.header = header
            meta.camera_time = f
            meta.brightness = -1
            meta.exposure_time = int(round(self.current[EXPOSURE_PARAMETER]))
            meta.max_exposure_time = int(round(self.params["max_exposure_time_us"]))
            meta.gain = float(self.current[GAIN_PARAMETER])
            self.meta_pub.publish(meta)
        self.image_pub.publish(raw_to_image(raw, header))
        self.frame_index += 1


def main(args=None) -> int:
    return run_node(StandinCameraDriver, args)


if __name__ == "__main__":
    sys.exit(main())
