"""The learned AE methods in the running graph, across processes with real rclpy: the
ae_controller with hybrid_nn runs in the camera loop, survives a NaN (and a foreign) semantic
feature message with a logged fallback, refuses a missing weights file in one line, and
`neural-ae loop --method hybrid_nn` runs ISP + detector + controller end to end.

Every test makes its own small checkpoint in tmp_path (no shipped AE weights needed)."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray

from neural_ae_ros.ae.networks import ExposureNet
from neural_ae_ros.ae.neural import POOLED_SIZE
from neural_ae_ros.ae.training import save_ae_checkpoint
from neural_ae_ros.config import DATA_DIR
from neural_ae_ros.msg import AppliedExposure, ExposureCommand, SemanticFeatures
from neural_ae_ros.ros import topics
from neural_ae_ros.weights import file_sha256
from ros_procs import spin_until, start_node, stop_nodes, wait_for_log


def _checkpoint(tmp_path, method="hybrid_nn"):
    torch.manual_seed(0)
    net = ExposureNet(method)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return save_ae_checkpoint(net.eval(), tmp_path / f"{method}.pt", {"note": "test checkpoint"})


@pytest.fixture()
def hybrid_loop(tmp_path):
    ckpt = _checkpoint(tmp_path)
    ns = "/nnae"
    procs = [start_node("ae_controller", {"method": "hybrid_nn", "network_weights": str(ckpt),
                                          "features_timeout_s": 2.0},  # the test process is slow under load
                         tmp_path / "ae.log", ns),
             start_node("histogram_node", {}, tmp_path / "hist.log", ns),
             start_node("camera_bridge", {"drive": "step_test", "width": 64, "height": 64, "frame_rate_hz": 10.0},
                        tmp_path / "camera.log", ns)]
    rclpy.init()
    node = rclpy.create_node("neural_ae_test", namespace=ns)
    yield node, procs, ckpt, tmp_path
    node.destroy_node()
    rclpy.shutdown()
    stop_nodes(procs)


def test_hybrid_controller_runs_in_the_loop_and_survives_nan_features(hybrid_loop):
    node, procs, ckpt, tmp = hybrid_loop
    sha = file_sha256(ckpt)
    applied, commands, statuses = [], [], []
    node.create_subscription(AppliedExposure, topics.APPLIED_EXPOSURE, applied.append, topics.RECORD_QOS)
    node.create_subscription(ExposureCommand, topics.EXPOSURE_COMMAND, commands.append, topics.RECORD_QOS)
    node.create_subscription(DiagnosticArray, topics.DIAGNOSTICS,
                             lambda m: statuses.extend(s for s in m.status if "ae_controller" in s.name), 50)
    pub = node.create_publisher(SemanticFeatures, topics.SEMANTIC_FEATURES, topics.RECORD_QOS)
    # the test plays the detector node: a pooled vector per camera frame, same stamp
    plan = {"good": np.abs(np.random.default_rng(0).normal(size=POOLED_SIZE)).astype(np.float32)}
    bad = plan["good"].copy()
    bad[7] = np.nan
    sent = {}

    def send(kind, msg):
        f = SemanticFeatures(method="hybrid_nn", ae_weights_sha256=sha if kind != "foreign" else "0" * 64,
                             input_width=640, input_height=384)
        f.header = msg.header
        f.data = (bad if kind == "nan" else plan["good"]).tolist()
        pub.publish(f)
        sent[msg.frame_index] = kind

    assert spin_until(node, lambda: pub.get_subscription_count() >= 1 and len(commands) >= 3, timeout=240), \
        (tmp / "ae.log").read_text()[-2000:]  # start-up: imports alone took 30 s at load average 15
    # frames decided so far had no features: the histogram-branch fallback, said on /diagnostics
    assert spin_until(node, lambda: any(kv.key == "decision_inputs" and "histogram branch only" in kv.value
                                        for s in statuses for kv in s.values), timeout=30)
    kinds = ["good"] * 3 + ["nan"] + ["good"] * 3 + ["foreign"] + ["good"] * 3
    seen = len(applied)
    for kind in kinds:
        assert spin_until(node, lambda: len(applied) > seen, timeout=30)
        seen = len(applied)
        send(kind, applied[-1])
    n_commands = len(commands)
    assert spin_until(node, lambda: len(commands) >= n_commands + 5, timeout=60), "controller stopped commanding"
    assert procs[0][0].poll() is None, "ae_controller died: " + (tmp / "ae.log").read_text()[-2000:]
    log = tmp / "ae.log"
    assert wait_for_log(log, "/nnae/semantic_features stamp", node), log.read_text()[-2000:]
    assert wait_for_log(log, "features hold 1 NaN/inf values", node), log.read_text()[-2000:]
    assert wait_for_log(log, "detector node ae_checkpoint and network_weights differ", node), log.read_text()[-2000:]
    # frames with good features were decided from both branches: fewer fallbacks than decisions
    def counts(s):
        v = {kv.key: kv.value for kv in s.values}
        return int(v.get("decisions_without_features", -1)), int(v.get("frames_out", -1))

    assert spin_until(node, lambda: any(0 <= counts(s)[0] < counts(s)[1] for s in statuses), timeout=30), \
        [counts(s) for s in statuses[-5:]]


def test_missing_weights_refuse_the_start_in_one_line(tmp_path):
    missing = tmp_path / "semantic_nn.pt"
    proc, log = start_node("ae_controller", {"method": "semantic_nn", "network_weights": str(missing)},
                           tmp_path / "ae.log", "/nnmiss")
    try:
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "ae.log").read_text()
    fatal = [ln for ln in text.splitlines() if "cannot start" in ln]
    assert len(fatal) == 1, text
    assert str(missing) in fatal[0] and "neural-ae train --method semantic_nn" in fatal[0], fatal[0]
    assert "Traceback" not in text


def test_neural_ae_loop_runs_hybrid_nn_with_isp_and_detector(tmp_path):
    ckpt = _checkpoint(tmp_path)
    for suffix in (".pt", ".json"):  # the method's own detector beside its weights, as training writes it
        shutil.copy(DATA_DIR / "detector" / f"default{suffix}", tmp_path / f"hybrid_nn_detector{suffix}")
    out = tmp_path / "loop.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "neural_ae_ros.cli.main", "loop", "--method", "hybrid_nn", "--network-weights",
           str(ckpt), "--frames", "20", "--fps", "3", "--width", "320", "--height", "192", "--drive", "step_test",
           "--features-timeout-s", "5",  # wait for the detector even on a loaded machine
           "--json", str(out), "--log-dir", str(tmp_path / "logs"), "--timeout-s", "400"]
    t0 = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=480)
    logs = "".join(f"\n--- {p.name}\n" + p.read_text()[-1500:] for p in sorted((tmp_path / "logs").glob("*.log")))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:] + logs
    r = json.loads(out.read_text())
    assert r["method"] == "hybrid_nn" and r["frames_published"] >= 12, r.get("incomplete")
    assert r["commands_received"] >= 5
    assert r["method_files"]["detector"].endswith("hybrid_nn_detector.pt")
    # the detector node published pooled vectors for the controller: small on the wire
    sem = r.get("semantic_features")
    assert sem and sem["messages"] >= 1, logs
    assert sem["serialized_bytes_per_frame"] < 1_000_000
    assert sem["serialized_bytes_per_frame"] >= 4 * POOLED_SIZE
    assert (tmp_path / "logs" / "detector_node.log").is_file() and (tmp_path / "logs" / "isp_node.log").is_file()
    # and the controller decided from them (frames the detector skipped fall back, and say so)
    diag = r["ae_controller_diagnostics"]
    assert int(diag["decisions_without_features"]) < int(diag["frames_out"]), (diag, logs)
    print(f"loop hybrid_nn: {time.monotonic() - t0:.0f} s, semantic {sem}")


def test_neural_ae_loop_missing_detector_is_one_line_with_the_train_command(tmp_path):
    ckpt = _checkpoint(tmp_path)
    res = subprocess.run([sys.executable, "-m", "neural_ae_ros.cli.main", "loop", "--method", "hybrid_nn",
                          "--network-weights", str(ckpt), "--frames", "3"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode != 0
    assert "hybrid_nn_detector.pt is missing" in res.stderr + res.stdout
    assert "neural-ae train --method hybrid_nn" in res.stderr + res.stdout
