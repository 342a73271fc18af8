"""Bring your own HDR data: the user's radiance (HDR files or exposure brackets) into a scene bag.

Two kinds of input, each turned into radiance in e-/s (the unit of every scene bag) with
nothing left to a silent default: what the files cannot tell is asked for (an error naming
the flag) or, where a safe assumption exists, assumed with a warning that says so.

HDR file sequences (``.exr``, ``.hdr``)
---------------------------------------
Frames in file-name order (a folder, or files given in order); loaded by
:mod:`neural_ae_ros.imaging.hdr_io` (OpenEXR RGB and luminance/chroma, Radiance RGBE). Their
unit is unknown (relative, scene-referred, display-referred...), so ``radiance_scale`` (e-/s
per file unit: ``--radiance-scale``) is required; the refusal suggests the value that puts the
first frame's mean at a sunlit road's ``SUNLIT_ROAD_E_PER_S``.

Bracket folders: the manifest (JSON, ``DIR/brackets.json`` unless named)
-----------------------------------------------------------------------
::

    {
      "format": "neural_ae_ros.brackets/1",
      "response": "srgb",              # "linear" | "srgb" | "table:FILE" (FILE relative to the manifest)
      "black_level": 0,                # code value of no light, in the files' units
      "white_level": 255,              # code value of full scale (e.g. 255, 4095, 65535, 1.0)
      "saturation": 0.98,              # optional: normalised code value from which a sample counts as clipped
      "radiance_scale": 32500,         # optional: e-/s per (full scale per second); see below
      "fps": 30,                       # frame rate of the sequence (stamps of the bag)
      "grey": false,                   # optional: single-channel files are grey (R = G = B)
      "noise_model": [shot, floor],    # optional: V(J) = shot J + floor (normalised), else constant V
      "frames": [
        {"name": "f0000",
         "brackets": [{"file": "f0000_a.png", "exposure_time_s": 0.004, "analog_gain": 1.0},
                      {"file": "f0000_b.png", "exposure_time_s": 0.016, "analog_gain": 1.0}]},
        ...
      ]
    }

Two or more brackets per frame, any count, any order. Files: PNG / TIFF (8 or 16 bit), JPEG,
``.npy`` (integer or float code values), RGB, or single-channel with ``"grey": true`` (a
single-channel file is refused otherwise: it may be an undemosaiced Bayer raw). Every key may
be overridden by a command-line flag (``--response``, ``--black-level``, ``--white-level``,
``--radiance-scale``, ``--fps``). Rules:

* ``response`` and ``fps``: required.
* ``black_level`` / ``white_level``: required, except for 8-bit files, where 0 / 255 is assumed
  with a warning (the full range of the container).
* ``analog_gain``: 1 when absent, with a warning (all brackets at the same gain: only ratios
  matter for the merge, but the absolute radiance scales with it).
* ``radiance_scale``: e-/s for one unit of merged radiance (full scale over 1 s at gain 1),
  i.e. the capture camera's full-scale signal in electrons. When absent, the target sensor's
  (``min(full_well_e, (white - black) / g1)``, config/sensor) is assumed, with a warning:
  frames then look on the simulated camera as they looked on the capture camera.

The merge is paper 000 Eq. 7 over the N brackets (:mod:`neural_ae_ros.imaging.hdr_merge`); each
frame's brackets are also checked for a response that is not what was declared (level ratio
vs exposure ratio on well-exposed pixels) and the caller is warned with the numbers.

Labels (optional, JSON, ``--labels FILE``)
------------------------------------------
::

    {
      "format": "neural_ae_ros.labels/1",
      "frames": {
        "f0000": {"boxes":   [{"cls": "car_van", "box": [x0, y0, x1, y1], "id": 1}],
                  "ignored": [{"cls": "person",  "box": [x0, y0, x1, y1]}]},
        "f0001": {"boxes": []},
        ...
      }
    }

Keys are the frame names (bracket ``name``, or the HDR file's stem). Boxes in pixels of the
input image, pixel-edge coordinates (``0 <= x0 < x1 <= width``); ``cls`` one of the project's
classes (``neural_ae_ros.classes.CLASS_NAMES``); ``id`` optional; ``ignored`` (don't-care)
optional. Every frame must be listed (an empty list says "no objects"; an absent frame would
be ambiguous), and no unknown frame may be.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

import numpy as np

from neural_ae_ros.classes import CLASS_NAMES

BRACKET_FORMAT = "neural_ae_ros.brackets/1"
LABELS_FORMAT = "neural_ae_ros.labels/1"
DEFAULT_MANIFEST = "brackets.json"
HDR_SUFFIXES = (".exr", ".hdr", ".pic", ".rgbe")
LDR_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".npy")
#: A sunlit road, e-/s at the photosite (README "Units"): the reference of the suggested scale.
SUNLIT_ROAD_E_PER_S = 7.0e6
#: Saturation threshold (fraction of full scale) when the manifest gives none (stated in the docs).
DEFAULT_SATURATION = 0.98


class UserDataError(ValueError):
    """User data could not be used; the message names the file (and frame) and what to do."""


def print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


Warn = Callable[[str], None]


# --------------------------------------------------------------------------------- labels
def read_labels(path, frame_names: Sequence[str], width: int, height: int) -> dict:
    """``{frame name: (boxes, ignored)}`` from a labels file (format in the module docstring)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserDataError(f"{path}: labels file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserDataError(f"{path}: unreadable labels file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != LABELS_FORMAT or not isinstance(doc.get("frames"), dict):
        raise UserDataError(f"{path}: not a labels file (need {{\"format\": \"{LABELS_FORMAT}\", \"frames\": {{...}}}})")
    frames = doc["frames"]
    missing = [n for n in frame_names if n not in frames]
    if missing:
        raise UserDataError(f"{path}: no labels for {len(missing)} frame(s), e.g. {missing[:3]} (list every frame; "
                            "an empty 'boxes' list says it has no objects)")
    unknown = sorted(set(frames) - set(frame_names))
    if unknown:
        raise UserDataError(f"{path}: labels for unknown frame(s) {unknown[:3]} (frames are {list(frame_names)[:3]}...)")
    out = {}
    for name in frame_names:
        entry = frames[name]
        if not isinstance(entry, dict) or not isinstance(entry.get("boxes"), list):
            raise UserDataError(f"{path}: frame {name!r}: need {{\"boxes\": [...]}}")
        lists = []
        for key in ("boxes", "ignored"):
            recs = []
            for j, b in enumerate(entry.get(key, []) or []):
                where = f"{path}: frame {name!r} {key}[{j}]"
                if not isinstance(b, dict) or b.get("cls") not in CLASS_NAMES:
                    raise UserDataError(f"{where}: 'cls' must be one of {list(CLASS_NAMES)}, got "
                                        f"{b.get('cls') if isinstance(b, dict) else b!r}")
                box = b.get("box")
                if (not isinstance(box, list) or len(box) != 4
                        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
                    raise UserDataError(f"{where}: 'box' must be [x0, y0, x1, y1] in pixels")
                x0, y0, x1, y1 = (float(v) for v in box)
                if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                    raise UserDataError(f"{where}: box {box} not inside the {width}x{height} image "
                                        "(need 0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)")
                rec = dict(cls=b["cls"], box=[x0, y0, x1, y1])
                if "id" in b:
                    rec["id"] = b["id"]
                recs.append(rec)
            lists.append(recs)
        out[name] = (lists[0], lists[1])
    return out


# ------------------------------------------------------------------------- HDR sequences
def hdr_sequence_paths(inputs: Sequence) -> List[Path]:
    """Expand folders (their ``.exr``/``.hdr`` files in name order) and files, in the given order."""
    paths: List[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in HDR_SUFFIXES)
            if not found:
                raise UserDataError(f"{p}: no .exr or .hdr files in this folder")
            paths.extend(found)
        elif p.is_file():
            if p.suffix.lower() not in HDR_SUFFIXES:
                raise UserDataError(f"{p}: not an HDR file (expected {', '.join(HDR_SUFFIXES)})")
            paths.append(p)
        else:
            raise UserDataError(f"{p}: no such file or folder")
    if not paths:
        raise UserDataError("no HDR files given")
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise UserDataError(f"HDR files share frame names (file stems) {dup[:3]}: rename them")
    return paths


def suggested_radiance_scale(path) -> str:
    """The ``--radiance-scale`` hint for an HDR file: what puts its mean at a sunlit road."""
    from neural_ae_ros.imaging.hdr_io import load_radiance

    mean = float(np.mean(load_radiance(path)))
    if not mean > 0:
        return f"{path} has mean 0: no scale can be suggested"
    return (f"{path} has mean {mean:.4g} file units; --radiance-scale {SUNLIT_ROAD_E_PER_S / mean:.4g} puts it at "
            f"a sunlit road's {SUNLIT_ROAD_E_PER_S:.0e} e-/s")


def iter_hdr_sequence(paths: Sequence[Path], radiance_scale: Optional[float]) -> Iterator[tuple]:
    """``(name, radiance_e_per_s (3, H, W) float32)`` per file; refuses without a scale."""
    from neural_ae_ros.imaging.hdr_io import HDRLoadError, load_radiance

    if radiance_scale is None:
        raise UserDataError("the radiance unit of HDR files is unknown: pass --radiance-scale (e-/s per file "
                            f"unit); {suggested_radiance_scale(paths[0])}")
    if not (math.isfinite(radiance_scale) and radiance_scale > 0):
        raise UserDataError(f"--radiance-scale {radiance_scale}: must be > 0")
    for p in paths:
        try:
            yield p.stem, load_radiance(p, float(radiance_scale))
        except HDRLoadError as exc:
            raise UserDataError(str(exc)) from exc


# ------------------------------------------------------------------------------- brackets
@dataclass
class Bracket:
    path: Path
    exposure_time_s: float
    analog_gain: float


@dataclass
class BracketFrame:
    name: str
    brackets: List[Bracket]


@dataclass
class BracketSpec:
    """A bracket folder, fully resolved (every level, unit and response known or stated)."""

    manifest: Path
    response: object  # hdr_merge.Response
    fps: float
    radiance_scale: float  # e-/s per (full scale per second)
    radiance_scale_assumed: bool
    saturation: float
    grey: bool
    noise_model: Optional[tuple]
    frames: List[BracketFrame]
    assumptions: List[str] = field(default_factory=list)  # what was assumed (also warned)

    def describe(self) -> dict:
        """What the bag's ``/scene/info`` ``source`` records about this input."""
        r = self.response
        return dict(kind="brackets", manifest=str(self.manifest), response=r.source, black_level=r.black_level,
                    white_level=r.white_level, saturation=self.saturation, radiance_scale=self.radiance_scale,
                    brackets_per_frame=sorted({len(f.brackets) for f in self.frames}), assumptions=self.assumptions)


def read_code_values(path: Path, grey: bool) -> np.ndarray:
    """A bracket file's code values, ``(H, W, 3)`` in its own dtype (RGB order)."""
    path = Path(path)
    if not path.is_file():
        raise UserDataError(f"{path}: bracket file not found")
    ext = path.suffix.lower()
    if ext == ".npy":
        try:
            arr = np.load(path)
        except (OSError, ValueError) as exc:
            raise UserDataError(f"{path}: unreadable .npy ({exc})") from exc
    elif ext in LDR_SUFFIXES:
        import cv2

        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise UserDataError(f"{path}: unreadable or truncated image (OpenCV could not decode it)")
        if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # BGR(A) -> RGB, contiguous (a view would halve the LUT speed)
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[-1] == 3 else cv2.COLOR_BGRA2RGB)
    else:
        raise UserDataError(f"{path}: unknown bracket file type {ext!r} (expected {', '.join(LDR_SUFFIXES)})")
    if arr.dtype.kind not in "uif":
        raise UserDataError(f"{path}: dtype {arr.dtype} is not numeric")
    if arr.ndim == 2:
        if not grey:
            raise UserDataError(f"{path}: single-channel image ({arr.shape[1]}x{arr.shape[0]}): a Bayer raw must be "
                                "demosaiced to RGB first; a grey image needs \"grey\": true in the manifest")
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise UserDataError(f"{path}: expected an (H, W, 3) RGB image, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise UserDataError(f"{path}: non-finite code values")
    return arr


def _number(meta: dict, key: str, where: str, positive: bool = False):
    v = meta.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
        raise UserDataError(f"{where}: '{key}' must be a {'positive ' if positive else ''}number, got {v!r}")
    return float(v)


def read_bracket_manifest(folder, manifest=None, response: Optional[str] = None, black_level: Optional[float] = None,
                          white_level: Optional[float] = None, radiance_scale: Optional[float] = None,
                          fps: Optional[float] = None, saturation: Optional[float] = None,
                          warn: Warn = print_warning) -> BracketSpec:
    """Read and resolve a bracket manifest (module docstring); arguments override its keys."""
    from neural_ae_ros.imaging.hdr_merge import Response, read_response_table

    folder = Path(folder)
    mpath = Path(manifest) if manifest else folder / DEFAULT_MANIFEST
    if not mpath.is_file():
        raise UserDataError(f"{mpath}: bracket manifest not found (format: neural_ae_ros.scenes.user_data; "
                            f"README 'Bring your own HDR data')")
    try:
        meta = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserDataError(f"{mpath}: invalid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != BRACKET_FORMAT:
        raise UserDataError(f"{mpath}: not a bracket manifest ('format' must be {BRACKET_FORMAT!r})")
    where = str(mpath)
    base = mpath.parent
    assumptions: List[str] = []

    def assume(text):
        assumptions.append(text)
        warn(f"{mpath}: {text}")

    # frames
    entries = meta.get("frames")
    if not isinstance(entries, list) or not entries:
        raise UserDataError(f"{where}: 'frames' must be a non-empty list of {{name, brackets}}")
    frames: List[BracketFrame] = []
    gain_missing = 0
    for k, ent in enumerate(entries):
        if not isinstance(ent, dict) or not isinstance(ent.get("name"), str) or not isinstance(ent.get("brackets"), list):
            raise UserDataError(f"{where}: frames[{k}] needs 'name' (string) and 'brackets' (list)")
        name = ent["name"]
        if len(ent["brackets"]) < 2:
            raise UserDataError(f"{where}: frame {name!r} has {len(ent['brackets'])} bracket(s): need two or more")
        brs = []
        for j, b in enumerate(ent["brackets"]):
            w = f"{where}: frame {name!r} bracket {j}"
            if not isinstance(b, dict) or not isinstance(b.get("file"), str):
                raise UserDataError(f"{w}: needs 'file'")
            t = _number(b, "exposure_time_s", w, positive=True)
            if t is None:
                raise UserDataError(f"{w}: needs 'exposure_time_s' (seconds)")
            g = _number(b, "analog_gain", w, positive=True)
            if g is None:
                gain_missing += 1
                g = 1.0
            brs.append(Bracket(base / b["file"], t, g))
        frames.append(BracketFrame(name, brs))
    names = [f.name for f in frames]
    if len(set(names)) != len(names):
        raise UserDataError(f"{where}: frame names must be unique")
    if gain_missing:
        assume(f"'analog_gain' missing on {gain_missing} bracket(s): assumed 1 (the absolute radiance scales with it)")

    # response and levels
    resp = response if response is not None else meta.get("response")
    if resp is None:
        raise UserDataError(f"{where}: the response is unknown: pass --response linear|srgb|TABLE_FILE or set "
                            "\"response\" in the manifest")
    table = None
    if resp in ("linear", "srgb"):
        kind, source = resp, resp
    else:
        tpath = Path(resp[6:] if str(resp).startswith("table:") else resp)
        if response is None:  # relative to the manifest when it came from there
            tpath = base / tpath
        try:
            table = read_response_table(tpath)
        except (OSError, ValueError) as exc:
            raise UserDataError(f"response {resp!r}: {exc}") from exc
        kind, source = "table", f"table:{tpath}"
    bl = black_level if black_level is not None else _number(meta, "black_level", where)
    wl = white_level if white_level is not None else _number(meta, "white_level", where)
    if bl is None or wl is None:
        first = frames[0].brackets[0].path
        dtype = read_code_values(first, bool(meta.get("grey", False))).dtype
        if dtype != np.uint8:
            missing = [n for n, v in (("black", bl), ("white", wl)) if v is None]
            raise UserDataError(f"{where}: {' and '.join(missing)} level unknown for {dtype} files like {first.name}: "
                                f"pass {' '.join(f'--{m}-level' for m in missing)} (code values, e.g. black 64, white "
                                "4095 for 12-bit raw) or set them in the manifest")
        if bl is None:
            bl = 0.0
            assume("'black_level' missing: assumed 0 (8-bit files)")
        if wl is None:
            wl = 255.0
            assume("'white_level' missing: assumed 255 (8-bit files)")
    try:
        response_obj = Response(kind, bl, wl, table, source)
    except ValueError as exc:
        raise UserDataError(f"{where}: {exc}") from exc

    # unit, rate, saturation
    f = fps if fps is not None else _number(meta, "fps", where, positive=True)
    if f is None:
        raise UserDataError(f"{where}: the frame rate is unknown: pass --fps or set \"fps\" in the manifest")
    if not (math.isfinite(f) and f > 0):
        raise UserDataError(f"--fps {f}: must be > 0")
    scale = radiance_scale if radiance_scale is not None else _number(meta, "radiance_scale", where, positive=True)
    assumed = scale is None
    if assumed:
        from neural_ae_ros.imaging.sensor import SensorParams

        p = SensorParams.from_yaml()
        scale = float(min(p.full_well_e, (p.white_level_dn - p.black_level_dn) / p.g1_dn_per_e))
        assume(f"'radiance_scale' missing: assumed {scale:.6g} e-/s per (full scale per second), the target sensor's "
               "full-scale signal at gain 1 (frames look on the simulated camera as on the capture camera); "
               "pass --radiance-scale to set it")
    elif not (math.isfinite(scale) and scale > 0):
        raise UserDataError(f"--radiance-scale {scale}: must be > 0")
    sat = saturation if saturation is not None else _number(meta, "saturation", where, positive=True)
    sat = DEFAULT_SATURATION if sat is None else sat
    if not 0 < sat <= 1:
        raise UserDataError(f"{where}: saturation {sat} must lie in (0, 1]")
    nm = meta.get("noise_model")
    if nm is not None and (not isinstance(nm, list) or len(nm) != 2):
        raise UserDataError(f"{where}: 'noise_model' must be [shot, floor]")
    return BracketSpec(mpath, response_obj, float(f), float(scale), assumed, float(sat), bool(meta.get("grey", False)),
                       tuple(nm) if nm else None, frames, assumptions)


@dataclass
class MergedFrame:
    name: str
    radiance_e_per_s: np.ndarray  # (3, H, W) float32
    variance: np.ndarray  # (3, H, W) float32, (e-/s)^2; inf where every bracket clipped
    saturated_fraction: float  # of samples clipped in every bracket
    checks: list  # hdr_merge.LinearityCheck per exposure-adjacent pair


class BracketSet:
    """Merge the frames of a :class:`BracketSpec` (Eq. 7, N brackets, float32)."""

    #: Brackets decoded at once (threads; OpenCV decoding and the LUT gather release the GIL).
    READ_THREADS = 2
    #: Samples per channel the linearity check looks at (rows and columns subsampled to about this).
    CHECK_SAMPLES = 250_000

    def __init__(self, spec: BracketSpec, check_stride: Optional[int] = None, warn: Warn = print_warning):
        self.spec = spec
        self.check_stride = check_stride
        self.shape = None
        self.warn = warn
        self._warned_levels = False
        r = spec.response
        # clipping happens on code values: the threshold in code units, mapped through phi
        self.saturation_linear = float(r._curve(np.array([spec.saturation], np.float32))[0])

    def _check_levels(self, path: Path, codes: np.ndarray) -> None:
        """Warn (once) when a file holds code values above the white level: a wrong level or bit depth."""
        if self._warned_levels:
            return
        top = float(codes.max())
        wl = self.spec.response.white_level
        if top > wl:
            self._warned_levels = True
            frac = float((codes > wl).mean())
            self.warn(f"{path}: code values up to {top:g} above the white level {wl:g} ({100 * frac:.2f} % of "
                      "samples, clipped to full scale): is --white-level right (bit depth of the files)?")

    def merge(self, index: int) -> MergedFrame:
        from neural_ae_ros.imaging.hdr_merge import Eq7Accumulator, check_linearity

        spec = self.spec
        fr = spec.frames[index]
        acc = Eq7Accumulator(self.saturation_linear, 1.0, spec.noise_model)
        small, effective = [], []

        def load(b):  # decoding and the LUT release the GIL: brackets are read two at a time
            codes = read_code_values(b.path, spec.grey)
            self._check_levels(b.path, codes)
            return codes.shape, spec.response.linearise(codes)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.READ_THREADS) as pool:
            for b, (shape, lin) in zip(fr.brackets, pool.map(load, fr.brackets)):
                if self.shape is None:
                    self.shape = shape
                elif shape != self.shape:
                    raise UserDataError(f"{b.path}: frame {fr.name!r}: size {shape[1]}x{shape[0]} differs from "
                                        f"the first bracket's {self.shape[1]}x{self.shape[0]}")
                s = self.check_stride or max(1, int(math.sqrt(shape[0] * shape[1] / self.CHECK_SAMPLES)))
                small.append(np.ascontiguousarray(np.moveaxis(lin[::s, ::s], -1, 0)))
                effective.append(b.exposure_time_s * b.analog_gain)
                acc.add(lin, b.exposure_time_s, b.analog_gain)
                del lin
        res = acc.result()
        scale = np.float32(spec.radiance_scale)
        rad = np.moveaxis(res.hdr, -1, 0)
        rad *= scale
        var = np.moveaxis(res.variance, -1, 0)
        var *= scale * scale
        checks = check_linearity(small, effective, stride=1)
        return MergedFrame(fr.name, np.ascontiguousarray(rad), np.ascontiguousarray(var),
                           float(res.saturated_all.mean()), checks)


def linearity_warning(spec_name: str, response: str, frame: str, bad: Sequence) -> str:
    """The warning for exposure-adjacent brackets whose level ratio does not follow the exposure ratio."""
    first = bad[0]
    hint = ("display-coded (sRGB/gamma) data declared linear? try --response srgb or a response table"
            if first.log_slope < 1 else "linear data declared display-coded? try --response linear")
    return (f"{spec_name}: frame {frame!r}: the response is not {response!r} as declared: {first.describe()}; "
            f"a linear response gives log-slope 1.00, sRGB-coded data read as linear 0.4-0.6 ({hint})")


# ------------------------------------------------------------------------------ recording
def record_user_scene(out, frames: Iterator[tuple], names: Sequence[str], fps: float, source: dict,
                      labels: Optional[dict] = None, compress: bool = False, encoding: Optional[str] = None,
                      progress: bool = True, warn: Warn = print_warning) -> Path:
    """Write ``(name, radiance_e_per_s (3, H, W))`` frames into a scene bag at ``out``.

    The first frame fixes the size; odd widths/heights lose their last column/row (the RGGB
    mosaic needs even sizes) with a warning. ``labels``: :func:`read_labels` output or None
    (the bag then has no label topics and ``/scene/info`` says ``labelled: false``).
    """
    from neural_ae_ros.scenes.scene_bag import ENCODING, SceneBagError, SceneBagWriter

    if Path(out).exists():
        raise UserDataError(f"{out}: already exists (a scene bag is written to a new directory)")
    it = iter(frames)
    try:
        name, rad = next(it)
    except StopIteration:
        raise UserDataError("no frames to record") from None
    _, h, w = rad.shape
    hw, ww = h - h % 2, w - w % 2
    if (hw, ww) != (h, w):
        warn(f"frame {name!r}: {w}x{h} is odd: recording the top-left {ww}x{hw} (the RGGB mosaic needs even sizes)")
    info = dict(frames=len(names), classes=list(CLASS_NAMES), events=[], labelled=labels is not None, source=source)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names), desc="record-scene", unit="frame")
    try:
        with SceneBagWriter(out, ww, hw, fps, info, compress=compress, encoding=encoding or ENCODING,
                            labelled=labels is not None) as writer:
            i = 0
            while True:
                if rad.shape[1:] != (h, w):
                    raise UserDataError(f"frame {name!r}: size {rad.shape[2]}x{rad.shape[1]} differs from the first "
                                        f"frame's {w}x{h}")
                boxes, ignored = labels[name] if labels is not None else ([], [])
                writer.write(i, np.ascontiguousarray(rad[:, :hw, :ww]), boxes, ignored)
                i += 1
                if bar is not None:
                    bar.update(1)
                try:
                    name, rad = next(it)
                except StopIteration:
                    break
    except BaseException as exc:
        # a failed recording leaves no bag behind that looks complete
        import shutil

        if Path(out).is_dir():
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(exc, SceneBagError):
            raise UserDataError(f"{exc} (nothing written)") from exc
        raise
    finally:
        if bar is not None:
            bar.close()
    return Path(out)
