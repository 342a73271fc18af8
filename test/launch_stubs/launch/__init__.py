"""Stand-in for ROS 2 ``launch`` (tests only): a description and a context."""


class LaunchDescription:
    def __init__(self, initial_entities=None):
        self.entities = list(initial_entities or [])


class LaunchContext:
    """Holds ``launch_configurations`` (argument name -> string value), as the real context."""

    def __init__(self):
        self.launch_configurations = {}
        self.environment = {}
