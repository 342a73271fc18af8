"""The node graph of one AE pipeline, described once (no ROS import).

``neural-ae loop`` starts it as processes, ``launch/vehicle.launch.py`` as launch_ros Nodes.
Each node reads its defaults from ``config/``; the graph only carries what the run overrides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .ae.base import INPUT_FEATURES, INPUT_RAW, method_class
from .parameters import AE_METHODS


def method_needs_raw(method: str) -> bool:
    """True when the AE method's controller subscribes to the raw image as well (its ``inputs``)."""
    return INPUT_RAW in method_class(method).inputs


def method_needs_features(method: str) -> bool:
    """True when the AE method decides from detector features: the graph then runs the ISP and
    the detector node (with the method's own detector weights) ahead of the controller."""
    return INPUT_FEATURES in method_class(method).inputs


def method_files(method: str, network_weights: Optional[str] = None,
                 detector_checkpoint: Optional[str] = None) -> Dict[str, str]:
    """The files a learned method runs with: ``network_weights`` (default the shipped
    ``data/ae/<method>.pt``) and its detector (default: beside the weights, ``<stem>_detector.pt``,
    as ``neural-ae train`` writes them). Empty for classical methods."""
    from .ae.neural import default_weights

    if not method_class(method).loads_weights:
        return {}
    weights = Path(network_weights) if network_weights else default_weights(method)
    detector = Path(detector_checkpoint) if detector_checkpoint else weights.with_name(weights.stem + "_detector.pt")
    return {"network_weights": str(weights), "detector": str(detector)}


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
             ae: Optional[Dict] = None, wait_for_recorder: bool = False,
             network_weights: Optional[str] = None, detector_checkpoint: Optional[str] = None) -> List[NodeLaunch]:
    """camera_bridge -> histogram_node -> ae_controller -> camera_bridge; for methods that
    decide from detector features also camera_bridge -> isp_node -> detector_node -> ae_controller
    (the detector with the method's own weights and its semantic encoder, :func:`method_files`).

    ``camera``/``ae``: parameter overrides. ``wait_for_recorder``: the camera holds its first
    frame until the pipeline and one extra ``exposure`` subscriber (a recorder) are connected.
    ``network_weights``/``detector_checkpoint``: a learned method's files (default: shipped).
    """
    if method not in AE_METHODS:
        raise ValueError(f"unknown AE method {method!r}; expected one of {', '.join(AE_METHODS)}")
    cam = dict(camera or {})
    features = method_needs_features(method)
    files = method_files(method, network_weights, detector_checkpoint)
    ae_params = {"method": method, **({"network_weights": files["network_weights"]} if files else {}), **(ae or {})}
    if wait_for_recorder:
        needs_raw = method_needs_raw(method)
        cam.setdefault("wait_for_image_subscribers", 1 + int(needs_raw) + int(features))  # + isp_node
        # ae_controller + the recorder (+ isp_node and detector_node, which count frames they skip)
        cam.setdefault("wait_for_exposure_subscribers", 2 + 2 * int(features))
    nodes = [
        NodeLaunch("ae_controller", namespace, ae_params),
        NodeLaunch("histogram_node", namespace, {}),
    ]
    if features:
        nodes += [NodeLaunch("detector_node", namespace, {"checkpoint": files["detector"],
                                                          "ae_checkpoint": files["network_weights"]}),
                  NodeLaunch("isp_node", namespace, {})]
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
