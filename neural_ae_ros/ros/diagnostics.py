"""Health reporting for every node: throttled logs and ``/diagnostics``.

Two parts:

- Plain logic, no ROS (testable alone): :class:`ThrottledLog` (a given cause logs at most once
  per ``period_s``, with the count of suppressed repeats), :class:`RateMeter` (measured vs
  expected frame rate: the shortfall) and :class:`NodeHealth` (counters of dropped frames,
  failed joins, callback errors and rate shortfall, folded into one level and message).
- :class:`DiagnosticsReporter`: publishes ``diagnostic_msgs/DiagnosticArray`` on the absolute
  topic ``/diagnostics`` (what diagnostic_aggregator and rqt_robot_monitor read), one status
  per node named with the node's fully qualified name, levels OK / WARN / ERROR / STALE, the
  counters as key values. It publishes every ``period_s`` and at once (rate-limited to
  ``min_interval_s``) when the level gets worse, so a fault shows within a fraction of a second.

Usage in a node::

    self.health = NodeHealth(expected_rate_hz=None)
    self.diagnostics = DiagnosticsReporter(self, self.health)
    self.log = self.diagnostics.log            # ThrottledLog over the node's logger
    ...
    self.health.dropped("too_small", f"{where}: 6x6 is below 14x14")   # counts, WARN, throttled log
"""
from __future__ import annotations

import collections
import functools
import re
import time
from typing import Callable, Deque, Dict, List, Optional, Tuple

#: Levels as in diagnostic_msgs/DiagnosticStatus (bytes 0..3).
OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}

#: Absolute: every node's status reaches the one topic aggregators read, whatever its namespace.
DIAGNOSTICS_TOPIC = "/diagnostics"


# -- throttled logging (no ROS) -----------------------------------------------------------------
class ThrottledLog:
    """Log each *cause* at most once per ``period_s`` s; repeats are counted and the count is
    appended to the next line of that cause ("(+12 more in the last 1.0 s)").

    ``logger``: anything with ``info``/``warning``/``error``/``fatal`` methods taking one string
    (an rclpy logger, a :mod:`logging` logger). ``clock``: seconds, monotonic.
    """

    def __init__(self, logger, period_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.period_s = float(period_s)
        self.clock = clock
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = collections.defaultdict(int)

    def _emit(self, level: str, cause: str, message: str) -> bool:
        now = self.clock()
        last = self._last.get(cause)
        if last is not None and now - last < self.period_s:
            self._suppressed[cause] += 1
            return False
        suppressed = self._suppressed.pop(cause, 0)
        if suppressed:
            since = now - last if last is not None else self.period_s
            message = f"{message} (+{suppressed} more like this in the last {since:.1f} s)"
        self._last[cause] = now
        # one call site per severity: rclpy refuses a call site whose severity changes
        # ("Logger severity cannot be changed between calls")
        if level == "error":
            self.logger.error(message)
        elif level == "warning":
            self.logger.warning(message)
        elif level == "fatal":
            self.logger.fatal(message)
        else:
            self.logger.info(message)
        return True

    def info(self, cause: str, message: str) -> bool:
        return self._emit("info", cause, message)

    def warning(self, cause: str, message: str) -> bool:
        return self._emit("warning", cause, message)

    def error(self, cause: str, message: str) -> bool:
        return self._emit("error", cause, message)

    def suppressed(self, cause: str) -> int:
        """Repeats of ``cause`` not logged since its last line."""
        return self._suppressed.get(cause, 0)


_NUMBER = re.compile(r"[-+]?\d[\d.e+-]*")


def cause_of(message: str, prefix: str = "") -> str:
    """A throttling key for a message: numbers (stamps, sizes, indices) replaced, so the same
    problem on every frame is one cause while different problems stay apart."""
    return prefix + _NUMBER.sub("#", message)


# -- rates (no ROS) -----------------------------------------------------------------------------
class RateMeter:
    """Arrival rate over a sliding window of ``window_s`` s, compared with ``expected_hz``.

    ``shortfall`` = 1 - measured / expected (0 = on rate, 0.65 = 35 % of the frames asked for),
    ``None`` while fewer than ``min_samples`` arrivals span the window or no rate is expected.
    """

    def __init__(self, expected_hz: Optional[float] = None, window_s: float = 3.0, min_samples: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.expected_hz = expected_hz
        self.window_s = float(window_s)
        self.min_samples = int(min_samples)
        self.clock = clock
        self._times: Deque[float] = collections.deque()
        self.count = 0
        #: running mean of the time between arrivals (s), kept while input pauses
        self.mean_interval_s: Optional[float] = None
        self.last_t: Optional[float] = None

    def tick(self, now: Optional[float] = None) -> None:
        now = self.clock() if now is None else now
        if self._times:
            gap = now - self._times[-1]
            self.mean_interval_s = gap if self.mean_interval_s is None else 0.8 * self.mean_interval_s + 0.2 * gap
        self._times.append(now)
        self.last_t = now
        self.count += 1
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def measured_hz(self, now: Optional[float] = None) -> Optional[float]:
        """Arrivals per second over the window ending ``now`` (None: too few to say)."""
        now = self.clock() if now is None else now
        self._trim(now)
        if len(self._times) < self.min_samples:
            return None
        span = now - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else None

    def shortfall(self, now: Optional[float] = None) -> Optional[float]:
        if not self.expected_hz:
            return None
        measured = self.measured_hz(now)
        if measured is None:
            return None
        return max(0.0, 1.0 - measured / self.expected_hz)

    def seconds_since_last(self, now: Optional[float] = None) -> Optional[float]:
        now = self.clock() if now is None else now
        return None if self.last_t is None else now - self.last_t


class SkipCounter:
    """Frames a slow consumer never saw: the producer's stamps (e.g. ``exposure`` records, one
    per camera frame) against the stamps the consumer processed. A frame counts as skipped once
    a later frame was processed and it was not (so frames still in flight are not counted).
    Keeps at most ``capacity`` stamps."""

    def __init__(self, capacity: int = 2000) -> None:
        self.capacity = int(capacity)
        self._upstream: "collections.OrderedDict[int, bool]" = collections.OrderedDict()
        # processed before their producer record arrived (one executor runs the image callback
        # before the exposure callback when both are ready): not skipped when the record comes
        self._ahead: "collections.OrderedDict[int, bool]" = collections.OrderedDict()
        self.skipped = 0
        self.processed = 0

    def upstream(self, stamp_ns: int) -> None:
        stamp_ns = int(stamp_ns)
        if self._ahead.pop(stamp_ns, None) is not None:
            return
        self._upstream.setdefault(stamp_ns, False)
        while len(self._upstream) > self.capacity:
            self._upstream.popitem(last=False)

    def done(self, stamp_ns: int) -> int:
        """Mark ``stamp_ns`` processed; returns how many earlier frames became skipped."""
        stamp_ns = int(stamp_ns)
        self.processed += 1
        if stamp_ns not in self._upstream:
            self._ahead[stamp_ns] = True
            while len(self._ahead) > self.capacity:
                self._ahead.popitem(last=False)
        new = 0
        for s in list(self._upstream):
            if s > stamp_ns:
                break
            if s < stamp_ns:
                new += 1
            del self._upstream[s]
        self.skipped += new
        return new


# -- node health (no ROS) -----------------------------------------------------------------------
class NodeHealth:
    """What one node has to say about itself: counters, the rate of its main input, recent
    problems. :meth:`status` folds them into ``(level, message, key_values)``.

    - A problem (dropped frame, failed join, callback error) raises the level to its severity
      for ``hold_s`` s after it last happened; the message names its cause and count.
    - A rate shortfall above ``shortfall_warn`` is WARN ("input at 3.5 of 10.0 Hz").
    - No input for ``stale_after_s`` s (or 5 usual intervals between inputs, if longer) after
      some arrived is STALE (the upstream node is gone); ``input_name`` names it in the message.
    """

    def __init__(self, expected_rate_hz: Optional[float] = None, hold_s: float = 2.0,
                 shortfall_warn: float = 0.2, stale_after_s: Optional[float] = 2.0,
                 rate_window_s: float = 3.0, clock: Callable[[], float] = time.monotonic,
                 log: Optional[ThrottledLog] = None, input_name: str = "input") -> None:
        self.input_name = input_name
        self.clock = clock
        self.hold_s = float(hold_s)
        self.shortfall_warn = float(shortfall_warn)
        self.stale_after_s = stale_after_s
        self.input_rate = RateMeter(expected_rate_hz, window_s=rate_window_s, clock=clock)
        self.log = log
        self.counters: Dict[str, int] = collections.OrderedDict(
            (k, 0) for k in ("frames_in", "frames_out", "dropped_frames", "failed_joins", "callback_errors"))
        self.values: Dict[str, object] = collections.OrderedDict()
        # cause -> (level, last time, count, last message)
        self._problems: Dict[str, Tuple[int, float, int, str]] = {}
        self._worsened = False
        self._last_level = OK

    # counters
    def frame_in(self) -> None:
        self.counters["frames_in"] += 1
        self.input_rate.tick()

    def frame_out(self) -> None:
        self.counters["frames_out"] += 1

    def set_value(self, key: str, value) -> None:
        self.values[key] = value

    # problems
    def problem(self, cause: str, message: str, level: int = WARN, counter: Optional[str] = None) -> None:
        """Record a problem of ``cause`` (logged throttled per cause); bump ``counter`` if given."""
        if counter:
            self.counters[counter] = self.counters.get(counter, 0) + 1
        now = self.clock()
        _, _, count, _ = self._problems.get(cause, (level, now, 0, message))
        self._problems[cause] = (level, now, count + 1, message)
        if level > self._last_level:
            self._worsened = True
        if self.log is not None:
            (self.log.error if level >= ERROR else self.log.warning)(cause, message)

    def dropped(self, cause: str, message: str, level: int = WARN) -> None:
        """A frame was dropped (bad size, bad encoding...): counted in ``dropped_frames``."""
        self.problem(cause, f"dropped frame: {message}", level, counter="dropped_frames")

    def failed_join(self, cause: str, message: str, level: int = WARN) -> None:
        """Messages of one frame that never came together (a partner lost or late)."""
        self.problem(cause, f"failed join: {message}", level, counter="failed_joins")

    def callback_error(self, cause: str, exc: BaseException) -> None:
        """An unexpected exception in a callback: ERROR, counted, the node keeps running."""
        self.problem(cause, f"{cause}: {type(exc).__name__}: {exc}", ERROR, counter="callback_errors")

    def hold_forever(self, cause: str) -> None:
        """Keep ``cause`` in the status until :meth:`clear` (a state, not an event: e.g. no model)."""
        level, _, count, message = self._problems[cause]
        self._problems[cause] = (level, float("inf"), count, message)

    def clear(self, cause: str) -> None:
        self._problems.pop(cause, None)

    def take_worsened(self) -> bool:
        """True once after a problem raised the level (the reporter then publishes at once)."""
        w, self._worsened = self._worsened, False
        return w

    def status(self) -> Tuple[int, str, List[Tuple[str, str]]]:
        now = self.clock()
        level, parts = OK, []
        for cause, (lvl, last, count, message) in sorted(self._problems.items(), key=lambda kv: -kv[1][1]):
            if now - last <= self.hold_s or last == float("inf"):
                level = max(level, lvl)
                parts.append(f"{message} [{cause} x{count}]")
        measured = self.input_rate.measured_hz(now)
        shortfall = self.input_rate.shortfall(now)
        if shortfall is not None and shortfall > self.shortfall_warn:
            level = max(level, WARN)
            parts.append(f"rate shortfall: input at {measured:.1f} of {self.input_rate.expected_hz:.1f} Hz "
                         f"({100 * shortfall:.0f} % short)")
        idle = self.input_rate.seconds_since_last(now)
        stale_after = self.stale_after_s
        if stale_after is not None and self.input_rate.mean_interval_s is not None:
            stale_after = max(stale_after, 5.0 * self.input_rate.mean_interval_s)
        if stale_after is not None and idle is not None and idle > stale_after and level < ERROR:
            level = STALE
            parts.append(f"no {self.input_name} for {idle:.1f} s")
        self._last_level = level
        values = [(k, str(v)) for k, v in self.counters.items()]
        values.append(("input_rate_hz", "n/a" if measured is None else f"{measured:.2f}"))
        if self.input_rate.expected_hz:
            values.append(("expected_rate_hz", f"{self.input_rate.expected_hz:.2f}"))
            values.append(("rate_shortfall", "n/a" if shortfall is None else f"{shortfall:.3f}"))
        values += [(k, str(v)) for k, v in self.values.items()]
        return level, ("; ".join(parts) if parts else "ok"), values


def guarded(health_attr: str = "health", cause: Optional[str] = None):
    """Decorator for a node callback: any exception is reported (ERROR on /diagnostics, one
    throttled log line) and swallowed, so one bad message never stops the node."""

    def wrap(fn):
        name = cause or fn.__name__.lstrip("_")

        @functools.wraps(fn)
        def inner(self, *args, **kwargs):
            try:
                return fn(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the point: nothing escapes into the executor
                getattr(self, health_attr).callback_error(name, exc)
                return None

        return inner

    return wrap


# -- ROS side -----------------------------------------------------------------------------------
class DiagnosticsReporter:
    """Publish ``health`` of ``node`` on ``/diagnostics`` every ``period_s`` s and, rate-limited
    to ``min_interval_s``, as soon as the level gets worse."""

    def __init__(self, node, health: NodeHealth, period_s: float = 1.0, min_interval_s: float = 0.1,
                 hardware_id: str = "neural_ae_ros", log_period_s: float = 1.0) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.node = node
        self.health = health
        self.hardware_id = hardware_id
        self.min_interval_s = float(min_interval_s)
        self.log = ThrottledLog(node.get_logger(), log_period_s)
        if health.log is None:
            health.log = self.log
        self.pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._last_publish = -1e9
        self._published_level = OK
        self._period_timer = node.create_timer(period_s, self.publish)
        self._urgent_timer = node.create_timer(min_interval_s, self._publish_if_worse)

    def _publish_if_worse(self) -> None:
        # a new problem, or a state that got worse by itself (STALE: input stopped)
        if self.health.take_worsened() or self.health.status()[0] > self._published_level:
            self.publish()

    def publish(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        now = time.monotonic()
        if now - self._last_publish < self.min_interval_s:
            return
        self._last_publish = now
        level, message, values = self.health.status()
        self._published_level = level
        status = DiagnosticStatus()
        status.level = bytes([level])
        status.name = self.node.get_fully_qualified_name()
        status.message = message
        status.hardware_id = self.hardware_id
        status.values = [KeyValue(key=k, value=v) for k, v in values]
        arr = DiagnosticArray()
        arr.header.stamp = self.node.get_clock().now().to_msg()
        arr.status = [status]
        try:
            self.pub.publish(arr)
        except Exception as exc:  # noqa: BLE001 - shutting down or overloaded: diagnostics never kill a node
            self.log.warning("diagnostics_publish", f"diagnostics publish failed: {exc}")

    def destroy(self) -> None:
        self._period_timer.cancel()
        self._urgent_timer.cancel()
