"""Loading (and writing, for tests and exports) real HDR radiance files.

Formats
- OpenEXR (``.exr``) through the ``openexr`` package (``OpenEXR.File``); channels ``RGB``,
  ``RGBA``, separate ``R``/``G``/``B`` or a single luminance channel ``Y``.
- Radiance RGBE (``.hdr``, ``.pic``), read and written by a small reader/writer in this module
  (new run-length scanlines, old flat scanlines; standard ``-Y H +X W`` orientation and its
  flips).

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
    "validate_radiance",
    "write_exr",
    "write_hdr",
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
def load_exr(path) -> np.ndarray:
    """Read an OpenEXR file into float32 ``(3, H, W)`` (not validated for values)."""
    path = Path(path)
    if not path.is_file():
        raise HDRLoadError(path, "no such file")
    try:
        import OpenEXR  # noqa: WPS433 (optional heavy import)
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise HDRLoadError(path, f"the 'openexr' package is needed to read EXR ({exc})") from exc
    try:
        with OpenEXR.File(str(path)) as f:
            channels = f.channels()
            if "RGB" in channels or "RGBA" in channels:
                arr = np.asarray(channels["RGB" if "RGB" in channels else "RGBA"].pixels)
                arr = arr[..., :3]
            elif all(c in channels for c in ("R", "G", "B")):
                arr = np.stack([np.asarray(channels[c].pixels) for c in ("R", "G", "B")], -1)
            elif "Y" in channels:
                y = np.asarray(channels["Y"].pixels)
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
_RES_RE = re.compile(rb"^([-+])([YX])\s+(\d+)\s+([-+])([YX])\s+(\d+)\s*$")


def _rgbe_to_float(rgbe: np.ndarray) -> np.ndarray:
    """(..., 4) uint8 RGBE -> (..., 3) float32, Radiance convention (m + 0.5) * 2^(e-136)."""
    e = rgbe[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float32)
    return (rgbe[..., :3].astype(np.float32) + 0.5) * scale[..., None]


def load_hdr(path) -> np.ndarray:
    """Read a Radiance RGBE ``.hdr`` file into float32 ``(3, H, W)``."""
    path = Path(path)
    if not path.is_file():
        raise HDRLoadError(path, "no such file")
    data = path.read_bytes()
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise HDRLoadError(path, "not a Radiance .hdr file (missing '#?RADIANCE' signature)")
    # header: lines until an empty line; then the resolution line
    pos = 0
    fmt = None
    exposure = 1.0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise HDRLoadError(path, "truncated header")
        line = data[pos:nl].strip()
        pos = nl + 1
        if not line:
            break
        if line.startswith(b"FORMAT="):
            fmt = line[7:].decode("ascii", "replace")
        elif line.startswith(b"EXPOSURE="):
            try:
                exposure *= float(line[9:])
            except ValueError:
                pass
    if fmt is not None and fmt != "32-bit_rle_rgbe":
        raise HDRLoadError(path, f"unsupported FORMAT={fmt} (only 32-bit_rle_rgbe)")
    nl = data.find(b"\n", pos)
    if nl < 0:
        raise HDRLoadError(path, "truncated header (no resolution line)")
    m = _RES_RE.match(data[pos:nl].strip())
    if not m:
        raise HDRLoadError(path, f"bad resolution line {data[pos:nl][:40]!r}")
    pos = nl + 1
    s1, a1, n1, s2, a2, n2 = m.groups()
    if a1 == a2:
        raise HDRLoadError(path, "bad resolution line (same axis twice)")
    n1, n2 = int(n1), int(n2)
    height, width = (n1, n2) if a1 == b"Y" else (n2, n1)
    if height <= 0 or width <= 0:
        raise HDRLoadError(path, f"empty image {width}x{height}")
    nscan, scanlen = n1, n2
    buf = np.frombuffer(data, dtype=np.uint8)
    out = np.empty((nscan, scanlen, 4), np.uint8)
    try:
        for s in range(nscan):
            pos = _read_scanline(buf, pos, scanlen, out[s])
    except IndexError as exc:
        raise HDRLoadError(path, f"truncated pixel data ({exc})") from exc
    img = _rgbe_to_float(out)  # (n1, n2, 3) in file order
    if a1 == b"X":  # scanlines are columns
        img = np.swapaxes(img, 0, 1)
        sy, sx = s2, s1
    else:
        sy, sx = s1, s2
    if sy == b"+":  # +Y: bottom to top
        img = img[::-1]
    if sx == b"-":
        img = img[:, ::-1]
    if exposure != 1.0 and exposure > 0:
        img = img / np.float32(exposure)
    return np.ascontiguousarray(np.moveaxis(img, -1, 0))


def _read_scanline(buf: np.ndarray, pos: int, width: int, out: np.ndarray) -> int:
    """Decode one scanline into ``out`` (width, 4); return the new position."""
    if pos + 4 > buf.size:
        raise IndexError("scanline header past end of file")
    b0, b1, b2, b3 = (int(v) for v in buf[pos:pos + 4])
    if not (8 <= width <= 0x7FFF and b0 == 2 and b1 == 2 and (b2 & 0x80) == 0):
        # flat (old-style run-length with repeat pixels is not supported: flat only)
        end = pos + 4 * width
        if end > buf.size:
            raise IndexError("flat scanline past end of file")
        out[:] = buf[pos:end].reshape(width, 4)
        return end
    if ((b2 << 8) | b3) != width:
        raise IndexError("scanline width mismatch")
    pos += 4
    for c in range(4):
        x = 0
        while x < width:
            count = int(buf[pos])
            pos += 1
            if count > 128:
                count -= 128
                if x + count > width:
                    raise IndexError("run overflows scanline")
                out[x:x + count, c] = buf[pos]
                pos += 1
            else:
                if count == 0 or x + count > width:
                    raise IndexError("bad literal count")
                if pos + count > buf.size:
                    raise IndexError("literal past end of file")
                out[x:x + count, c] = buf[pos:pos + count]
                pos += count
            x += count
    return pos


def write_hdr(path, rgb_chw: np.ndarray) -> None:
    """Write float ``(3, H, W)`` linear RGB as a Radiance RGBE file (RLE scanlines, literals)."""
    rgb = np.moveaxis(np.asarray(rgb_chw, dtype=np.float64), 0, -1)
    rgb = np.maximum(rgb, 0.0)
    h, w, _ = rgb.shape
    v = rgb.max(-1)
    mant, expo = np.frexp(v)
    scale = np.where(v > 1e-32, mant * 256.0 / np.where(v > 1e-32, v, 1.0), 0.0)
    rgbe = np.zeros((h, w, 4), np.uint8)
    rgbe[..., :3] = np.clip(np.floor(rgb * scale[..., None]), 0, 255).astype(np.uint8)
    rgbe[..., 3] = np.where(v > 1e-32, np.clip(expo + 128, 0, 255), 0).astype(np.uint8)
    parts = [b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n", f"-Y {h} +X {w}\n".encode()]
    rle = 8 <= w <= 0x7FFF
    for y in range(h):
        if not rle:
            parts.append(rgbe[y].tobytes())
            continue
        parts.append(bytes([2, 2, w >> 8, w & 0xFF]))
        for c in range(4):
            row = rgbe[y, :, c]
            for x0 in range(0, w, 128):
                chunk = row[x0:x0 + 128]
                parts.append(bytes([chunk.size]) + chunk.tobytes())
    Path(path).write_bytes(b"".join(parts))


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
