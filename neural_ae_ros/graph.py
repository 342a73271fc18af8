"""The node graph of one AE pipeline, described once (no ROS import).

``neural-ae loop`` starts it as processes, ``launch/vehicle.launch.py`` as launch_ros Nodes.
Each node reads its defaults from ``config/``; the graph only carries what the run overrides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from .ae.base import INPUT_FEATURES, INPUT_RAW, INPUT_RGB, method_class
from .parameters import AE_METHODS, node_config_files


def method_needs_raw(method: str) -> bool:
    """True when the AE method's controller subscribes to the raw image as well (its ``inputs``)."""
    return INPUT_RAW in method_class(method).inputs


def method_needs_rgb(method: str) -> bool:
    """True when the AE method works on the ISP's RGB output (``image_rgb``): the graph then
    includes ``isp_node`` (attention_rl, paper 001)."""
    return INPUT_RGB in method_class(method).inputs


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
    #: topic remappings ``from -> to`` (relative names resolve in the node's namespace)
    remappings: Dict[str, str] = field(default_factory=dict)

    @property
    def params_files(self) -> List[str]:
        """The ``config/`` files (ros__parameters form) that hold this node's defaults."""
        return node_config_files(self.executable)

    @property
    def module(self) -> str:
        return f"neural_ae_ros.ros.{self.executable}"


def pipeline(method: str = "average", namespace: str = "", camera: Optional[Dict] = None,
             ae: Optional[Dict] = None, wait_for_recorder: bool = False,
             network_weights: Optional[str] = None, detector_checkpoint: Optional[str] = None,
             personalize: bool = False, personalization: Optional[Dict] = None) -> List[NodeLaunch]:
    """camera_bridge -> histogram_node -> ae_controller -> camera_bridge; for methods that
    decide from detector features also camera_bridge -> isp_node -> detector_node -> ae_controller
    (the detector with the method's own weights and its semantic encoder, :func:`method_files`);
    for methods that work on RGB (attention_rl) camera_bridge -> isp_node -> ae_controller.

    ``camera``/``ae``: parameter overrides. ``wait_for_recorder``: the camera holds its first
    frame until the pipeline and one extra ``exposure`` subscriber (a recorder) are connected.
    ``network_weights``/``detector_checkpoint``: a learned method's files (default: shipped).
    ``personalize``: for RGB methods also ``personalization_node`` (feedback -> fine-tuned
    weights swapped into the controller), with ``personalization`` overrides.
    """
    if method not in AE_METHODS:
        raise ValueError(f"unknown AE method {method!r}; expected one of {', '.join(AE_METHODS)}")
    cam = dict(camera or {})
    features = method_needs_features(method)
    files = method_files(method, network_weights, detector_checkpoint)
    ae_params = {"method": method, **({"network_weights": files["network_weights"]} if files else {}), **(ae or {})}
    if wait_for_recorder:
        needs_raw = method_needs_raw(method)
        rgb = method_needs_rgb(method)
        # image_raw readers: histogram_node, + ae_controller (raw methods), + isp_node (features, RGB)
        cam.setdefault("wait_for_image_subscribers", 1 + int(needs_raw) + int(features or rgb))
        # ae_controller + the recorder (+ isp_node and detector_node, which count frames they skip)
        cam.setdefault("wait_for_exposure_subscribers", 2 + int(features or rgb) + int(features))
    nodes = [
        NodeLaunch("ae_controller", namespace, ae_params),
        NodeLaunch("histogram_node", namespace, {}),
    ]
    if features:
        nodes += [NodeLaunch("detector_node", namespace, {"checkpoint": files["detector"],
                                                          "ae_checkpoint": files["network_weights"]}),
                  NodeLaunch("isp_node", namespace, {})]
    elif method_needs_rgb(method):
        # 2x2 binning (half resolution, ~3x faster than demosaicing): the network sees 64 x 64 anyway
        nodes.append(NodeLaunch("isp_node", namespace, {"binning": True}))
        if personalize:
            nodes.append(NodeLaunch("personalization_node", namespace, dict(personalization or {})))
    return nodes + [NodeLaunch("camera_bridge", namespace, cam)]


def ros_args(node: NodeLaunch, params_files: Sequence[Union[str, Path]] = ()) -> List[str]:
    """Command-line arguments (after the executable) that start ``node``: namespace, remappings,
    ``params_files`` in order, then its overrides (``-p``, which win over the files)."""
    args = ["--ros-args"]
    if node.namespace:
        args += ["-r", f"__ns:=/{node.namespace.strip('/')}"]
    for source, target in node.remappings.items():
        args += ["-r", f"{source}:={target}"]
    for path in params_files:
        args += ["--params-file", str(path)]
    for key, value in node.parameters.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        args += ["-p", f"{key}:={value}"]
    return args


# -- vehicle bring-up (launch/vehicle.launch.py and `neural-ae bringup`) --------------------------
#: Camera sources of a bring-up: a built-in drive, a scene recording, a real camera driver, or
#: our stand-in driver (started with the graph; behaves like spinnaker_camera_driver).
BRINGUP_SOURCES = ("drive", "bag", "driver", "standin_driver")
#: Defaults for a real driver (spinnaker_camera_driver as `flir_camera`, its `~/image_raw` and `~/meta`).
DRIVER_IMAGE_TOPIC = "/flir_camera/image_raw"
DRIVER_META_TOPIC = "/flir_camera/meta"
STANDIN_DRIVER = "standin_camera_driver"


def vehicle(method: str = "average", namespace: str = "", source: str = "", camera: Optional[Dict] = None,
            ae: Optional[Dict] = None, detector: Optional[Dict] = None, perception: bool = True,
            driver_image_topic: str = DRIVER_IMAGE_TOPIC, driver_meta_topic: str = DRIVER_META_TOPIC
            ) -> List[NodeLaunch]:
    """The vehicle graph: :func:`pipeline` plus (``perception``) isp_node and detector_node.

    ``source``: '' keeps config/scene_source.yaml's; 'driver' makes the camera bridge front a
    running driver (its image and metadata topics remapped from ``driver_image_topic`` and
    ``driver_meta_topic``); 'standin_driver' adds our stand-in driver to the graph and points
    the bridge at it (with its metadata type).
    """
    if source and source not in BRINGUP_SOURCES:
        raise ValueError(f"unknown camera source {source!r}; expected one of {', '.join(BRINGUP_SOURCES)}")
    cam = dict(camera or {})
    remap: Dict[str, str] = {}
    extra: List[NodeLaunch] = []
    if source in ("drive", "bag"):
        cam["source"] = source
    elif source == "driver":
        cam["source"] = "driver"
        remap = {"driver_image_raw": driver_image_topic, "driver_meta": driver_meta_topic}
    elif source == "standin_driver":
        ns = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
        cam.update(source="driver", driver_node=f"{ns}/{STANDIN_DRIVER}",
                   driver_metadata_type="neural_ae_ros/msg/DriverImageMetaData")
        remap = {"driver_image_raw": f"{STANDIN_DRIVER}/image_raw", "driver_meta": f"{STANDIN_DRIVER}/meta"}
        extra.append(NodeLaunch(STANDIN_DRIVER, namespace, {}))
    nodes = pipeline(method, namespace=namespace, camera=cam, ae=ae)
    nodes = [NodeLaunch(n.executable, n.namespace, n.parameters, remap if n.executable == "camera_bridge" else {})
             for n in nodes]
    if perception:
        nodes = with_perception(nodes, method, namespace, detector=detector)
    return extra + nodes


def perception_pipeline(method: str = "average", namespace: str = "", camera: Optional[Dict] = None,
                        ae: Optional[Dict] = None, isp: Optional[Dict] = None, detector: Optional[Dict] = None,
                        wait_for_recorder: bool = False) -> List[NodeLaunch]:
    """The exposure loop of :func:`pipeline` plus what perception sees: isp_node (raw -> rgb8)
    and detector_node (rgb8 -> detections). One side of an A/B run (``neural-ae ab-eval``).

    ``wait_for_recorder``: the camera holds its first frame until the loop, the ISP and one
    recorder listen on ``image_raw``/``exposure`` (the ISP and detector count frames on
    ``exposure`` too)."""
    cam = dict(camera or {})
    if wait_for_recorder:
        needs_raw = method_needs_raw(method)
        cam.setdefault("wait_for_image_subscribers", (2 if needs_raw else 1) + 1)  # + isp_node
        # ae_controller + isp_node + detector_node + the recorder
        cam.setdefault("wait_for_exposure_subscribers", 4)
    return with_perception(pipeline(method, namespace, cam, ae), method, namespace, isp=isp, detector=detector)


def method_detector(method: str) -> Optional[str]:
    """The detector a method's perception runs with (paper 000 Table 2: each method its own):
    a learned method's (beside its weights), a classical method's fine-tuned
    ``data/ae/<method>_detector.pt`` when shipped; None: the detector node's default."""
    files = method_files(method)
    if files:
        return files["detector"]
    from .ae.neural import default_weights

    own = default_weights(method).with_name(f"{method}_detector.pt")
    return str(own) if own.is_file() else None


def with_perception(nodes: List[NodeLaunch], method: str, namespace: str, isp: Optional[Dict] = None,
                    detector: Optional[Dict] = None) -> List[NodeLaunch]:
    """``nodes`` (a :func:`pipeline`) plus what perception sees, once: one full-resolution
    isp_node (it also serves an RGB method, so no second, binned one) and one detector_node
    with the method's own detector (a features method's detector node, with its semantic
    encoder, is that one); ``isp``/``detector``: overrides."""
    det_params: Dict[str, object] = {}
    own = method_detector(method)
    if own:
        det_params["checkpoint"] = own
    for n in nodes:
        if n.executable == "detector_node":
            det_params.update(n.parameters)
    det_params.update(detector or {})
    kept = [n for n in nodes if n.executable not in ("isp_node", "detector_node")]
    return kept + [NodeLaunch("isp_node", namespace, dict(isp or {})),
                   NodeLaunch("detector_node", namespace, det_params)]
