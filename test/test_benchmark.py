"""``neural-ae benchmark`` (paper 000 Table 1 protocol) on a tiny pair set: structure, repeats,
per-method detectors, oracle ceiling, clear errors for missing weights."""
import json

import numpy as np
import pytest
import torch

from neural_ae_ros.ae.networks import ExposureNet
from neural_ae_ros.ae.training import save_ae_checkpoint
from neural_ae_ros.detector.checkpoint import load_checkpoint, save_checkpoint
from neural_ae_ros.evaluation.benchmark import (PAPER_TABLE1, PAPER_TABLE1_AP, BenchmarkSettings, resolve_methods,
                                                run_benchmark, table1_markdown)

SETTINGS = BenchmarkSettings(shifts=(4.0,), repeats=3, hflip=False, oracle_step_ev=1.0)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from neural_ae_ros.scenes.generate import generate_split

    out = tmp_path_factory.mktemp("bench_pairs")
    generate_split(out, "test", 3, seed=21, width=256, height=160, progress=False)
    return out


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A histogram_nn (untrained: u ~ 1) and copies of the shipped detector as 'fine-tuned' ones."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    save_ae_checkpoint(ExposureNet("histogram_nn"), d / "histogram_nn.pt", {"note": "test"})
    det, meta = load_checkpoint(None)
    for name in ("histogram_nn", "average"):
        save_checkpoint(det, d / f"{name}_detector.pt", meta)
    return d


def test_missing_weights_are_named_with_the_command_that_makes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"semantic_nn\.pt is missing; make it with `neural-ae train --method semantic_nn"):
        resolve_methods(["semantic_nn"], tmp_path)
    with pytest.raises(FileNotFoundError, match="gradient_detector.pt is missing"):
        resolve_methods(["gradient"], tmp_path)
    logs = []
    (m,) = resolve_methods(["gradient"], tmp_path, shared_detector=True, log=logs.append)
    assert m.detector is None and "shipped default" in logs[0]


def test_benchmark_report_structure_oracle_and_resume(pairs, weights, tmp_path):
    out = tmp_path / "bench.json"
    logs = []
    r = run_benchmark(pairs, ["average", "histogram_nn", "gradient", "oracle"], SETTINGS, json_out=out,
                      cache_dir=tmp_path / "cache", weights_dir=weights, shared_detector=True, n_boot=50,
                      progress=False, log=logs.append)
    saved = json.loads(out.read_text())
    assert saved["repeats"] == 3 and saved["num_pairs"] == 3
    assert saved["detectors"]["gradient"] == "shipped default" and not saved["fair_detectors"]
    for name in ("average", "histogram_nn", "gradient", "oracle"):
        cell = saved["methods"][name]["4"]
        assert set(cell) >= {"map_mean", "map_std", "ap"}
        assert set(cell["ap"]) == {"bike", "bus_truck", "car_van", "person", "traffic_light", "traffic_sign"}
    assert "diff_to_average" in saved["methods"]["histogram_nn"]
    d = saved["methods"]["histogram_nn"]["diff_to_average"]["4"]
    assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]
    assert "gap_closed" in saved["methods"]["gradient"]
    # a rerun is served from the cache (no pair recomputed) and gives the same numbers
    logs2 = []
    r2 = run_benchmark(pairs, ["average", "histogram_nn", "gradient", "oracle"], SETTINGS,
                       cache_dir=tmp_path / "cache", weights_dir=weights, shared_detector=True, n_boot=50,
                       progress=False, log=logs2.append)
    assert any("3 pairs cached" in s for s in logs2), logs2
    assert r2["methods"]["average"]["4"] == r["methods"]["average"]["4"]
    # the README table: one block per k in the paper's layout, our mAP, the paper's beside it
    md = table1_markdown(r)
    blocks = [line for line in md.splitlines() if line.startswith("**")]
    assert [b.split("k = ")[1].rstrip("*") for b in blocks] == ["4"]
    avg_row = next(line for line in md.splitlines() if line.startswith("| AVERAGE AE"))
    assert f"{r['methods']['average']['4']['map_mean']:.1f}" in avg_row and avg_row.rstrip(" |").endswith("29.96")
    hist_row = next(line for line in md.splitlines() if line.startswith("| HISTOGRAM NN"))
    d = r["methods"]["histogram_nn"]["diff_to_average"]["4"]
    assert f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" in hist_row


def test_paper_table1_is_the_paper_table():
    # the margins issue 7 quotes (hybrid minus average: 3.1, 4.1, 6.6) and Table 2's classical rows
    assert [round(PAPER_TABLE1["hybrid_nn"][k] - PAPER_TABLE1["average"][k], 1) for k in ("1.5", "4", "10")] == [3.1, 4.1, 6.6]
    assert PAPER_TABLE1["gradient"] == {"1.5": 31.73, "4": 28.92, "10": 22.91}
    for block in PAPER_TABLE1_AP.values():  # mAP is the mean of the six classes (to the paper's rounding)
        for row in block.values():
            assert abs(sum(row[:6]) / 6 - row[6]) < 0.01


def test_repeats_draw_kappa_sides_so_the_std_is_zero_only_when_sides_agree(pairs, weights, tmp_path):
    r = run_benchmark(pairs, ["average"], BenchmarkSettings(shifts=(10.0,), repeats=4, hflip=False,
                                                            oracle_step_ev=1.0),
                      cache_dir=tmp_path / "c", weights_dir=weights, n_boot=20, progress=False, log=lambda *_: None)
    cell = r["methods"]["average"]["10"]
    assert np.isfinite(cell["map_mean"]) and cell["map_std"] >= 0


def test_shards_fill_one_cache_and_the_report_equals_an_unsharded_run(pairs, weights, tmp_path):
    methods = ["average", "histogram_nn", "oracle"]
    kw = dict(weights_dir=weights, shared_detector=True, n_boot=50, progress=False)
    whole = run_benchmark(pairs, methods, SETTINGS, cache_dir=tmp_path / "whole", log=lambda *_: None, **kw)
    logs = []
    for i in range(2):  # what two parallel processes would do, one after the other here
        assert run_benchmark(pairs, methods, SETTINGS, cache_dir=tmp_path / "sharded", shard=(i, 2),
                             log=logs.append, **kw) == {}
    assert any("shard 0/2 done (2 pairs)" in s for s in logs) and any("shard 1/2 done (1 pairs)" in s for s in logs)
    logs = []
    report = run_benchmark(pairs, methods, SETTINGS, cache_dir=tmp_path / "sharded", log=logs.append, **kw)
    assert any("3 pairs cached" in s for s in logs), logs
    for m in methods:
        assert report["methods"][m]["4"]["map_mean"] == whole["methods"][m]["4"]["map_mean"]
    assert report["detector_device"] == "cpu"


def test_device_and_shard_errors_say_what_is_wrong(pairs, weights, tmp_path):
    from neural_ae_ros.evaluation.headroom_run import in_shard

    with pytest.raises(ValueError, match="only cpu and cuda"):
        run_benchmark(pairs, ["average"], SETTINGS, cache_dir=tmp_path / "c", weights_dir=weights,
                      shared_detector=True, progress=False, log=lambda *_: None, device="mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device here"):
            run_benchmark(pairs, ["average"], SETTINGS, cache_dir=tmp_path / "c", weights_dir=weights,
                          shared_detector=True, progress=False, log=lambda *_: None, device="cuda")
    with pytest.raises(ValueError, match="needs 0 <= I < N"):
        in_shard(0, (2, 2))
    assert [i for i in range(5) if in_shard(i, (1, 2))] == [1, 3] and in_shard(7, None)
