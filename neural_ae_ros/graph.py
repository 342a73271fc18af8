"""The node graph of one AE pipeline, described once (no ROS import).

``neural-ae loop`` starts it as processes, ``launch/vehicle.launch.py`` as launch_ros Nodes.
Each node reads its defaults from ``config/``; the graph only carries what the run overrides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .ae.base import INPUT_RAW, INPUT_RGB, method_class
from .parameters import AE_METHODS


def method_needs_raw(method: str) -> bool:
    """True when the AE method's controller subscribes to the raw image as well (its ``inputs``)."""
    return INPUT_RAW in method_class(method).inputs


def method_needs_rgb(method: str) -> bool:
    """True when the AE method works on the ISP's RGB output (``image_rgb``): the graph then
    includes ``isp_node`` (attention_rl, paper 001)."""
    return INPUT_RGB in method_class(method).inputs


@dataclass(frozen=True)
class NodeLaunch:
    """One node of the graph: its module ``neural_ae_ros.ros.<executable>``, name, namespace and
    parameter overrides."""

    executable: str
    namespace: str = ""
    parameters: Dict[str, object] = field(default_factory=dict)

    @property
    def module(self) -> str:
        return f"neural_ae_ros.ros.{self.executable}"


def pipeline(method: str = "average", namespace: str = "", camera: Optional[Dict] = None,
             ae: Optional[Dict] = None, wait_for_recorder: bool = False, personalize: bool = False,
             personalization: Optional[Dict] = None) -> List[NodeLaunch]:
    """camera_bridge -> histogram_node -> ae_controller -> camera_bridge (+ isp_node -> ae_controller
    for methods that work on RGB).

    ``camera``/``ae``: parameter overrides. ``wait_for_recorder``: the camera holds its first
    frame until the pipeline and one extra ``exposure`` subscriber (a recorder) are connected.
    ``personalize``: for RGB methods (attention_rl) also ``personalization_node`` (feedback ->
    fine-tuned weights swapped into the controller), with ``personalization`` overrides.
    """
    if method not in AE_METHODS:
        raise ValueError(f"unknown AE method {method!r}; expected one of {', '.join(AE_METHODS)}")
    cam = dict(camera or {})
    if wait_for_recorder:
        # image_raw readers: histogram_node, + ae_controller (raw methods), + isp_node (RGB methods)
        cam.setdefault("wait_for_image_subscribers", 1 + method_needs_raw(method) + method_needs_rgb(method))
        cam.setdefault("wait_for_exposure_subscribers", 2)  # ae_controller + the recorder
    nodes = [
        NodeLaunch("ae_controller", namespace, {"method": method, **(ae or {})}),
        NodeLaunch("histogram_node", namespace, {}),
    ]
    if method_needs_rgb(method):
        # 2x2 binning (half resolution, ~3x faster than demosaicing): the network sees 64 x 64 anyway
        nodes.append(NodeLaunch("isp_node", namespace, {"binning": True}))
        if personalize:
            nodes.append(NodeLaunch("personalization_node", namespace, dict(personalization or {})))
    return nodes + [NodeLaunch("camera_bridge", namespace, cam)]


def ros_args(node: NodeLaunch) -> List[str]:
    """Command-line arguments (after the executable) that start ``node`` with its overrides."""
    args = ["--ros-args"]
    if node.namespace:
        args += ["-r", f"__ns:=/{node.namespace.strip('/')}"]
    for key, value in node.parameters.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        args += ["-p", f"{key}:={value}"]
    return args
