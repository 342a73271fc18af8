"""Declare a node's parameters from :mod:`neural_ae_ros.parameters`, once, with descriptors.

Numbers get ``FloatingPointRange``/``IntegerRange`` descriptors (rqt_reconfigure shows sliders,
``ros2 param set`` is refused outside them); every set also runs :func:`validate` in an on-set
callback that returns the reason for a refusal (pattern of ros2/demos
``set_parameters_callback.py``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Optional

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter

from ..parameters import NODE_PARAMETERS, ParamSpec, node_defaults, validate

_ROS_TYPES = {
    float: ParameterType.PARAMETER_DOUBLE,
    int: ParameterType.PARAMETER_INTEGER,
    bool: ParameterType.PARAMETER_BOOL,
    str: ParameterType.PARAMETER_STRING,
}


_TYPE_NAMES = {float: "a double", int: "an integer", bool: "a bool", str: "a string"}


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    desc = ParameterDescriptor(
        name=spec.name,
        type=_ROS_TYPES[spec.type],
        description=spec.description,
        read_only=spec.read_only,
    )
    if spec.choices:
        desc.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.type is float and spec.low is not None and spec.high is not None:
        desc.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    if spec.type is int and spec.low is not None and spec.high is not None:
        desc.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
    return desc


class DeclaredParameters:
    """The declared parameters of one node, their current values, and change notification.

    ``on_change(name, value)`` is called after a set was accepted.
    """

    def __init__(self, node: Node, node_kind: str,
                 on_change: Optional[Callable[[str, Any], None]] = None,
                 extra_validator: Optional[Callable[[str, Any], Optional[str]]] = None) -> None:
        self._node = node
        self._extra_validator = extra_validator
        self._specs: Dict[str, ParamSpec] = {s.name: s for s in NODE_PARAMETERS[node_kind]}
        self._on_change = on_change
        defaults = node_defaults(node_kind)
        for spec in self._specs.values():
            node.declare_parameter(spec.name, defaults[spec.name], _descriptor(spec))
        self.values: Dict[str, Any] = {}
        for spec in self._specs.values():
            value = node.get_parameter(spec.name).value
            reason = validate(spec, value)
            if reason:
                raise ValueError(f"{node.get_name()}: start-up parameter refused: {reason}")
            self.values[spec.name] = value
        node.add_on_set_parameters_callback(self._validate_set)
        node.add_post_set_parameters_callback(self._after_set)
        self._name_wrong_types(node)

    def _name_wrong_types(self, node: Node) -> None:
        """rclpy refuses a value of another type before any on-set callback runs, with the
        reason "Wrong parameter type, expected '3' got '4'" (enum numbers). Reword that reason
        with the type names and the value; everything else of rclpy's check stays."""
        check = node._apply_descriptor

        def apply_descriptor(parameter, descriptor=None, check_read_only=True):
            result = check(parameter, descriptor, check_read_only)
            if not result.successful and result.reason.startswith("Wrong parameter type"):
                spec = self._specs.get(parameter.name)
                expected = _TYPE_NAMES.get(spec.type, spec.type.__name__) if spec else "its declared type"
                given = parameter.type_.name.lower().replace("_", " ")
                result.reason = (f"{parameter.name} must be {expected}, got {given} {parameter.value!r}; "
                                 "value refused")
                self._node.get_logger().warning(f"parameter refused: {result.reason}")
            return result

        node._apply_descriptor = apply_descriptor

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def _validate_set(self, parameters: Iterable[Parameter]) -> SetParametersResult:
        for p in parameters:
            spec = self._specs.get(p.name)
            if spec is None:
                continue  # e.g. use_sim_time
            if spec.read_only:
                reason = f"{p.name} is read-only (set it at start-up)"
            else:
                reason = validate(spec, p.value)
            if not reason and self._extra_validator is not None:
                reason = self._extra_validator(p.name, p.value)
            if reason:
                self._node.get_logger().warning(f"parameter refused: {reason}")
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _after_set(self, parameters: Iterable[Parameter]) -> None:
        for p in parameters:
            if p.name in self._specs:
                self.values[p.name] = p.value
                self._node.get_logger().info(f"parameter {p.name} = {p.value!r}")
                if self._on_change:
                    self._on_change(p.name, p.value)
