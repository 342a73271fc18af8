"""`neural-ae detector-eval` end to end on a small generated test split with the shipped model:
the JSON holds mAP and AP per class for every exposure factor, and exposure matters to it."""
import json

from neural_ae_ros.cli.main import main
from neural_ae_ros.detector.checkpoint import DEFAULT_CHECKPOINT
from neural_ae_ros.classes import CLASS_NAMES


def test_detector_eval_command_with_the_shipped_checkpoint(tmp_path, capsys):
    assert DEFAULT_CHECKPOINT.is_file(), f"{DEFAULT_CHECKPOINT}: the shipped checkpoint is missing"
    scenes = tmp_path / "test_split"
    assert main(["scenes", "--split", "test", "--count", "6", "--seed", "11", "--out", str(scenes),
                 "--width", "320", "--height", "192", "--single", "--quiet", "--contact-sheet", "none"]) == 0
    out = tmp_path / "eval.json"
    assert main(["detector-eval", "--scenes", str(scenes), "--exposure-factors", "0.1", "1", "10",
                 "--json", str(out), "--no-progress", "--threads", "1"]) == 0
    report = json.loads(out.read_text())
    assert report["num_scenes"] == 6 and report["num_images_per_factor"] == 12  # with flips
    assert set(report["map"]) == set(report["ap"]) == {"0.1", "1", "10"}
    for factor, ap in report["ap"].items():
        assert set(ap) == set(CLASS_NAMES)
        assert 0.0 <= report["map"][factor] <= 1.0
    assert "mAP" in capsys.readouterr().out
