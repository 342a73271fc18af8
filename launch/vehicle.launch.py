"""ros2 launch neural_ae_ros vehicle.launch.py [method:=average] [source:=drive|bag|driver|standin_driver] ...

The vehicle graph: camera_bridge -> histogram_node -> ae_controller -> camera_bridge, plus
isp_node -> detector_node (``perception:=false`` leaves them out), built from the same
description as ``neural-ae bringup`` (neural_ae_ros/graph.py ``vehicle``). Every node gets the
package's ``ros__parameters`` files for its concerns (config/*.yaml, installed to
share/neural_ae_ros/config), then ``params_file:=`` (a user's file in the same standard form),
then the overrides of the arguments below.

source:=driver fronts a running camera driver (default names: spinnaker_camera_driver as
/flir_camera): the bridge reads ``driver_image_topic`` (and ``driver_meta_topic`` for the
applied settings) and sets exposure through ``driver_node``'s parameters (config/camera_driver.yaml
has the names and units). source:=standin_driver starts our stand-in driver with the graph.
The shared-memory Fast DDS profile is used unless ``dds_profile:=`` names another or
FASTDDS_DEFAULT_PROFILES_FILE is already set.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from neural_ae_ros.config import config_path
from neural_ae_ros.graph import BRINGUP_SOURCES, DRIVER_IMAGE_TOPIC, DRIVER_META_TOPIC, vehicle
from neural_ae_ros.parameters import AE_METHODS
from neural_ae_ros.ros.dds import shm_profile_path

ARGUMENTS = (
    ("method", "average", "AE method", AE_METHODS),
    ("namespace", "", "namespace of the graph (A/B runs use two)", None),
    ("source", "", "camera source; empty: config/scene_source.yaml", ("",) + BRINGUP_SOURCES),
    ("drive", "", "built-in drive for source:=drive (empty: config/scene_source.yaml)", None),
    ("bag_path", "", "scene recording for source:=bag", None),
    ("actuation_latency_frames", "", "camera actuation latency 0-5 (empty: config/camera.yaml)", None),
    ("driver_node", "", "driver node for source:=driver (empty: config/camera_driver.yaml)", None),
    ("driver_image_topic", DRIVER_IMAGE_TOPIC, "the driver's raw image topic (source:=driver)", None),
    ("driver_meta_topic", DRIVER_META_TOPIC, "the driver's metadata topic (source:=driver)", None),
    ("detector_checkpoint", "", "detector model (.pt with its .json; empty: config/detector.yaml)", None),
    ("perception", "true", "start isp_node and detector_node", ("true", "false")),
    ("params_file", "", "a ros__parameters YAML file applied after the package's", None),
    ("dds_profile", "", "Fast DDS profile XML (empty: the package's shared-memory profile)", None),
)


def _nodes(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    camera = {}
    if value["actuation_latency_frames"]:
        camera["actuation_latency_frames"] = int(value["actuation_latency_frames"])
    for key in ("drive", "bag_path", "driver_node"):
        if value[key]:
            camera[key] = value[key]
    detector = {"checkpoint": value["detector_checkpoint"]} if value["detector_checkpoint"] else {}
    graph = vehicle(value["method"], namespace=value["namespace"], source=value["source"], camera=camera,
                    detector=detector, perception=value["perception"] == "true",
                    driver_image_topic=value["driver_image_topic"], driver_meta_topic=value["driver_meta_topic"])
    user = [value["params_file"]] if value["params_file"] else []
    return [Node(package="neural_ae_ros", executable=n.executable, namespace=n.namespace or None,
                 parameters=[str(config_path(f)) for f in n.params_files] + user
                 + ([n.parameters] if n.parameters else []),
                 remappings=list(n.remappings.items()), output="screen", emulate_tty=True)
            for n in graph]


def _middleware(context):
    profile = LaunchConfiguration("dds_profile").perform(context)
    actions = []
    if profile:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile))
    elif "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", str(shm_profile_path())))
    actions.append(SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                                          os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")))
    return actions  # launch runs them at once, before the next action starts the nodes


def generate_launch_description():
    actions = [DeclareLaunchArgument(name, default_value=default, description=desc,
                                     **({"choices": list(choices)} if choices else {}))
               for name, default, desc, choices in ARGUMENTS]
    actions.append(OpaqueFunction(function=_middleware))
    actions.append(OpaqueFunction(function=_nodes))
    return LaunchDescription(actions)
