"""config/*.yaml are standard ROS 2 parameter files: rcl's own YAML parser (what ``--params-file``
and launch use) reads them and gives every node exactly the defaults the package's loader
(neural_ae_ros/config.py) reads, in any namespace."""
from __future__ import annotations

import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node

from neural_ae_ros.config import config_path, load_node_parameters, ros_parameters
from neural_ae_ros.parameters import NODE_PARAMETERS, node_config_files, node_defaults


def _ros_values(node_name: str, files, namespace=None, extra_args=()):
    """Parameters rcl gives a real node named ``node_name`` started with these files."""
    args = ["--ros-args"]
    for f in files:
        args += ["--params-file", str(f)]
    args += list(extra_args)
    context = Context()
    rclpy.init(args=args, context=context)
    try:
        node = Node(node_name, namespace=namespace, context=context,
                    automatically_declare_parameters_from_overrides=True)
        try:
            return {name: p.value for name, p in node._parameters.items()}
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize("node_name", sorted(NODE_PARAMETERS))
@pytest.mark.parametrize("namespace", [None, "/vehicle/front"])
def test_rcl_reads_the_shipped_files_as_our_loader_does(node_name, namespace):
    files = [config_path(f) for f in node_config_files(node_name)]
    assert files, f"{node_name} reads no config file"
    ros = _ros_values(node_name, files, namespace)
    ours = node_defaults(node_name)
    from_files = {s.name for s in NODE_PARAMETERS[node_name] if s.config is not None}
    for name in from_files:
        assert name in ros, f"rcl gave {namespace or ''}/{node_name} no '{name}' from {files}"
        assert ros[name] == ours[name] and type(ros[name]) is type(ours[name]), (name, ros[name], ours[name])


def test_a_later_file_and_p_override_the_shipped_defaults_like_rcl(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("ae_controller:\n  ros__parameters:\n    ema_mu: 0.5\n"
                    "/**:\n  ros__parameters:\n    deadband_ev: 0.2\n")
    ros = _ros_values("ae_controller", [config_path("ae.yaml"), user], extra_args=["-p", "max_adjustment:=4.0"])
    assert ros["ema_mu"] == 0.5 and ros["deadband_ev"] == 0.2 and ros["max_adjustment"] == 4.0
    # our reader merges a file's entries the same way (the node's own entry over /**)
    from neural_ae_ros.config import load_yaml

    assert ros_parameters(load_yaml(user), "ae_controller") == {"ema_mu": 0.5, "deadband_ev": 0.2}


def test_a_file_without_the_node_or_ros_parameters_is_refused_naming_it(tmp_path):
    (tmp_path / "ae.yaml").write_text("ae:\n  method: average\n")  # the old, non-ROS layout
    with pytest.raises(KeyError, match=r"ae\.yaml: no entry for node 'ae_controller'"):
        load_node_parameters("ae.yaml", "ae_controller", tmp_path)
    (tmp_path / "ae.yaml").write_text("/**/ae_controller:\n  method: average\n")
    with pytest.raises(ValueError, match=r"ae\.yaml: entry '/\*\*/ae_controller' has no 'ros__parameters'"):
        load_node_parameters("ae.yaml", "ae_controller", tmp_path)
