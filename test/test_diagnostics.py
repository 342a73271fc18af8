"""Health logic without ROS: throttled logs, rate shortfall, levels; then one real /diagnostics."""
import pytest

from neural_ae_ros.ros.diagnostics import ERROR, OK, STALE, WARN, NodeHealth, RateMeter, ThrottledLog, guarded


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Lines:
    def __init__(self):
        self.lines = []

    def warning(self, m):
        self.lines.append(("warning", m))

    def error(self, m):
        self.lines.append(("error", m))

    def info(self, m):
        self.lines.append(("info", m))


def test_a_cause_logs_at_most_once_per_second_and_counts_the_repeats():
    clock, out = FakeClock(), Lines()
    log = ThrottledLog(out, period_s=1.0, clock=clock)
    for _ in range(1000):  # 1000 bad commands within 0.5 s
        log.warning("nan_command", "NaN exposure")
        clock.t += 0.0005
    assert len(out.lines) == 1
    clock.t += 0.6
    log.warning("nan_command", "NaN exposure")
    assert len(out.lines) == 2
    assert "+999 more" in out.lines[1][1]
    # another cause is not held back by the first
    log.error("tiny_frame", "6x6 frame")
    assert out.lines[-1] == ("error", "6x6 frame")


def test_rate_shortfall_is_measured_against_the_expected_rate():
    clock = FakeClock()
    meter = RateMeter(expected_hz=10.0, window_s=3.0, clock=clock)
    assert meter.shortfall() is None  # nothing to say yet
    for _ in range(20):  # 3.5 fps delivered of 10 asked
        meter.tick()
        clock.t += 1 / 3.5
    assert meter.measured_hz() == pytest.approx(3.5, rel=0.15)
    assert meter.shortfall() == pytest.approx(0.65, abs=0.06)
    on_rate = RateMeter(expected_hz=10.0, clock=clock)
    for _ in range(40):
        on_rate.tick()
        clock.t += 0.1
    assert on_rate.shortfall() < 0.05


def test_health_goes_warn_on_drops_then_back_to_ok_and_stale_without_input():
    clock = FakeClock()
    health = NodeHealth(expected_rate_hz=10.0, hold_s=2.0, stale_after_s=2.0, clock=clock)
    for _ in range(30):
        health.frame_in()
        clock.t += 0.1
    assert health.status()[0] == OK
    health.dropped("frame_too_small", "image_raw: 6x6 below the 14x14 the 7x7 grid needs")
    level, message, values = health.status()
    assert level == WARN and "6x6" in message and ("dropped_frames", "1") in values
    assert health.take_worsened() and not health.take_worsened()
    for _ in range(30):  # the problem ages out while frames flow
        health.frame_in()
        clock.t += 0.1
    assert health.status()[0] == OK
    clock.t += 2.5  # upstream gone
    level, message, _ = health.status()
    assert level == STALE and "no input" in message
    # at a slow rate, a pause of a few of its intervals is not yet stale
    slow = NodeHealth(stale_after_s=1.0, clock=clock, input_name="frames on /image_raw")
    for _ in range(10):
        slow.frame_in()
        clock.t += 1.0
    assert slow.status()[0] == OK
    clock.t += 4.5
    level, message, _ = slow.status()
    assert level == STALE and "no frames on /image_raw for 5.5 s" in message


def test_rate_shortfall_is_a_warning_with_numbers():
    clock = FakeClock()
    health = NodeHealth(expected_rate_hz=10.0, clock=clock)
    for _ in range(20):
        health.frame_in()
        clock.t += 0.2
    level, message, values = health.status()
    assert level == WARN and "rate shortfall" in message and "of 10.0 Hz" in message
    assert dict(values)["rate_shortfall"].startswith("0.5")


def test_guarded_callback_reports_and_swallows_exceptions():
    class Node:
        def __init__(self):
            self.health = NodeHealth()

        @guarded()
        def _on_image(self, msg):
            raise ValueError("green plane 6x6 is too small")

    node = Node()
    assert node._on_image(object()) is None
    level, message, values = node.health.status()
    assert level == ERROR and "ValueError" in message and ("callback_errors", "1") in values
