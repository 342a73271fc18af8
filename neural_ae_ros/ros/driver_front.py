"""The camera bridge in front of a real camera driver (camera_bridge ``source: driver``).

Frames: the driver's raw images (``driver_image_raw``, remapped to the driver's topic) are
republished unchanged on ``image_raw`` with an ``exposure`` record (AppliedExposure, same header).
Exposure: each command the AE controller sends is clamped to the camera's limits
(``config/camera.yaml``) and sent to the driver's parameter service
(``<driver_node>/set_parameters``, rcl_interfaces/srv/SetParameters) in the driver's names and
units (:mod:`neural_ae_ros.imaging.camera_driver`); a set the driver refuses is reported with its
reason on the log and ``/diagnostics``. The driver's declared ranges for those parameters
(DescribeParameters) tighten the camera's limits, announced on camera_exposure_info.
Applied settings: with ``driver_metadata_type`` the driver's metadata of the same stamp says what
each frame was captured with, and the command it shows is named in the record; a set the
metadata never shows is sent again. Without metadata, the settings are ASSUMED to be the command
in force after ``actuation_latency_frames`` (logged at start and kept on /diagnostics).
"""
from __future__ import annotations

import importlib
import math
from dataclasses import replace
from typing import List, Optional, Tuple

from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from neural_ae_ros.imaging.camera_driver import DriverUnits, SentCommands, tighten_limits
from neural_ae_ros.imaging.exposure import FrameExposure, sanitize_command
from neural_ae_ros.imaging.histograms import mean_green_level
from .convert import MessageFormatError, StampJoin, applied_to_msg, image_to_raw, stamp_key
from .diagnostics import ERROR

#: Relative topics of the driver's outputs; launch and ``neural-ae bringup`` remap them.
DRIVER_IMAGE_RAW = "driver_image_raw"
DRIVER_META = "driver_meta"
#: Best effort matches a driver publishing best effort (sensor data) or reliable.
DRIVER_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
#: Images waiting for their metadata (frames); an image whose metadata never came is dropped.
_MAX_WAITING_FRAMES = 10
#: Method named in applied records whose settings match none of our commands.
DRIVER_SETTINGS = "driver"


def import_message_type(name: str):
    """``pkg/msg/Type`` -> the message class; an error says what to do instead."""
    parts = name.split("/")
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise ValueError(f"driver_metadata_type {name!r} is not of the form pkg/msg/Type")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.msg"), parts[2])
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"driver_metadata_type {name!r} cannot be imported ({exc}): install the driver's message "
                         "package, or set driver_metadata_type to '' (the applied settings are then assumed "
                         "after actuation_latency_frames)") from exc


def parse_assignments(text: str) -> List[Tuple[str, str]]:
    """``"a=Off,b=On"`` -> ``[("a", "Off"), ("b", "On")]``; an error names the bad pair."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"driver_manual_parameters: {item!r} is not name=value")
        out.append((name.strip(), value.strip()))
    return out


def _typed(value: str):
    """A string from driver_manual_parameters as the parameter type it reads as."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


class DriverFront:
    """Owned by the camera bridge (``bridge``: its params, scheduler, health, publishers)."""

    def __init__(self, bridge) -> None:
        p = bridge.params
        self.bridge = bridge
        self.units = DriverUnits(p["driver_exposure_unit"], p["driver_gain_unit"])
        self.sent = SentCommands(self.units)
        self.manual = parse_assignments(p["driver_manual_parameters"])
        self.meta_type = import_message_type(p["driver_metadata_type"]) if p["driver_metadata_type"] else None
        self.client = AsyncParameterClient(bridge, p["driver_node"])
        self._manual_sent = not self.manual
        self._described = False
        self.driver_ranges = {}  # parameter -> (low, high) in driver units, from its descriptors
        self._unavailable_logged = False
        bridge.create_subscription(Image, DRIVER_IMAGE_RAW, self._on_image, DRIVER_QOS)
        self.join: Optional[StampJoin] = None
        if self.meta_type is not None:
            self.join = StampJoin({"image", "meta"}, _MAX_WAITING_FRAMES)
            bridge.create_subscription(self.meta_type, DRIVER_META, self._on_meta, DRIVER_QOS)
            how = (f"from the driver's metadata ({p['driver_metadata_type']} on "
                   f"{bridge.resolve_topic_name(DRIVER_META)})")
        else:
            how = (f"ASSUMED: the command in force after actuation_latency_frames="
                   f"{p['actuation_latency_frames']} (the driver has no metadata)")
        self.applied_settings = how
        bridge.health.set_value("applied_settings", how)
        bridge.get_logger().info(
            f"fronting driver {p['driver_node']}: images from {bridge.resolve_topic_name(DRIVER_IMAGE_RAW)}; exposure "
            f"as {p['driver_exposure_parameter']} ({p['driver_exposure_unit']}) and {p['driver_gain_parameter']} "
            f"({p['driver_gain_unit']}); applied settings {how}")

    # -- exposure out ---------------------------------------------------------------------------
    def send(self, command: FrameExposure) -> None:
        """Clamp ``command`` to the camera's limits and set it on the driver."""
        t, k, _problems = sanitize_command(command.exposure_time_s, command.analog_gain, self.bridge.scheduler.limits)
        command = replace(command, exposure_time_s=t, analog_gain=k)
        if not self._ready():
            return
        p = self.bridge.params
        exp_name, gain_name = p["driver_exposure_parameter"], p["driver_gain_parameter"]
        values = [Parameter(exp_name, value=float(self._to_driver(exp_name, self.units.exposure_to_driver(t)))),
                  Parameter(gain_name, value=float(self._to_driver(gain_name, self.units.gain_to_driver(k))))]
        self.sent.sent(command, self.bridge.frame_index)
        self.client.set_parameters(values, callback=lambda future: self._on_result(future, values))

    def _ready(self) -> bool:
        if not self.client.services_are_ready():
            if not self._unavailable_logged:
                self.bridge.health.problem("driver_unavailable", f"the parameter service of driver "
                                           f"{self.bridge.params['driver_node']} is not available; exposure not set")
                self._unavailable_logged = True
            return False
        self._unavailable_logged = False
        if not self._described:
            self._described = True
            names = [self.bridge.params["driver_exposure_parameter"], self.bridge.params["driver_gain_parameter"]]
            self.client.describe_parameters(names, callback=self._on_described)
        if not self._manual_sent:
            self._manual_sent = True
            values = [Parameter(name, value=_typed(value)) for name, value in self.manual]
            self.client.set_parameters(values, callback=lambda future: self._on_result(future, values))
        return True

    def _on_described(self, future) -> None:
        """The driver's own ranges for exposure time and gain tighten the camera's limits (and
        are announced on camera_exposure_info, so the AE controller clamps to them too)."""
        try:
            descriptors = future.result().descriptors
        except Exception as exc:  # noqa: BLE001
            self.bridge.health.problem("driver_describe", f"cannot read the driver's parameter ranges: {exc}")
            return
        for d in descriptors:
            if d.floating_point_range:
                r = d.floating_point_range[0]
                self.driver_ranges[d.name] = (float(r.from_value), float(r.to_value))
            elif d.integer_range:
                r = d.integer_range[0]
                self.driver_ranges[d.name] = (float(r.from_value), float(r.to_value))
        p = self.bridge.params
        limits = self.bridge.scheduler.limits
        t_range = self.driver_ranges.get(p["driver_exposure_parameter"])
        k_range = self.driver_ranges.get(p["driver_gain_parameter"])
        try:
            new = tighten_limits(limits, self.units, t_range, k_range)
        except ValueError as exc:
            self.bridge.health.problem("driver_ranges", f"driver {p['driver_node']}: {exc}", ERROR)
            return
        if new != limits:
            self.bridge.set_limits(new)
        self.bridge.get_logger().info(
            f"driver {p['driver_node']} ranges: {p['driver_exposure_parameter']} {t_range or 'not given'}, "
            f"{p['driver_gain_parameter']} {k_range or 'not given'}; camera limits now {new}")

    def _to_driver(self, name: str, value: float) -> float:
        """Into the driver's declared range (a unit conversion must not step past its end)."""
        low, high = self.driver_ranges.get(name, (-math.inf, math.inf))
        return min(max(value, low), high)

    def _on_result(self, future, values) -> None:
        try:
            results = future.result().results
        except Exception as exc:  # noqa: BLE001 - the service call itself failed
            self.bridge.health.problem("driver_set_failed", f"setting {values[0].name} on driver "
                                       f"{self.bridge.params['driver_node']} failed: {exc}")
            return
        for value, result in zip(values, results):
            if not result.successful:
                self.bridge.health.problem(
                    "driver_refused", f"driver {self.bridge.params['driver_node']} refused "
                    f"{value.name}={value.value!r}: {result.reason or 'no reason given'}")

    # -- frames in ------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        if self.join is None:
            self._frame(msg, None)
            return
        evicted = self.join.evicted
        parts = self.join.add(stamp_key(msg.header), "image", msg)
        self._report_evicted(evicted)
        if parts is not None:
            self._frame(parts["image"], parts["meta"])

    def _on_meta(self, msg) -> None:
        evicted = self.join.evicted
        parts = self.join.add(stamp_key(msg.header), "meta", msg)
        self._report_evicted(evicted)
        if parts is not None:
            self._frame(parts["image"], parts["meta"])

    def _report_evicted(self, before: int) -> None:
        if self.join.evicted > before:
            stamp, present = self.join.last_evicted
            self.bridge.health.problem("driver_unmatched", f"driver frame stamp {stamp} ns: only {present} arrived "
                                       f"(no {'metadata' if present == ['image'] else 'image'} with that stamp); dropped")

    def _frame(self, image: Image, meta) -> None:
        bridge = self.bridge
        f = bridge.frame_index
        try:
            raw = image_to_raw(image, bridge.resolve_topic_name(DRIVER_IMAGE_RAW))
        except MessageFormatError as exc:
            bridge.health.problem("driver_image", str(exc))
            return
        assumed = bridge.scheduler.settings_for(f)  # latency model; also the watchdog's command age
        exposure = assumed
        if meta is not None:
            p = bridge.params
            t = self.units.exposure_from_driver(getattr(meta, p["driver_metadata_exposure_field"]))
            k = self.units.gain_from_driver(getattr(meta, p["driver_metadata_gain_field"]))
            shown = self.sent.match(t, k, f)
            if shown is not None:
                exposure = replace(shown, exposure_time_s=t, analog_gain=k, frame_index=f,
                                   session_id=bridge.session_id, command_age_frames=assumed.command_age_frames)
            else:
                exposure = FrameExposure(t, k, f, -1, DRIVER_SETTINGS, False, bridge.session_id,
                                         assumed.command_age_frames)
            again = self.sent.due_for_resend(f, p["actuation_latency_frames"], p["driver_resend_after_frames"])
            if again is not None:
                bridge.health.set_value("driver_sets_resent", self.sent.resent)
                bridge.get_logger().info(f"driver did not apply the set from frame {again.source_frame_index} "
                                         f"within {p['actuation_latency_frames']} + {p['driver_resend_after_frames']} "
                                         f"frames: resent ({self.sent.resent} resent so far)")
                self.send(again)
        bridge.health.frame_in()
        mean_level_dn = mean_green_level(raw)
        bridge._watchdog(exposure, mean_level_dn)
        try:
            bridge.exposure_pub.publish(applied_to_msg(exposure, image.header, mean_level_dn, bridge.fallback_active))
            bridge.image_pub.publish(image)
            bridge.health.frame_out()
        except Exception as exc:  # RCLError under overload: drop the frame, keep running
            bridge.health.problem("publish", f"frame {f}: publish failed: {exc}")
        bridge.frame_index += 1
