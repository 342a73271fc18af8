"""Echo node for cross-process tests: republish every message of TYPE from IN_TOPIC on OUT_TOPIC.

usage: python ros_echo.py PACKAGE.msg/TYPE IN_TOPIC OUT_TOPIC
"""
import importlib
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy

from neural_ae_ros.ros.dds import configure_middleware


def main() -> None:
    type_name, in_topic, out_topic = sys.argv[1:4]
    module_name, cls_name = type_name.split("/")
    msg_type = getattr(importlib.import_module(module_name), cls_name)
    configure_middleware()
    qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
    try:
        with rclpy.init():
            node = rclpy.create_node("ros_echo")
            pub = node.create_publisher(msg_type, out_topic, qos)
            node.create_subscription(msg_type, in_topic, pub.publish, qos)
            print("ready", flush=True)
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
