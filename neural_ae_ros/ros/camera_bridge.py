"""camera_bridge: simulated camera over an HDR radiance source, driven by exposure commands.

Publishes per frame ``image_raw`` (bayer_rggb16, 12-bit data) and ``exposure``
(AppliedExposure, same header); subscribes ``exposure_command``. With ``source: driver`` it fronts a
real camera driver instead of simulating (``ros/driver_front.py``). Announces its exposure facts
(limits, T_max, black/white/saturation level, actuation latency, frame rate, session id) once
on the latched ``camera_exposure_info``: the AE controller reads them from there.

Commands are checked by the scheduler (``imaging/camera.py``: session, ahead, stale; values
only sanitised, the controller already clamped them) and refusals are logged at most once per
second per cause. Watchdog: every AppliedExposure carries the age of the newest controller
command; past ``command_age_warn_frames`` / ``command_age_error_frames`` the node's status on
``/diagnostics`` goes WARN / ERROR, and from ``fallback_after_frames`` the camera runs its own
mean-level AE (the fast controller around the average method) until commands return.
"""
from __future__ import annotations

import dataclasses
import random
import sys
import time

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray

from neural_ae_ros.msg import AppliedExposure, CameraExposureInfo, ExposureCommand

from neural_ae_ros.ae import ExposureController, Observation, make_method
from neural_ae_ros.imaging.camera import ExposureScheduler, SimulatedSensor
from neural_ae_ros.imaging.exposure import CameraConfig, CameraExposureInfo as ExposureInfo, CameraLimits
from neural_ae_ros.imaging.histograms import mean_green_level
from neural_ae_ros.imaging.sensor import SensorParams, warm_up_realtime
from neural_ae_ros.scenes.sources import EndOfSource, open_source
from . import topics
from .convert import applied_to_msg, camera_info_to_msg, command_from_msg, raw_to_image, stamp_key
from .driver_front import DriverFront
from .diagnostics import ERROR, WARN, DiagnosticsReporter, NodeHealth, cause_of, guarded
from .params import DeclaredParameters
from .run import run_node

FALLBACK_METHOD = "camera_fallback"


class CameraBridge(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("camera_bridge", **node_kwargs)
        self.params = DeclaredParameters(self, "camera_bridge", on_change=self._on_parameter_change)
        p = self.params
        limits = CameraLimits(p["min_exposure_time_s"], p["max_exposure_time_s"],
                              p["min_analog_gain"], p["max_analog_gain"])
        sensor = SensorParams.from_yaml()
        self.session_id = random.SystemRandom().randrange(1, 2**31)
        config = CameraConfig(limits, p["frame_rate_hz"], p["actuation_latency_frames"],
                              p["initial_exposure_time_s"], p["initial_analog_gain"], p["t_max_s"])
        self.info = ExposureInfo.from_config(config, sensor, self.session_id)
        self.scheduler = ExposureScheduler(limits, p["actuation_latency_frames"], p["initial_exposure_time_s"],
                                           p["initial_analog_gain"], session_id=self.session_id)
        self.sensor = SimulatedSensor(sensor, seed=p["seed"], simulate_noise=p["simulate_noise"],
                                      reuse_output_buffer=True)  # each frame is copied into its message
        if p["source"] != "driver":
            warm_up_realtime(sensor)  # compiled capture and noise pool now, not on the first frame
        # source 'driver': a real camera driver's frames (ros/driver_front.py), no simulation
        self.source = None if p["source"] == "driver" else open_source(
            p["source"], p["drive"], p["bag_path"], p["seed"], p["width"], p["height"], p["frame_rate_hz"],
            script_frames=p["max_frames"])
        # the capture rate against the rate asked for: a source or loop slower than the camera
        # rate is reported on /diagnostics ("input at 3.5 of 10.0 Hz"), not silent
        self.health = NodeHealth(expected_rate_hz=p["frame_rate_hz"], stale_after_s=None,
                                 input_name="captured frames")
        self.diagnostics = DiagnosticsReporter(self, self.health)
        self.fallback = ExposureController(make_method("average"), self.info, smoothing="fast")
        self.fallback_active = False
        self.info_pub = self.create_publisher(CameraExposureInfo, topics.CAMERA_EXPOSURE_INFO, topics.LATCHED_QOS)
        self.image_pub = self.create_publisher(Image, topics.IMAGE_RAW, topics.IMAGE_QOS)
        self.exposure_pub = self.create_publisher(AppliedExposure, topics.APPLIED_EXPOSURE, topics.RECORD_QOS)
        self.create_subscription(ExposureCommand, topics.EXPOSURE_COMMAND, self._on_command, topics.RECORD_QOS)
        self.frame_index = 0
        self.driver = DriverFront(self) if p["source"] == "driver" else None  # (may refuse to start)
        self._announce()
        self.finished = False
        self._started = False
        self._waiting_since = None  # lockstep: monotonic time we started waiting for a command
        self._wait_started = time.monotonic()
        # frames in flight (A/B runs): stamps of published frames not yet back from the detector
        self._in_flight = {}  # stamp_key -> (frame_index, monotonic capture time)
        self._slowest_round_trip_s = 0.0  # capture -> its detections back, slowest so far (after the first)
        self._first_detection_back = False
        self._newest_detected = -1
        self._in_flight_since = None  # monotonic time the gate closed
        self._downstream_lost = False  # detections stopped: the camera goes on without waiting
        if p["max_frames_in_flight"] > 0:
            self.create_subscription(Detection2DArray, topics.DETECTIONS, self._on_detections, topics.RECORD_QOS)
        if self.driver is not None:  # frames come when the driver sends them
            self.timer = None
            return
        self.timer = self.create_timer(self._timer_period_s(p["frame_rate_hz"]), self._on_timer)
        self.get_logger().info(
            f"camera_bridge: session {self.session_id}, source={p['source']}:"
            f"{p['drive'] if p['source'] == 'drive' else p['bag_path']} "
            f"{self.source.width}x{self.source.height} @ {p['frame_rate_hz']} fps, "
            f"latency {p['actuation_latency_frames']} frames")

    def _announce(self) -> None:
        header = Header()
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = self.params["frame_id"]
        self.info_pub.publish(camera_info_to_msg(self.info, header))

    def set_limits(self, limits: CameraLimits) -> None:
        """Narrower limits learnt at run time (a driver's ranges): scheduler, fallback, announcement."""
        self.scheduler.limits = limits
        self.info = dataclasses.replace(self.info, limits=limits)
        self.fallback.set_camera(self.info)
        self._announce()

    #: Timer period of ``pace: pipeline`` (s): the gates are polled this often besides the callbacks.
    PIPELINE_POLL_S = 0.002

    def _timer_period_s(self, frame_rate_hz: float) -> float:
        return self.PIPELINE_POLL_S if self.params["pace"] == "pipeline" else 1.0 / frame_rate_hz

    # -- parameters -------------------------------------------------------------------------
    def _on_parameter_change(self, name, value) -> None:
        if name == "frame_rate_hz" and self.timer is None:  # a driver's frame rate is the driver's
            self.info = dataclasses.replace(self.info, frame_rate_hz=float(value))
            self.health.input_rate.expected_hz = float(value)
            self._announce()
        elif name == "frame_rate_hz":
            self.timer.cancel()
            self.timer = self.create_timer(self._timer_period_s(value), self._on_timer)
            self.info = dataclasses.replace(self.info, frame_rate_hz=float(value))
            self.health.input_rate.expected_hz = float(value)
            self._announce()
        elif name == "actuation_latency_frames":
            self.scheduler.actuation_latency_frames = int(value)
            self.info = dataclasses.replace(self.info, actuation_latency_frames=int(value))
            self.fallback.set_camera(self.info)
            self._announce()
        elif name == "simulate_noise":
            self.sensor.simulate_noise = bool(value)

    # -- commands ---------------------------------------------------------------------------
    @guarded(cause="command_callback")
    def _on_command(self, msg: ExposureCommand) -> None:
        command = command_from_msg(msg)
        problems, refusal = self.scheduler.submit(command)
        who = f"exposure_command from frame {msg.source_frame_index} ({msg.method or 'unnamed'})"
        if refusal is not None:
            self.health.problem(f"command_{refusal.cause}", f"{who}: {refusal.message}")
            return
        if problems:  # throttled per kind of problem (numbers stripped), not per command
            text = "; ".join(problems)
            self.health.problem(cause_of(text, "command_sanitised: "), f"{who}: {text}")
        if self.driver is not None:
            self.driver.send(command)
        if self.fallback_active:
            self.fallback_active = False
            self.health.clear("fallback")
            self.get_logger().info(f"commands returned ({who}): handing exposure control back to the AE controller")
        if (self._waiting_since is not None and not self.scheduler.command_expected(self.frame_index)
                and self._downstream_ready()):
            self._capture_next()

    # -- frames in flight -------------------------------------------------------------------
    def _on_detections(self, msg: Detection2DArray) -> None:
        entry = self._in_flight.pop(stamp_key(msg.header), None)
        if entry is None:
            return
        index, captured_t = entry
        if self._newest_detected >= 0:  # the first round trip is the detector's warm-up: not a measure
            self._slowest_round_trip_s = max(self._slowest_round_trip_s, time.monotonic() - captured_t)
        self._first_detection_back = True
        self._newest_detected = max(self._newest_detected, index)
        for key in [k for k, (i, _) in self._in_flight.items() if i < index]:
            del self._in_flight[key]  # older frames the detector never answered (dropped there)
        self._in_flight_since = None
        if self._downstream_lost:
            self._downstream_lost = False
            self.health.clear("in_flight_timeout")
            self.get_logger().info(f"detections returned (frame {index}): waiting for them again")

    #: A detector this many times slower than its slowest answer so far is taken for gone.
    IN_FLIGHT_TIMEOUT_FACTOR = 5.0

    def _downstream_ready(self) -> bool:
        """``max_frames_in_flight``: True while fewer frames than that are published and not yet
        answered on ``detections``; after waiting ``in_flight_timeout_s`` (or 5x the slowest
        round trip so far, if longer: a loaded machine is not a dead detector; before the first
        detections at least ``wait_timeout_s``: the first inference warms up), True until
        detections return (reported on /diagnostics)."""
        limit = self.params["max_frames_in_flight"]
        if limit <= 0 or self._downstream_lost or self.frame_index - 1 - self._newest_detected < limit:
            self._in_flight_since = None
            return True
        now = time.monotonic()
        if self._in_flight_since is None:
            self._in_flight_since = now
        timeout = max(self.params["in_flight_timeout_s"], self.IN_FLIGHT_TIMEOUT_FACTOR * self._slowest_round_trip_s)
        if not self._first_detection_back:  # the detector's first inference (warm-up) is slow
            timeout = max(timeout, self.params["wait_timeout_s"])
        if now - self._in_flight_since < timeout:
            return False
        self._downstream_lost = True
        self.health.problem("in_flight_timeout",
                            f"no detections of frame {self._newest_detected + 1} after {timeout:.1f} s: capturing "
                            f"frame {self.frame_index} on without waiting until detections return", ERROR)
        return True

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

    @guarded(cause="frame_timer")
    def _on_timer(self) -> None:
        if self.finished or not self._ready() or not self._downstream_ready():
            return
        timeout = self.params["lockstep_timeout_s"]
        if timeout > 0 and not self.fallback_active and self.scheduler.command_expected(self.frame_index):
            now = time.monotonic()
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < timeout:
                return  # the command callback captures the frame as soon as it arrives
            self.health.problem("lockstep_timeout",
                                f"lockstep: no command from frame "
                                f"{self.frame_index - 1 - self.scheduler.actuation_latency_frames} after {timeout} s; "
                                f"capturing frame {self.frame_index} with the settings in force")
        self._capture_next()

    def _capture_next(self) -> None:
        self._waiting_since = None
        max_frames = self.params["max_frames"]
        num_frames = self.source.num_frames
        if (max_frames and self.frame_index >= max_frames) or (num_frames is not None and self.frame_index >= num_frames):
            self.finished = True
            if num_frames is not None and self.frame_index >= num_frames:  # a recording's end: say so
                self.health.set_value("source_ended_at_frame", self.frame_index)
            self.get_logger().info(f"camera_bridge: finished after {self.frame_index} frames")
            return
        try:
            radiance, _boxes = self.source.frame(self.frame_index)
        except EndOfSource as exc:
            self.finished = True
            # on /diagnostics: a recording's end (or its unreadable rest) ends a loop run waiting for frames
            self.health.set_value("source_ended_at_frame", self.frame_index)
            self.get_logger().info(f"camera_bridge: {exc}")
            return
        except Exception as exc:  # a broken source frame: say which, keep the node alive
            self.health.problem("source_frame", f"source frame {self.frame_index}: {exc}", ERROR)
            self.frame_index += 1
            return
        exposure = self.scheduler.settings_for(self.frame_index)
        raw = self.sensor.capture(radiance, exposure)
        self.health.frame_in()
        mean_level_dn = mean_green_level(raw)
        self._watchdog(exposure, mean_level_dn)
        header = Header()
        header.stamp = self.get_clock().now().to_msg()
        header.frame_id = self.params["frame_id"]
        try:
            self.exposure_pub.publish(applied_to_msg(exposure, header, mean_level_dn, self.fallback_active))
            if self.params["max_frames_in_flight"] > 0:
                self._in_flight[stamp_key(header)] = (self.frame_index, time.monotonic())
            self.image_pub.publish(raw_to_image(raw, header))
            self.health.frame_out()
        except Exception as exc:  # RCLError under overload: drop the frame, keep running
            self.health.problem("publish", f"frame {self.frame_index}: publish failed: {exc}")
        self.frame_index += 1

    # -- watchdog and fallback --------------------------------------------------------------
    def _watchdog(self, exposure, mean_level_dn: float) -> None:
        """Command age -> diagnostics level; past ``fallback_after_frames``, the built-in AE."""
        p = self.params
        age = exposure.command_age_frames
        self.health.set_value("command_age_frames", age)
        self.health.set_value("fallback_active", self.fallback_active)
        if age >= p["command_age_error_frames"]:
            self.health.problem("command_age", f"no exposure command for {age} frames (newest from frame "
                                f"{self.scheduler.newest_controller_source_frame_index})", ERROR)
        elif age >= p["command_age_warn_frames"]:
            self.health.problem("command_age", f"exposure commands late: the newest is {age} frames old", WARN)
        fallback_after = p["fallback_after_frames"]
        if fallback_after and age >= fallback_after and not self.fallback_active:
            self.fallback_active = True
            self.fallback.reset()
            self.health.problem("fallback", f"fallback: no exposure command for {age} frames; the camera runs its "
                                "built-in mean-level AE until commands return", ERROR)
            self.health.hold_forever("fallback")
        if self.fallback_active:
            obs = Observation(exposure, mean_level_dn=mean_level_dn, white_level_dn=self.info.white_level_dn,
                              black_level_dn=self.info.black_level_dn)
            command = self.fallback.update(obs)
            fallback = dataclasses.replace(command, method=FALLBACK_METHOD)
            self.scheduler.submit(fallback, from_controller=False)
            if self.driver is not None:
                self.driver.send(fallback)


def main(args=None) -> int:
    return run_node(CameraBridge, args)


if __name__ == "__main__":
    sys.exit(main())
