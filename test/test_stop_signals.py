"""Stop signals as exceptions (neural_ae_ros.stop_signals): plain code, no rclpy."""
import os
import signal

import pytest

from neural_ae_ros import stop_signals


class Stop(BaseException):
    pass


@pytest.mark.parametrize("sig,name,code", [(signal.SIGINT, "SIGINT", 130), (signal.SIGTERM, "SIGTERM", 143)])
def test_a_signal_raises_the_chosen_exception_and_is_remembered(sig, name, code):
    before = signal.getsignal(sig)
    restore = stop_signals.install(Stop)
    try:
        assert stop_signals.received() is None
        with pytest.raises(Stop) as raised:
            os.kill(os.getpid(), sig)
            for _ in range(10 ** 6):  # the handler runs at the next bytecode
                pass
        assert str(raised.value) == name and stop_signals.received() == name
        assert stop_signals.exit_code(name) == code
    finally:
        restore()
    assert signal.getsignal(sig) is before


def test_a_stop_re_wrapped_by_other_code_is_still_known_and_a_new_install_forgets_it():
    restore = stop_signals.install(Stop)
    try:
        with pytest.raises(RuntimeError):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10 ** 6):
                    pass
            except Stop:  # what pybind11 does to an exception raised inside a call from C++
                raise RuntimeError("Unable to convert call argument '0' to Python object") from None
        assert stop_signals.received() == "SIGTERM"
    finally:
        restore()
    restore = stop_signals.install(Stop)
    restore()
    assert stop_signals.received() is None
