"""Stand-ins for the ``launch.actions`` a launch file of this package uses (tests only)."""


class DeclareLaunchArgument:
    def __init__(self, name, *, default_value=None, description=None, choices=None):
        if choices is not None and default_value is not None and default_value not in choices:
            raise ValueError(f"argument {name!r}: default {default_value!r} not in choices {choices}")
        self.name, self.default_value, self.description, self.choices = name, default_value, description, choices

    def execute(self, context):
        value = context.launch_configurations.get(self.name, self.default_value)
        if value is None:
            raise RuntimeError(f"required launch argument {self.name!r} not given")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"argument {self.name!r}: {value!r} not in {self.choices}")
        context.launch_configurations[self.name] = value
        return None


class SetEnvironmentVariable:
    def __init__(self, name, value):
        self.name, self.value = name, value

    def execute(self, context):
        context.environment[self.name] = self.value
        return None


class OpaqueFunction:
    def __init__(self, *, function, args=None, kwargs=None):
        self.function, self.args, self.kwargs = function, list(args or []), dict(kwargs or {})

    def execute(self, context):
        return self.function(context, *self.args, **self.kwargs)
