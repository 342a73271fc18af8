"""Loading (and writing, for tests and exports) real HDR radiance files.

Formats
- OpenEXR (``.exr``) through the ``openexr`` package (``OpenEXR.File``); channels ``RGB``,
  ``RGBA``, separate ``R``/``G``/``B``, luminance/chroma ``Y``/``RY``/``BY`` (converted to RGB,
  below) or luminance ``Y`` alone (grey).
- Radiance RGBE (``.hdr``, ``.pic``) through OpenCV (``cv2.imread``/``cv2.imwrite``, RLE
  scanlines). The header is checked here first so that errors say what is wrong: signature,
  ``FORMAT``, the standard ``-Y H +X W`` orientation (the only one OpenCV reads) and
  ``EXPOSURE=`` (pixel values are divided by it, as the Radiance format defines).

Luminance/chroma EXR (what OpenEXR's ``RgbaOutputFile`` writes with ``WRITE_YC``): ``Y`` at full
resolution, ``RY = (R - Y) / Y`` and ``BY = (B - Y) / Y``, usually subsampled 2 x 2. RGB is
``R = (RY + 1) Y``, ``B = (BY + 1) Y``, ``G = (Y - w_R R - w_B B) / w_G`` with the luminance
weights ``w`` of the file's ``chromaticities`` (Rec. 709 / sRGB when absent: 0.2126, 0.7152,
0.0722), as OpenEXR's ``RgbaYca::YCAtoRGB``; chroma is upsampled by pixel replication
(OpenEXR's own reader uses a longer filter: the two differ only at chroma edges). Not OpenCV:
its EXR reader (4.14) computes G with the primaries' *y chromaticities* (0.33, 0.60, 0.06) as
luminance weights, which turns a (3.27, 0.52, 0.17) pixel into (3.27, -0.01, 0.17).

All loaders return ``float32`` arrays of shape ``(3, H, W)`` (channel first, linear RGB, the
file's own relative units). :func:`load_radiance` validates and optionally rescales them to
photo-electrons per second (``radiance_e_per_s``, see ``docs/design.md``).

Validation (:func:`validate_radiance`) raises :class:`HDRLoadError` naming the file for:
unreadable or truncated files, wrong shape (not ``(3,H,W)``/``(H,W,3)``, empty, fewer than 3
channels), non-finite values (NaN, +-inf) and negative values *beyond compression noise*.
Compression noise rule: a value ``v < 0`` is tolerated (and clamped to 0) when
``v >= -0.01 * P99(|x|)`` and at most 1 % of all samples are negative; anything else is an error.
(The shipped blender-data panoramas have 0.00-0.6 % negatives down to -0.004, with
``P99(|x|)`` of 0.4-10.)
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

__all__ = [
    "HDRLoadError",
    "load_exr",
    "load_hdr",
    "load_hdr_file",
    "load_radiance",
    "luminance_weights",
    "validate_radiance",
    "write_exr",
    "write_hdr",
    "yc_to_rgb",
]

NEGATIVE_REL_TOL = 0.01
NEGATIVE_MAX_FRACTION = 0.01


class HDRLoadError(ValueError):
    """An HDR file could not be used; the message starts with the file path."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


# ----------------------------------------------------------------------------------- OpenEXR
#: CIE xy of the red, green, blue primaries and the white point of Rec. 709 / sRGB: OpenEXR's
#: default ``chromaticities``.
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)


def luminance_weights(chromaticities=REC709_CHROMATICITIES) -> np.ndarray:
    """``(w_R, w_G, w_B)``: the Y row of the RGB -> XYZ matrix of these primaries (sums to 1)."""
    xr, yr, xg, yg, xb, yb, xw, yw = (float(v) for v in chromaticities)
    primaries = np.array([[xr / yr, xg / yg, xb / yb],
                          [1.0, 1.0, 1.0],
                          [(1 - xr - yr) / yr, (1 - xg - yg) / yg, (1 - xb - yb) / yb]])
    white = np.array([xw / yw, 1.0, (1 - xw - yw) / yw])
    return np.linalg.solve(primaries, white)


def _full_res(channel, height: int, width: int) -> np.ndarray:
    """A channel's pixels at full resolution (subsampled chroma repeated), float32 (H, W)."""
    a = np.asarray(channel.pixels, dtype=np.float32)
    ys, xs = int(getattr(channel, "ySampling", 1) or 1), int(getattr(channel, "xSampling", 1) or 1)
    if (ys, xs) != (1, 1):
        a = np.repeat(np.repeat(a, ys, axis=0), xs, axis=1)
    return a[:height, :width]


def yc_to_rgb(y: np.ndarray, ry: np.ndarray, by: np.ndarray, chromaticities=REC709_CHROMATICITIES) -> np.ndarray:
    """Luminance/chroma (``Y``, ``RY``, ``BY``, full resolution) -> float32 ``(H, W, 3)`` RGB."""
    w_r, w_g, w_b = luminance_weights(chromaticities)
    r = (ry + 1.0) * y
    b = (by + 1.0) * y
    g = (y - w_r * r - w_b * b) / w_g
    return np.stack([r, g, b], -1).astype(np.float32)


def load_exr(path) -> np.ndarray:
    """Read an OpenEXR file into float32 ``(3, H, W)`` (not validated for values)."""
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise HDRLoadError(path, "no such file")
    try:
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            header = f.header()
            if "RGB" in channels or "RGBA" in channels:
                arr = np.asarray(channels["RGB" if "RGB" in channels else "RGBA"].pixels)
                arr = arr[..., :3]
            elif all(c in channels for c in ("R", "G", "B")):
                arr = np.stack([np.asarray(channels[c].pixels) for c in ("R", "G", "B")], -1)
            elif "Y" in channels:
                y = np.asarray(channels["Y"].pixels, dtype=np.float32)
                if "RY" in channels and "BY" in channels:
                    h, w = y.shape
                    arr = yc_to_rgb(y, _full_res(channels["RY"], h, w), _full_res(channels["BY"], h, w),
                                    header.get("chromaticities", REC709_CHROMATICITIES))
                else:
                    arr = np.stack([y, y, y], -1)
            else:
                raise HDRLoadError(path, f"no RGB or Y channels (has {sorted(channels)})")
    except HDRLoadError:
        raise
    except Exception as exc:  # OpenEXR raises RuntimeError / OSError on bad files
        raise HDRLoadError(path, f"unreadable OpenEXR file ({exc})") from exc
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise HDRLoadError(path, f"unexpected EXR pixel array shape {arr.shape}")
    return np.ascontiguousarray(np.moveaxis(arr.astype(np.float32, copy=False), -1, 0))


def write_exr(path, rgb_chw: np.ndarray, half: bool = False) -> None:
    """Write float ``(3, H, W)`` linear RGB as a ZIP-compressed scanline OpenEXR file."""
    import OpenEXR

    arr = np.ascontiguousarray(np.moveaxis(np.asarray(rgb_chw), 0, -1))
    arr = arr.astype(np.float16 if half else np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": arr}) as f:
        f.write(str(path))


# ------------------------------------------------------------------------------ Radiance RGBE
_RES_RE = re.compile(rb"^-Y\s+(\d+)\s+\+X\s+(\d+)$")
_MAX_HEADER_BYTES = 1 << 16


def _radiance_header(path: Path) -> tuple:
    """``(height, width, exposure)`` from a Radiance header; :class:`HDRLoadError` if unusable."""
    with open(path, "rb") as fh:
        head = fh.read(_MAX_HEADER_BYTES)
    if not (head.startswith(b"#?RADIANCE") or head.startswith(b"#?RGBE")):
        raise HDRLoadError(path, "not a Radiance .hdr file (missing '#?RADIANCE' signature)")
    end = head.find(b"\n\n")
    if end < 0:
        raise HDRLoadError(path, "truncated header (no empty line before the resolution line)")
    exposure = 1.0
    for line in head[:end].split(b"\n")[1:]:
        line = line.strip()
        if line.startswith(b"FORMAT=") and line[7:] != b"32-bit_rle_rgbe":
            raise HDRLoadError(path, f"unsupported {line.decode('ascii', 'replace')} (only 32-bit_rle_rgbe)")
        if line.startswith(b"EXPOSURE="):
            try:
                exposure *= float(line[9:])
            except ValueError as exc:
                raise HDRLoadError(path, f"bad header line {line[:40]!r}") from exc
    nl = head.find(b"\n", end + 2)
    if nl < 0:
        raise HDRLoadError(path, "truncated header (no resolution line)")
    res = head[end + 2:nl].strip()
    m = _RES_RE.match(res)
    if not m:
        raise HDRLoadError(path, f"resolution line {res[:40]!r}: only the standard '-Y H +X W' orientation is read")
    if not exposure > 0:
        raise HDRLoadError(path, f"EXPOSURE={exposure} (must be > 0)")
    return int(m.group(1)), int(m.group(2)), exposure


def load_hdr(path) -> np.ndarray:
    """Read a Radiance RGBE ``.hdr`` file into float32 ``(3, H, W)`` (OpenCV decodes the pixels)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise HDRLoadError(path, "no such file")
    height, width, exposure = _radiance_header(path)
    if height <= 0 or width <= 0:
        raise HDRLoadError(path, f"empty image {width}x{height}")
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if bgr is None:
        raise HDRLoadError(path, "truncated or corrupt pixel data (OpenCV could not decode it)")
    if bgr.shape != (height, width, 3):
        raise HDRLoadError(path, f"decoded {bgr.shape} pixels, header says {height}x{width}")
    rgb = np.moveaxis(bgr[..., ::-1], -1, 0).astype(np.float32)
    if exposure != 1.0:
        rgb /= np.float32(exposure)
    return np.ascontiguousarray(rgb)


def write_hdr(path, rgb_chw: np.ndarray) -> None:
    """Write float ``(3, H, W)`` linear RGB as a Radiance RGBE file (OpenCV, RLE scanlines).

    Negative values are written as 0 (RGBE has no sign).
    """
    import cv2

    rgb = np.maximum(np.moveaxis(np.asarray(rgb_chw, dtype=np.float32), 0, -1), 0.0)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"{path}: OpenCV could not write the Radiance file")


# ------------------------------------------------------------------------------- validation
def validate_radiance(arr, name="<array>", clamp_negative: bool = True) -> np.ndarray:
    """Check an HDR array and return float32 ``(3, H, W)``.

    Accepts ``(3, H, W)`` or ``(H, W, 3)`` (moved to channel first). Raises
    :class:`HDRLoadError` naming ``name`` on wrong shape/dtype, non-finite values or negatives
    beyond compression noise (rule in the module docstring); tolerated negatives are clamped.
    """
    a = np.asarray(arr)
    if a.dtype.kind not in "fiu":
        raise HDRLoadError(name, f"dtype {a.dtype} is not numeric")
    if a.ndim != 3:
        raise HDRLoadError(name, f"expected a (3,H,W) or (H,W,3) array, got shape {a.shape}")
    if a.shape[0] != 3 and a.shape[-1] == 3:
        a = np.moveaxis(a, -1, 0)
    if a.shape[0] != 3:
        raise HDRLoadError(name, f"expected 3 colour channels, got shape {a.shape}")
    if a.shape[1] == 0 or a.shape[2] == 0:
        raise HDRLoadError(name, f"empty image, shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.all():
        bad = int((~finite).sum())
        raise HDRLoadError(name, f"{bad} non-finite values (NaN or inf) of {a.size}")
    neg = a < 0
    if neg.any():
        tol = NEGATIVE_REL_TOL * float(np.percentile(np.abs(a), 99))
        frac = float(neg.mean())
        worst = float(a.min())
        if worst < -tol or frac > NEGATIVE_MAX_FRACTION:
            raise HDRLoadError(
                name,
                f"negative values beyond compression noise (min {worst:.4g}, tolerance "
                f"{-tol:.4g}; {100 * frac:.3f} % negative, at most "
                f"{100 * NEGATIVE_MAX_FRACTION:.1f} % allowed)",
            )
        if clamp_negative:
            np.maximum(a, 0.0, out=a)
    return a


def load_hdr_file(path) -> np.ndarray:
    """Read ``.exr`` or ``.hdr``/``.pic`` by extension, unvalidated, float32 ``(3, H, W)``."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".exr":
        return load_exr(path)
    if ext in (".hdr", ".pic", ".rgbe"):
        return load_hdr(path)
    raise HDRLoadError(path, f"unknown HDR file type '{ext}' (expected .exr or .hdr)")


def load_radiance(path, scale_e_per_s: float = 1.0) -> np.ndarray:
    """Load and validate an HDR file; return ``radiance_e_per_s`` float32 ``(3, H, W)``.

    ``scale_e_per_s`` converts the file's relative units to photo-electrons per second at
    the photosite of the target sensor (a file value of 1.0 becomes ``scale_e_per_s``).
    """
    path = Path(path)
    if not np.isfinite(scale_e_per_s) or scale_e_per_s <= 0:
        raise ValueError(f"scale_e_per_s must be positive and finite, got {scale_e_per_s}")
    arr = validate_radiance(load_hdr_file(path), name=os.fspath(path))
    if scale_e_per_s != 1.0:
        arr *= np.float32(scale_e_per_s)
    return arr
