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
        "record-scene", help="record scene radiance (a built-in drive, or your own HDR files or brackets) as a "
                             "rosbag2 (MCAP) scene bag",
        description="Write a scene bag (format v2: /scene/radiance 16FC1 half-float RGGB mosaic of e-/s with a per-frame "
                    "scale and CRC-32 in /scene/radiance_meta, 2 bytes/pixel; /scene/boxes vision_msgs/Detection2DArray "
                    "when labelled, /scene/events, /scene/info) from one of: --drive (rendered), --hdr-files (EXR / "
                    "Radiance HDR sequence, needs --radiance-scale), --brackets (a folder of exposure brackets with a "
                    "manifest, merged by paper 000 Eq. 7). Formats: README 'Bring your own HDR data'. --rgb32 writes "
                    "format v1 (float32 RGB, 12 bytes/pixel).")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--drive", choices=("tunnel", "low_sun", "bridge", "night_streetlight", "panorama_pan"))
    src.add_argument("--hdr-files", nargs="+", type=Path, metavar="PATH",
                     help="EXR / .hdr files in frame order, or folders of them (name order)")
    src.add_argument("--brackets", type=Path, metavar="DIR", help="folder of exposure brackets (DIR/brackets.json)")
    r.add_argument("--frames", type=_positive_int, default=None, help="frames to record (drives: required; user data: "
                                                                       "the first N, default all)")
    r.add_argument("--seed", type=int, default=None, help="drives only (default 0)")
    r.add_argument("--out", type=Path, required=True, help="bag directory to create")
    r.add_argument("--width", type=_positive_int, default=None, help="drives only (default 640)")
    r.add_argument("--height", type=_positive_int, default=None, help="drives only (default 384)")
    r.add_argument("--fps", type=float, default=None,
                   help="frame rate of the stamps (drives: default 30; user data: required unless the manifest has it)")
    r.add_argument("--panorama", default=None, help="panorama for panorama_pan (default: drawn from the seed)")
    r.add_argument("--manifest", type=Path, default=None, help="bracket manifest (default DIR/brackets.json)")
    r.add_argument("--response", default=None,
                   help="brackets: 'linear', 'srgb' or a response-table file (overrides the manifest)")
    r.add_argument("--black-level", type=float, default=None, help="brackets: code value of no light")
    r.add_argument("--white-level", type=float, default=None, help="brackets: code value of full scale")
    r.add_argument("--radiance-scale", type=float, default=None,
                   help="e-/s per file unit (--hdr-files: required) or per full-scale-per-second (--brackets)")
    r.add_argument("--labels", type=Path, default=None, help="labels file (boxes per frame; README format)")
    r.add_argument("--compress", action="store_true", help="zstd-compressed MCAP chunks")
    r.add_argument("--rgb32", action="store_true",
                   help="format v1: full float32 RGB radiance (6x larger) instead of the half-float mosaic")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_record_scene)

    m = subparsers.add_parser(
        "hdr-merge", help="merge exposure brackets (two or more per frame) into linear HDR radiance (Eq. 7)",
        description="Read DIR/brackets.json (README 'Bring your own HDR data') and the brackets it lists; write "
                    "OUT/<frame>.exr (float32 linear radiance, e-/s) and OUT/<frame>_variance.exr ((e-/s)^2).")
    m.add_argument("folder", type=Path)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--manifest", type=Path, default=None)
    m.add_argument("--response", default=None)
    m.add_argument("--black-level", type=float, default=None)
    m.add_argument("--white-level", type=float, default=None)
    m.add_argument("--radiance-scale", type=float, default=None)
    m.add_argument("--fps", type=float, default=None)
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
    from neural_ae_ros.scenes.user_data import UserDataError

    encoding = "32FC3" if args.rgb32 else "16FC1"
    try:
        if args.drive is None:
            return _record_user_data(args, encoding)
        if args.frames is None:
            raise UserDataError("--drive needs --frames")
        given = [f for f, v in (("--labels", args.labels), ("--manifest", args.manifest), ("--response", args.response),
                                ("--black-level", args.black_level), ("--white-level", args.white_level),
                                ("--radiance-scale", args.radiance_scale)) if v is not None]
        if given:
            raise UserDataError(f"{' '.join(given)}: for --hdr-files / --brackets; a drive renders e-/s and labels itself")
        args.seed = 0 if args.seed is None else args.seed
        path = record_drive(args.drive, args.frames, args.seed, args.out, args.width or 640, args.height or 384,
                            30.0 if args.fps is None else args.fps, progress=not args.quiet, panorama=args.panorama,
                            compress=args.compress, encoding=encoding)
    except (SceneBagError, UserDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.frames} frames of drive '{args.drive}' (seed {args.seed}) to {path}")
    return 0


def _merge_overrides(args) -> dict:
    return dict(manifest=args.manifest, response=args.response, black_level=args.black_level,
                white_level=args.white_level, radiance_scale=args.radiance_scale, fps=args.fps)


def _record_user_data(args, encoding: str) -> int:
    from neural_ae_ros.scenes import user_data as ud

    for flag, value in (("--panorama", args.panorama), ("--width", args.width), ("--height", args.height),
                        ("--seed", args.seed)):
        if value is not None:
            raise ud.UserDataError(f"{flag} is for --drive (user data keeps its own size)")
    if args.hdr_files is not None:
        if args.manifest or args.response or args.black_level is not None or args.white_level is not None:
            raise ud.UserDataError("--manifest/--response/--black-level/--white-level are for --brackets; HDR files "
                                   "are linear radiance")
        if args.fps is None:
            raise ud.UserDataError("the frame rate of an HDR file sequence is unknown: pass --fps")
        paths = ud.hdr_sequence_paths(args.hdr_files)[:args.frames]
        names = [p.stem for p in paths]
        frames = ud.iter_hdr_sequence(paths, args.radiance_scale)
        fps = args.fps
        source = dict(kind="hdr_files", files=[str(p) for p in paths], radiance_scale=args.radiance_scale)
        first = next(frames)  # fails before the bag exists when the scale is missing or the file bad
        frames = _chain(first, frames)
        shape = first[1].shape
    else:
        spec = ud.read_bracket_manifest(args.brackets, **_merge_overrides(args))
        spec.frames = spec.frames[:args.frames]
        names = [f.name for f in spec.frames]
        fps = spec.fps
        source = spec.describe()
        frames = _merged_frames(spec, ud)
        first = next(frames)
        frames = _chain(first, frames)
        shape = first[1].shape
    labels = ud.read_labels(args.labels, names, shape[2], shape[1]) if args.labels is not None else None
    path = ud.record_user_scene(args.out, frames, names, fps, source, labels, compress=args.compress,
                                encoding=encoding, progress=not args.quiet)
    print(f"wrote {len(names)} frames ({source['kind']}, {'labelled' if labels else 'no labels'}) to {path}")
    return 0


def _chain(first, rest):
    yield first
    yield from rest


def _merged_frames(spec, ud):
    """Merged frames of a bracket set; warns (with the numbers) where the response is not as declared."""
    from neural_ae_ros.imaging.hdr_merge import nonlinear

    bs = ud.BracketSet(spec)
    flagged = 0
    for i in range(len(spec.frames)):
        merged = bs.merge(i)
        bad = nonlinear(merged.checks)
        if bad:
            flagged += 1
            if flagged == 1:
                ud.print_warning(ud.linearity_warning(str(spec.manifest), spec.response.source, merged.name, bad))
        yield merged.name, merged.radiance_e_per_s
    if flagged > 1:
        ud.print_warning(f"{spec.manifest}: {flagged} of {len(spec.frames)} frames had a response that is not "
                         f"{spec.response.source!r}")


def cmd_hdr_merge(args) -> int:
    from neural_ae_ros.imaging.hdr_io import write_exr
    from neural_ae_ros.imaging.hdr_merge import nonlinear
    from neural_ae_ros.scenes import user_data as ud

    n = 0
    try:
        spec = ud.read_bracket_manifest(args.folder, **_merge_overrides(args))
        args.out.mkdir(parents=True, exist_ok=True)
        bs = ud.BracketSet(spec)
        for i in range(len(spec.frames)):
            merged = bs.merge(i)
            bad = nonlinear(merged.checks)
            if bad:
                ud.print_warning(ud.linearity_warning(str(spec.manifest), spec.response.source, merged.name, bad))
            write_exr(args.out / f"{merged.name}.exr", merged.radiance_e_per_s)
            write_exr(args.out / f"{merged.name}_variance.exr", merged.variance)
            n += 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"merged {n} frames -> {args.out} (radiance in e-/s, scale {spec.radiance_scale:.6g}"
          f"{', assumed' if spec.radiance_scale_assumed else ''})")
    return 0
