"""``neural-ae`` sub-commands for scene data: ``scenes``, ``record-scene``, ``hdr-merge``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _positive_int(v):
    i = int(v)
    if i <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return i


def _nonneg_int(v):
    i = int(v)
    if i < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return i


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "scenes", help="generate annotated HDR scenes (radiance in e-/s, boxes, index.json)",
        description="Generate a split of annotated HDR scenes: per scene a .npz (radiance, instance maps) "
                    "and a .json (boxes), plus index.json (dynamic range, class counts) and a contact sheet.")
    p.add_argument("--split", choices=("train", "val", "test"), required=True)
    p.add_argument("--count", type=_nonneg_int, required=True, help="number of scenes (pairs of frames)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mix", choices=("default", "hdr_driving"), default="default",
                   help="scene mix: 'default', or 'hdr_driving' (paper 000's day/dusk/night shares of HDR edge "
                        "cases: tunnel exits and entries, low sun, underpasses, dusk, night with oncoming headlights)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--width", type=_positive_int, default=640)
    p.add_argument("--height", type=_positive_int, default=384)
    p.add_argument("--single", action="store_true", help="one frame per scene instead of a pair of consecutive frames")
    p.add_argument("--workers", type=_positive_int, default=1, help="processes (default 1)")
    p.add_argument("--storage", choices=("float16_scaled", "float32"), default="float16_scaled")
    p.add_argument("--contact-sheet", type=Path, default=None,
                   help="contact sheet PNG path (default OUT/contact_sheet.png; 'none' to skip)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_scenes)

    r = subparsers.add_parser(
        "record-scene", help="record a scripted drive's scene radiance and boxes as a rosbag2 (MCAP)",
        description="Render a drive (tunnel, low_sun, bridge, night_streetlight, panorama_pan) into a scene bag "
                    "(format v2: /scene/radiance 16FC1 half-float RGGB mosaic of e-/s with a per-frame scale and "
                    "CRC-32 in /scene/radiance_meta, 2 bytes/pixel; /scene/boxes vision_msgs/Detection2DArray, "
                    "/scene/events, /scene/info). --rgb32 writes format v1 (float32 RGB, 12 bytes/pixel).")
    r.add_argument("--drive", required=True, choices=("tunnel", "low_sun", "bridge", "night_streetlight", "panorama_pan"))
    r.add_argument("--frames", type=_positive_int, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", type=Path, required=True, help="bag directory to create")
    r.add_argument("--width", type=_positive_int, default=640)
    r.add_argument("--height", type=_positive_int, default=384)
    r.add_argument("--fps", type=float, default=30.0)
    r.add_argument("--panorama", default=None, help="panorama for panorama_pan (default: drawn from the seed)")
    r.add_argument("--compress", action="store_true", help="zstd-compressed MCAP chunks")
    r.add_argument("--rgb32", action="store_true",
                   help="format v1: full float32 RGB radiance (6x larger) instead of the half-float mosaic")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_record_scene)

    m = subparsers.add_parser(
        "hdr-merge", help="merge bracketed LDR captures (3 per frame) into linear HDR radiance (Eq. 7)",
        description="Read DIR/exposures.json and DIR/<frame>_{0,1,2}.(jpg|png|npy); write OUT/<frame>.exr "
                    "(float32 linear, radiance_scale units) and OUT/<frame>_variance.exr.")
    m.add_argument("folder", type=Path)
    m.add_argument("--out", type=Path, required=True)
    m.set_defaults(func=cmd_hdr_merge)


def cmd_scenes(args) -> int:
    from neural_ae_ros.scenes.generate import generate_split

    idx = generate_split(args.out, args.split, args.count, seed=args.seed, width=args.width, height=args.height,
                         pairs=not args.single, workers=args.workers, storage=args.storage, progress=not args.quiet,
                         mix=args.mix)
    dr = idx["dynamic_range_db"]
    g = idx["generation"]
    print(f"{idx['count']} scenes -> {args.out} ({g['frames_per_second']:.2f} frames/s, {g['seconds']:.1f} s)")
    if idx["count"]:
        print(f"dynamic range (dB, P1-P99.9): median {dr['median']:.1f}, p10 {dr['p10']:.1f}, p90 {dr['p90']:.1f}")
        print("by kind: " + ", ".join(f"{k} {v['median']:.0f} (n={v['n']})" for k, v in dr["by_kind"].items()))
        print("class counts: " + json.dumps(idx["class_counts"]))
        sheet = args.contact_sheet
        if sheet is None or str(sheet).lower() != "none":
            from neural_ae_ros.scenes.contact_sheet import sheet_from_dir

            path = sheet_from_dir(args.out, sheet or (Path(args.out) / "contact_sheet.png"))
            print(f"contact sheet: {path}")
    return 0


def cmd_record_scene(args) -> int:
    from neural_ae_ros.scenes.scene_bag import SceneBagError, record_drive

    try:
        path = record_drive(args.drive, args.frames, args.seed, args.out, args.width, args.height, args.fps,
                            progress=not args.quiet, panorama=args.panorama, compress=args.compress,
                            encoding="32FC3" if args.rgb32 else "16FC1")
    except SceneBagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.frames} frames of drive '{args.drive}' (seed {args.seed}) to {path}")
    return 0


def cmd_hdr_merge(args) -> int:
    from neural_ae_ros.imaging.hdr_io import write_exr
    from neural_ae_ros.imaging.hdr_merge import merge_folder

    args.out.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        for name, rad, var in merge_folder(args.folder):
            write_exr(args.out / f"{name}.exr", rad)
            write_exr(args.out / f"{name}_variance.exr", var)
            n += 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"merged {n} frames -> {args.out}")
    return 0
