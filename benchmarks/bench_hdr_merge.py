#!/usr/bin/env python3
"""Eq. 7 bracket merge at 1920x1200 (paper 000, N brackets): time and peak memory per frame.

    python benchmarks/bench_hdr_merge.py [--brackets 2 3 5] [--repeats 3] [--height 1200 --width 1920]

For each N, N brackets of a real HDR panorama (blender-data ``city``, resized to the frame size,
1 stop ... 2 (N-1) stops apart) are written as 16-bit PNG files holding 12-bit linear code
values (black 64, white 4095) with a manifest, then merged frame by frame as ``record-scene
--brackets`` does (:class:`neural_ae_ros.scenes.user_data.BracketSet`: decode, linearise, Eq. 7,
linearity check). Printed per N: wall time per frame (median and min over the repeats), the
part spent in decoding + linearising vs merging, and peak memory: ``tracemalloc`` peak of the
merge (every numpy and OpenCV array) and the process's resident peak growth (VmHWM after
resetting it through ``/proc/self/clear_refs``).

Goal (issue 10): at most 1 s and 1 GB per 1920x1200 frame.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from neural_ae_ros.imaging.hdr_io import load_exr  # noqa: E402
from neural_ae_ros.scenes import user_data as ud  # noqa: E402

BLACK, WHITE = 64, 4095
PANORAMA = Path(__file__).resolve().parent.parent / "neural_ae_ros" / "data" / "panoramas" / "city.exr"


def scene(h: int, w: int) -> np.ndarray:
    """(3, H, W) radiance in full scale per second: the panorama resized, mean at 0.2."""
    import cv2

    pano = np.maximum(load_exr(PANORAMA), 0.0)
    rgb = cv2.resize(np.moveaxis(pano, 0, -1), (w, h), interpolation=cv2.INTER_LINEAR)
    rgb *= 0.2 / float(rgb.mean())
    return np.moveaxis(rgb, -1, 0)


def write_set(folder: Path, rad: np.ndarray, n: int) -> list:
    import cv2

    times = [0.25 ** i for i in range(n)] if n > 2 else [1.0, 1.0 / 16]
    brs = []
    for i, t in enumerate(times):
        code = np.round(BLACK + np.clip(rad * t, 0, 1) * (WHITE - BLACK)).astype(np.uint16)
        name = f"f0_{i}.png"
        cv2.imwrite(str(folder / name), np.ascontiguousarray(np.moveaxis(code, 0, -1)[..., ::-1]),
                    [cv2.IMWRITE_PNG_COMPRESSION, 1])
        brs.append({"file": name, "exposure_time_s": t, "analog_gain": 1.0})
    (folder / "brackets.json").write_text(json.dumps({
        "format": ud.BRACKET_FORMAT, "response": "linear", "black_level": BLACK, "white_level": WHITE, "fps": 30,
        "radiance_scale": 32500.0, "frames": [{"name": "f0", "brackets": brs}]}))
    return times


def vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(folder: Path, repeats: int) -> dict:
    spec = ud.read_bracket_manifest(folder, warn=lambda m: None)
    ud.BracketSet(spec).merge(0)  # warm-up: lazy imports, thread pool, first-touch of the allocator
    walls, cpus, decodes, peaks, rss = [], [], [], [], []
    for _ in range(repeats):
        bs = ud.BracketSet(spec)
        # decode + linearise alone (what the merge adds to reading the files)
        c0 = time.process_time()
        for b in spec.frames[0].brackets:
            spec.response.linearise(ud.read_code_values(b.path, False))
        decodes.append(time.process_time() - c0)
        base_rss = vm_hwm_kb() if reset_hwm() else None
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        merged = bs.merge(0)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        if base_rss is not None:
            rss.append((vm_hwm_kb() - base_rss) * 1024)
        del merged
    return dict(wall_s=walls, cpu_s=cpus, decode_linearise_cpu_s=decodes, traced_peak_bytes=peaks, rss_growth_bytes=rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brackets", type=int, nargs="+", default=[2, 3, 5])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--width", type=int, default=1920)
    args = ap.parse_args()
    rad = scene(args.height, args.width)
    load = os.getloadavg()
    print(f"Eq. 7 merge of {args.width}x{args.height} frames from 16-bit PNG brackets (decode + linearise + merge + "
          f"linearity check), {args.repeats} repeats; load average {load[0]:.1f} on {os.cpu_count()} cores")
    ok = True
    for n in args.brackets:
        with tempfile.TemporaryDirectory(prefix="bench_hdr_merge_") as d:
            write_set(Path(d), rad, n)
            r = measure(Path(d), args.repeats)
        wall = statistics.median(r["wall_s"])
        cpu = statistics.median(r["cpu_s"])
        dec = statistics.median(r["decode_linearise_cpu_s"])
        peak = max(r["traced_peak_bytes"]) / 2**20
        rss = (f"{max(r['rss_growth_bytes']) / 2**20:.0f} MiB" if r["rss_growth_bytes"] else "n/a")
        met = wall <= 1.0 and peak <= 1024
        ok &= met
        print(f"  N={n}: wall {wall * 1e3:.0f} ms per frame (median; min {min(r['wall_s']) * 1e3:.0f} ms), CPU "
              f"{cpu * 1e3:.0f} ms (all threads; decode + linearise alone {dec * 1e3:.0f} ms CPU); peak memory "
              f"{peak:.0f} MiB traced (numpy/OpenCV arrays), resident peak growth {rss}  "
              f"[{'meets' if met else 'MISSES'} <= 1 s wall, <= 1 GB]")
    print(f"  process resident peak (imports included): {vm_hwm_kb() / 1024:.0f} MiB; load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  goal (<= 1 s wall and <= 1 GB per frame) {'met' if ok else 'NOT met'} for every N in this run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
