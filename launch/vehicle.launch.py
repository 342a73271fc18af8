"""ros2 launch neural_ae_ros vehicle.launch.py [method:=average] [namespace:=ae] ...

One AE pipeline: camera_bridge -> histogram_node -> ae_controller -> camera_bridge, built from
the same graph description as `neural-ae loop` (neural_ae_ros/graph.py); every node reads its
defaults from the package's config/ YAML files, the launch arguments below override them.
The shared-memory Fast DDS profile is selected unless FASTDDS_DEFAULT_PROFILES_FILE is set.

For a real camera, run its driver instead of camera_bridge and remap its image topic to
image_raw (bayer_rggb16) and its exposure parameters to our exposure_command.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from neural_ae_ros.graph import pipeline
from neural_ae_ros.parameters import AE_METHODS
from neural_ae_ros.ros.dds import shm_profile_path

ARGUMENTS = (
    ("method", "average", "AE method", AE_METHODS),
    ("namespace", "", "namespace of the pipeline (A/B runs use two)", None),
    ("actuation_latency_frames", "", "camera actuation latency 0-5 (empty: config/camera.yaml)", None),
    ("drive", "", "built-in drive (empty: config/scene_source.yaml)", None),
    ("source", "", "'drive' or 'bag' (empty: config/scene_source.yaml)", None),
    ("bag_path", "", "scene recording for source:=bag", None),
    ("personalize", "false", "attention_rl: also start personalization_node (feedback -> fine-tuned weights)",
     ("true", "false")),
)


def _nodes(context):
    value = {name: LaunchConfiguration(name).perform(context) for name, *_ in ARGUMENTS}
    camera = {}
    if value["actuation_latency_frames"]:
        camera["actuation_latency_frames"] = int(value["actuation_latency_frames"])
    for key in ("drive", "source", "bag_path"):
        if value[key]:
            camera[key] = value[key]
    return [Node(package="neural_ae_ros", executable=n.executable, namespace=n.namespace or None,
                 parameters=[n.parameters] if n.parameters else [], output="screen", emulate_tty=True)
            for n in pipeline(value["method"], namespace=value["namespace"], camera=camera,
                              personalize=value["personalize"] == "true")]


def generate_launch_description():
    actions = [DeclareLaunchArgument(name, default_value=default, description=desc,
                                     **({"choices": list(choices)} if choices else {}))
               for name, default, desc, choices in ARGUMENTS]
    if "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ:
        actions.append(SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", str(shm_profile_path())))
    actions.append(SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                                          os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")))
    actions.append(OpaqueFunction(function=_nodes))
    return LaunchDescription(actions)
