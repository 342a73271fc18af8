"""Topic names (relative, so a namespace separates pipelines A and B) and QoS, in one place."""
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

IMAGE_RAW = "image_raw"              # sensor_msgs/Image, bayer_rggb16 (12-bit data)
APPLIED_EXPOSURE = "exposure"        # neural_ae_ros/AppliedExposure, same stamp as image_raw
EXPOSURE_COMMAND = "exposure_command"  # neural_ae_ros/ExposureCommand
HISTOGRAMS = "histograms"            # neural_ae_ros/HistogramStack
IMAGE_RGB = "image_rgb"              # sensor_msgs/Image, rgb8
DETECTIONS = "detections"            # vision_msgs/Detection2DArray
FEATURES = "features"                # detector stage-2 features (semantic AE branch)
SEMANTIC_FEATURES = "semantic_features"  # neural_ae_ros/SemanticFeatures: pooled conv2 (~18 KB/frame)
DIAGNOSTICS = "/diagnostics"         # diagnostic_msgs/DiagnosticArray: absolute, what aggregators read
CAMERA_EXPOSURE_INFO = "camera_exposure_info"  # neural_ae_ros/CameraExposureInfo, latched
SCENE_BOXES = "scene_boxes"          # vision_msgs/Detection2DArray, ground truth of the source

#: Images: reliable over shared memory loses nothing at 30-60 fps (README, "Transport");
#: a short queue keeps latency bounded when a consumer is slow.
IMAGE_QOS = QoSProfile(depth=3, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
#: Small per-frame records (exposure, histograms, commands): reliable, deeper queue.
RECORD_QOS = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                        durability=DurabilityPolicy.VOLATILE)
#: What the camera announces once per session (limits, levels, latency): latched, so a node that
#: starts later still gets it.
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)

# -- personalisation (paper 001): feedback in, fine-tuned weights out, maps on request ----------
EXPOSURE_FEEDBACK = "exposure_feedback"                # neural_ae_ros/ExposureFeedback
FEEDBACK_RESULT = "exposure_feedback_result"           # neural_ae_ros/FeedbackResult (accepted / refused + reason)
ATTENTION_RL_WEIGHTS = "attention_rl_weights"          # neural_ae_ros/AttentionWeights, latched: load these
ATTENTION_RL_WEIGHTS_ACTIVE = "attention_rl_weights_active"  # same type, latched: what the controller runs
EXPOSURE_MAPS_REQUEST = "exposure_maps_request"        # neural_ae_ros/ExposureMapsRequest
ATTENTION_MAP = "attention_map"                        # sensor_msgs/Image 32FC1, AM in (0, 1)
EXPOSURE_MAP = "exposure_map"                          # sensor_msgs/Image 32FC1, EM in [-1, 1]
