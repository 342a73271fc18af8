"""Stand-in for ``launch_ros.actions.Node`` (tests only): records its arguments."""

_EXECUTE_PROCESS_KWARGS = {"output", "emulate_tty", "respawn", "respawn_delay", "sigterm_timeout", "sigkill_timeout",
                           "additional_env", "cwd", "prefix", "log_cmd", "on_exit"}


class Node:
    def __init__(self, *, executable, package=None, name=None, namespace=None, exec_name=None, parameters=None,
                 remappings=None, ros_arguments=None, arguments=None, **kwargs):
        unknown = set(kwargs) - _EXECUTE_PROCESS_KWARGS
        if unknown:
            raise TypeError(f"Node() got unexpected keyword arguments {sorted(unknown)}")
        self.executable, self.package, self.name, self.namespace = executable, package, name, namespace
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.kwargs = kwargs
