"""Differentiable image signal processor: 12-bit RGGB raw (DN) -> RGB.

Paper 000 (Onzon et al., CVPR 2021, Fig. 4) trains the auto-exposure network *through* an ISP
and the object detector; the same ISP runs live in the ``isp_node``. This module is that ISP,
in plain torch, with no ROS import.

Pipeline (parameters in ``config/isp.yaml``, names as in :class:`IspParams`):

1. black level and normalisation: ``x = (raw - black_level_dn) / (white_level_dn - black_level_dn)``
2. white balance: per-CFA-site gain ``wb_gains = (R, G, B)``, then clip to [0, 1] (clipping
   *after* the gains keeps saturated highlights white instead of pink)
3. demosaic: ``bilinear`` or ``malvar`` (Malvar, He, Cutler, ICASSP 2004) on the RGGB mosaic
   (R at (0, 0)). The 5x5 full-resolution kernels are rewritten as taps on the 4
   half-resolution CFA planes (R, G1, G2, B); every output sample is a short sum of shifted
   planes (28 taps for bilinear, 84 for Malvar), written straight into its place. This is the
   same linear map as a 4 -> 12 channel 3x3 ``conv2d`` + ``pixel_shuffle`` (the tests check
   that), several times faster on CPU, and differentiable.
4. colour correction: 3x3 matrix ``ccm`` (out = ccm @ in)
5. exposure normalisation: linear ``digital_gain``, then clip to [0, 1]
6. tone curve: sRGB OETF with the exponent ``1/gamma`` (``gamma = 2.4`` is exactly sRGB)

Steps 3-5 are linear; when the colour matrix is ``c * identity`` and no gradient is needed
(the live default) it is folded into the demosaic taps, otherwise it is one 3x3 matrix
product.

Options: ``binning=True`` replaces demosaicing by 2x2 quad binning (R, mean(G1, G2), B) and
outputs half resolution: the fast path for live use when full-resolution output is not needed
(the detector runs at 320x192 anyway).

Outputs: :meth:`Isp.forward` gives float [0, 1] ``(..., 3, H, W)`` with gradients (training);
:meth:`Isp.to_rgb8` gives ``uint8 (H, W, 3)`` for the node (no gradients, LUT tone curve).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from neural_ae_ros.config import config_path, is_ros_parameters_file, load_yaml, ros_parameters


DEFAULT_CONFIG_NAME = "isp.yaml"

#: Raw image encodings the ISP accepts (sensor_msgs/Image names).
RAW_ENCODINGS = ("bayer_rggb16",)
DEMOSAIC_METHODS = ("bilinear", "malvar")
#: The node whose entry of a ``ros__parameters`` file holds the ISP parameters.
ISP_NODE_NAME = "isp_node"
LEARNABLE_NAMES = ("wb_gains", "ccm", "digital_gain", "gamma")

_SRGB_LINEAR_THRESHOLD = 0.0031308
_LUT_BITS = 14  # to_rgb8 quantises linear values to 2**14 levels before its LUT (< 0.5 LSB error)


class IspInputError(ValueError):
    """A raw frame the ISP cannot process (wrong encoding, shape, dtype or size)."""


@dataclass
class IspParams:
    """Named ISP parameters. Units: DN for levels, linear factors for gains."""

    #: Pedestal subtracted from every raw value (DN); equals the sensor's black level.
    black_level_dn: float = 64.0
    #: Raw value of a saturated pixel (DN), 2**12 - 1 for a 12-bit sensor.
    white_level_dn: float = 4095.0
    #: White-balance gains (R, G, B), applied on the mosaic before demosaicing.
    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: Colour correction matrix, row-major, out = ccm @ in (camera RGB -> linear sRGB).
    ccm: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    #: Linear gain applied after colour correction, before the tone curve.
    digital_gain: float = 1.0
    #: Exponent of the tone curve: out = 1.055 x^(1/gamma) - 0.055 (2.4 = sRGB).
    gamma: float = 2.4
    #: ``bilinear`` or ``malvar``.
    demosaic: str = "bilinear"
    #: 2x2 quad binning to half resolution instead of demosaicing.
    binning: bool = False
    #: Names from :data:`LEARNABLE_NAMES` that training may tune.
    learnable: dict[str, bool] = field(
        default_factory=lambda: {"wb_gains": False, "ccm": True, "digital_gain": True, "gamma": True})

    def __post_init__(self) -> None:
        self.wb_gains = tuple(float(g) for g in self.wb_gains)
        self.ccm = tuple(tuple(float(v) for v in row) for row in self.ccm)
        if len(self.wb_gains) != 3 or any(g <= 0 for g in self.wb_gains):
            raise ValueError(f"wb_gains must be 3 positive numbers, got {self.wb_gains}")
        if len(self.ccm) != 3 or any(len(r) != 3 for r in self.ccm):
            raise ValueError("ccm must be a 3x3 matrix")
        if not self.white_level_dn > self.black_level_dn >= 0:
            raise ValueError(f"need 0 <= black_level_dn < white_level_dn, got "
                             f"{self.black_level_dn}, {self.white_level_dn}")
        if self.digital_gain <= 0 or self.gamma <= 0:
            raise ValueError("digital_gain and gamma must be positive")
        if self.demosaic not in DEMOSAIC_METHODS:
            raise ValueError(f"demosaic must be one of {DEMOSAIC_METHODS}, got {self.demosaic!r}")
        unknown = set(self.learnable) - set(LEARNABLE_NAMES)
        if unknown:
            raise ValueError(f"unknown learnable parameter(s) {sorted(unknown)}; known: {LEARNABLE_NAMES}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "IspParams":
        """A mapping of this class's fields, or a ``ros__parameters`` file (``/**/isp_node``
        entry, as ``config/isp.yaml``); ``ccm`` as 3 rows or 9 numbers row-major."""
        if is_ros_parameters_file(d):
            d = ros_parameters(d, ISP_NODE_NAME)
        d = dict(d.get("isp", d))
        if "ccm" in d and len(d["ccm"]) == 9 and not any(isinstance(v, (list, tuple)) for v in d["ccm"]):
            d["ccm"] = [d["ccm"][0:3], d["ccm"][3:6], d["ccm"][6:9]]
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ISP parameter(s) {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> "IspParams":
        """``config/isp.yaml`` (or ``path``); errors name the file."""
        path = path if path is not None else config_path(DEFAULT_CONFIG_NAME)
        data = load_yaml(path)
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def from_sensor(cls, sensor_params: Any, path: str | Path | None = None, **overrides) -> "IspParams":
        """ISP parameters from ``config/isp.yaml`` with the sensor's black and white levels."""
        p = cls.from_yaml(path)
        p.black_level_dn = float(sensor_params.black_level_dn)
        p.white_level_dn = float(sensor_params.white_level_dn)
        for k, v in overrides.items():
            setattr(p, k, v)
        p.__post_init__()
        return p

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["wb_gains"] = list(self.wb_gains)
        d["ccm"] = [list(r) for r in self.ccm]
        return d


# --------------------------------------------------------------------------------------
# Demosaic kernels. For every output colour c and CFA site s (0=R, 1=G1 (R row), 2=G2 (B row),
# 3=B) a 5x5 kernel on the *whole* mosaic. They are turned into one 4 -> 12 channel 3x3
# convolution on the half-resolution CFA planes.
# --------------------------------------------------------------------------------------
def _full_res_kernels(method: str) -> np.ndarray:
    """(3 colours, 4 sites, 5, 5) kernels applied to the mosaic around a pixel of each site."""
    k = np.zeros((3, 4, 5, 5), np.float64)
    ident = np.zeros((5, 5)); ident[2, 2] = 1
    if method == "bilinear":
        cross = np.zeros((5, 5)); cross[1, 2] = cross[3, 2] = cross[2, 1] = cross[2, 3] = 0.25
        diag = np.zeros((5, 5)); diag[1, 1] = diag[1, 3] = diag[3, 1] = diag[3, 3] = 0.25
        horiz = np.zeros((5, 5)); horiz[2, 1] = horiz[2, 3] = 0.5
        vert = horiz.T.copy()
        g_at_rb, rb_at_g_rowsame, rb_at_g_colsame, rb_at_opposite = cross, horiz, vert, diag
    elif method == "malvar":
        g_at_rb = np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1],
                            [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]], np.float64) / 8
        # colour present left/right of the green pixel (e.g. R at G1 in an R row)
        rb_at_g_rowsame = np.array([[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1],
                                    [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]], np.float64) / 8
        rb_at_g_colsame = rb_at_g_rowsame.T.copy()
        rb_at_opposite = np.array([[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5],
                                   [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]], np.float64) / 8
    else:
        raise ValueError(method)
    R, G, B = 0, 1, 2
    SR, SG1, SG2, SB = 0, 1, 2, 3
    k[R, SR] = ident; k[G, SR] = g_at_rb; k[B, SR] = rb_at_opposite
    k[R, SG1] = rb_at_g_rowsame; k[G, SG1] = ident; k[B, SG1] = rb_at_g_colsame
    k[R, SG2] = rb_at_g_colsame; k[G, SG2] = ident; k[B, SG2] = rb_at_g_rowsame
    k[R, SB] = rb_at_opposite; k[G, SB] = g_at_rb; k[B, SB] = ident
    return k


def _half_res_weight(method: str) -> torch.Tensor:
    """(3, 4 out sites, 4 in planes, 3, 3): conv weight on pixel_unshuffle'd planes.

    Output pixel at full-res (2y+i, 2x+j); kernel tap (dy, dx) reads full-res
    (2y+i+dy, 2x+j+dx) = plane ((i+dy)%2, (j+dx)%2) at half-res (y + (i+dy)//2, x + (j+dx)//2).
    """
    full = _full_res_kernels(method)
    w = np.zeros((3, 4, 4, 3, 3), np.float64)
    for c in range(3):
        for s in range(4):
            i, j = divmod(s, 2)
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    v = full[c, s, dy + 2, dx + 2]
                    if v == 0:
                        continue
                    pi, pj = (i + dy) % 2, (j + dx) % 2
                    hy, hx = (i + dy) // 2, (j + dx) // 2
                    w[c, s, pi * 2 + pj, hy + 1, hx + 1] += v
    return torch.from_numpy(w).float()


def srgb_oetf(x: torch.Tensor, gamma: torch.Tensor | float = 2.4) -> torch.Tensor:
    """sRGB transfer curve on linear x in [0, 1] with exponent 1/gamma (2.4 = sRGB)."""
    hi = 1.055 * torch.clamp(x, min=_SRGB_LINEAR_THRESHOLD) ** (1.0 / gamma) - 0.055
    return torch.where(x <= _SRGB_LINEAR_THRESHOLD, 12.92 * x, hi)


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of the same shape."""
    a = torch.as_tensor(np.asarray(a, dtype=np.float64) if not torch.is_tensor(a) else a).double()
    b = torch.as_tensor(np.asarray(b, dtype=np.float64) if not torch.is_tensor(b) else b).double()
    mse = torch.mean((a - b) ** 2).item()
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)


def validate_raw(raw: Any, encoding: str | None = None, expected_hw: tuple[int, int] | None = None) -> None:
    """Raise :class:`IspInputError` unless ``raw`` is an RGGB mosaic the ISP can process
    (and, with ``expected_hw``, of that (height, width))."""
    if encoding is not None and encoding not in RAW_ENCODINGS:
        raise IspInputError(f"raw image encoding {encoding!r} not supported; expected one of {RAW_ENCODINGS}")
    if not isinstance(raw, (np.ndarray, torch.Tensor)):
        raise IspInputError(f"raw must be a numpy array or torch tensor, got {type(raw).__name__}")
    if raw.ndim < 2:
        raise IspInputError(f"raw must be (..., H, W), got shape {tuple(raw.shape)}")
    h, w = raw.shape[-2:]
    if h < 4 or w < 4 or h % 2 or w % 2:
        raise IspInputError(f"raw height and width must be even and >= 4 (RGGB 2x2 pattern), got {h}x{w}")
    dt = raw.dtype
    ok = (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)) if isinstance(raw, np.ndarray) \
        else (dt.is_floating_point or dt in (torch.uint8, torch.int16, torch.int32, torch.int64, torch.uint16))
    if not ok:
        raise IspInputError(f"raw dtype {dt} not supported")
    if expected_hw is not None and (h, w) != tuple(expected_hw):
        raise IspInputError(f"raw frame is {w}x{h}, expected {expected_hw[1]}x{expected_hw[0]}")


def _demosaic_terms(method: str) -> list[list[tuple[int, int, int, float]]]:
    """Sparse form of :func:`_half_res_weight`: for output k = colour*4 + site, the list of
    (plane, ky, kx, weight) taps. Bilinear has 28 taps in all, Malvar 84: far fewer
    multiply-adds than a dense 4 -> 12 convolution, and no slow small-channel conv2d on CPU."""
    w = _half_res_weight(method).reshape(12, 4, 3, 3)
    terms = []
    for k in range(12):
        nz = torch.nonzero(w[k], as_tuple=False).tolist()
        terms.append([(q, ky, kx, float(w[k, q, ky, kx])) for q, ky, kx in nz])
    return terms


class Isp(torch.nn.Module):
    """Differentiable RGGB -> RGB ISP (see module docstring for the pipeline).

    ``forward(raw_dn)``: raw ``(..., H, W)`` in DN (float or integer) -> float ``(..., 3, H, W)``
    in [0, 1] (``(..., 3, H/2, W/2)`` with binning). Gradients flow to the raw input and to the
    learnable parameters. :meth:`to_rgb8` runs the same stages (:meth:`linear`) without
    gradients and applies the tone curve through a lookup table.
    """

    def __init__(self, params: IspParams | None = None):
        super().__init__()
        self.params = params = params if params is not None else IspParams()
        lr = params.learnable
        self.wb_gains = torch.nn.Parameter(torch.tensor(params.wb_gains, dtype=torch.float32),
                                           requires_grad=bool(lr.get("wb_gains", False)))
        self.ccm = torch.nn.Parameter(torch.tensor(params.ccm, dtype=torch.float32),
                                      requires_grad=bool(lr.get("ccm", False)))
        # log-parametrised so that it stays positive under gradient steps
        self.log_digital_gain = torch.nn.Parameter(torch.tensor(float(np.log(params.digital_gain))),
                                                   requires_grad=bool(lr.get("digital_gain", False)))
        self.log_gamma = torch.nn.Parameter(torch.tensor(float(np.log(params.gamma))),
                                            requires_grad=bool(lr.get("gamma", False)))
        self.register_buffer("black_level_dn", torch.tensor(float(params.black_level_dn)), persistent=False)
        self.register_buffer("white_level_dn", torch.tensor(float(params.white_level_dn)), persistent=False)
        self._terms = _demosaic_terms(params.demosaic)
        self._lut_cache: tuple | None = None

    # ---------------------------------------------------------------- properties
    @property
    def digital_gain(self) -> torch.Tensor:
        return self.log_digital_gain.exp()

    @property
    def gamma(self) -> torch.Tensor:
        return self.log_gamma.exp()

    @property
    def binning(self) -> bool:
        return self.params.binning

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the RGB output for a raw frame of (height, width)."""
        return (height // 2, width // 2) if self.params.binning else (height, width)

    def current_params(self) -> IspParams:
        """Parameters with the current (possibly trained) values, e.g. to write back to YAML."""
        p = dataclasses.replace(self.params)
        p.wb_gains = tuple(self.wb_gains.detach().tolist())
        p.ccm = tuple(tuple(r) for r in self.ccm.detach().tolist())
        p.digital_gain = float(self.digital_gain)
        p.gamma = float(self.gamma)
        return p

    # ---------------------------------------------------------------- stages
    def _site_gains(self) -> torch.Tensor:
        """(4,1,1) white-balance gain per CFA plane (R, G1, G2, B), including normalisation."""
        scale = 1.0 / (self.white_level_dn - self.black_level_dn)
        g = self.wb_gains
        return (torch.stack([g[0], g[1], g[1], g[2]]) * scale).view(4, 1, 1)

    def planes(self, raw_dn: torch.Tensor) -> torch.Tensor:
        """(N, H, W) raw -> (N, 4, H/2 (+2), W/2 (+2)) normalised, white-balanced, clipped CFA
        planes R, G1, G2, B (with a 1-pixel half-resolution border when demosaicing)."""
        x = raw_dn
        if not self.params.binning:
            x = F.pad(x.unsqueeze(1), (2, 2, 2, 2), mode="reflect").squeeze(1)  # keeps CFA parity
        n, h, w = x.shape
        p = x.reshape(n, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3).reshape(n, 4, h // 2, w // 2)
        return torch.clamp((p - self.black_level_dn) * self._site_gains(), 0.0, 1.0)

    def demosaic(self, p: torch.Tensor, scale: float | torch.Tensor = 1.0, layout: str = "chw") -> torch.Tensor:
        """Padded planes (N, 4, h+2, w+2) -> camera RGB at full resolution, times ``scale``.

        ``layout="chw"`` gives (N, 3, 2h, 2w) (training), ``"hwc"`` gives (N, 2h, 2w, 3) (the
        rgb8 message layout; writing it directly saves an interleaving copy on the live path).
        Each output sample is a short sum of shifted half-resolution planes (the taps of
        :func:`_demosaic_terms`), written straight into its place in the output.
        """
        n, _, hp, wp = p.shape
        h, w = hp - 2, wp - 2
        grad = torch.is_grad_enabled() and (p.requires_grad or torch.is_tensor(scale) and scale.requires_grad)
        if layout == "chw":
            out = p.new_empty(n, 3, h, 2, w, 2)
            view = lambda c, i, j: out[:, c, :, i, :, j]  # noqa: E731
        elif layout == "hwc":
            out = p.new_empty(n, h, 2, w, 2, 3)
            view = lambda c, i, j: out[:, :, i, :, j, c]  # noqa: E731
        else:
            raise ValueError(f"layout must be 'chw' or 'hwc', got {layout!r}")
        for k, taps in enumerate(self._terms):
            c, site = divmod(k, 4)
            dst = view(c, *divmod(site, 2))
            for t, (q, ky, kx, wt) in enumerate(taps):
                src = p[:, q, ky:ky + h, kx:kx + w]
                wt = wt * scale
                if t > 0:
                    dst.add_(src * wt) if grad and torch.is_tensor(wt) else dst.add_(src, alpha=float(wt))
                elif not torch.is_tensor(wt) and wt == 1.0:
                    dst.copy_(src)
                elif grad:
                    dst.copy_(src * wt)
                else:
                    torch.mul(src, float(wt), out=dst)
        if layout == "chw":
            return out.view(n, 3, 2 * h, 2 * w)
        return out.view(n, 2 * h, 2 * w, 3)

    def _colour_matrix(self) -> torch.Tensor:
        return self.ccm * self.digital_gain

    def linear(self, raw_dn: torch.Tensor, scale: float = 1.0, layout: str = "chw") -> torch.Tensor:
        """Raw (N, H, W) -> linear RGB after CCM and digital gain, clipped to [0, scale];
        (N, 3, H', W') for ``layout="chw"``, (N, H', W', 3) for ``"hwc"``."""
        p = self.planes(raw_dn)
        m = self._colour_matrix() * scale
        grad = torch.is_grad_enabled() and (m.requires_grad or p.requires_grad)
        # Live path: a diagonal "c * identity" matrix folds into the demosaic weights.
        diag = not grad and bool(torch.equal(m, torch.eye(3, dtype=m.dtype, device=m.device) * m[0, 0]))
        if self.params.binning:
            d = torch.stack([p[:, 0], 0.5 * (p[:, 1] + p[:, 2]), p[:, 3]], dim=1 if layout == "chw" else -1)
            if diag and float(m[0, 0]) != 1.0:
                d.mul_(float(m[0, 0]))
        else:
            d = self.demosaic(p, float(m[0, 0]) if diag else 1.0, layout)
        if not diag:
            d = torch.einsum("oc,nchw->nohw", m, d) if layout == "chw" else d @ m.T
        return torch.clamp_(d, 0.0, scale) if not grad else torch.clamp(d, 0.0, scale)

    def _as_batch(self, raw_dn: Any) -> tuple[torch.Tensor, tuple]:
        if not torch.is_tensor(raw_dn):
            raise IspInputError(f"raw must be a torch tensor, got {type(raw_dn).__name__}")
        validate_raw(raw_dn)
        lead = tuple(raw_dn.shape[:-2])
        h, w = raw_dn.shape[-2:]
        x = raw_dn.reshape(-1, h, w)
        if not x.is_floating_point():
            x = x.to(torch.int32) if x.dtype == torch.uint16 else x
        return x.to(self.ccm.dtype), lead

    def linear_rgb(self, raw_dn: torch.Tensor) -> torch.Tensor:
        """Raw (..., H, W) -> linear RGB (..., 3, H', W') after CCM and gain, clipped to [0, 1]."""
        x, lead = self._as_batch(raw_dn)
        d = self.linear(x)
        return d.reshape(*lead, *d.shape[1:])

    def forward(self, raw_dn: torch.Tensor) -> torch.Tensor:
        """Raw (..., H, W) in DN -> display RGB (..., 3, H', W') in [0, 1], differentiable."""
        x, lead = self._as_batch(raw_dn)
        d = srgb_oetf(self.linear(x), self.gamma)
        return d.reshape(*lead, *d.shape[1:])

    # ---------------------------------------------------------------- live path
    def _lut(self) -> torch.Tensor:
        """uint8 sRGB values for linear bins [i, i+1) / 2**_LUT_BITS (bin centres)."""
        key = float(self.log_gamma)
        if self._lut_cache is None or self._lut_cache[0] != key:
            n = 2 ** _LUT_BITS
            lin = (torch.arange(n, dtype=torch.float64) + 0.5) / n
            lin[-1] = 1.0  # the top bin holds exactly-saturated values
            lut = torch.round(srgb_oetf(lin, float(self.gamma)) * 255).to(torch.uint8)
            self._lut_cache = (key, lut)
        return self._lut_cache[1]

    @torch.inference_mode()
    def to_rgb8(self, raw: np.ndarray | torch.Tensor, encoding: str | None = None,
                expected_hw: tuple[int, int] | None = None) -> np.ndarray:
        """One raw frame (H, W) in DN -> ``uint8 (H', W', 3)`` for an rgb8 Image.

        Same stages as :meth:`forward`; the tone curve is a 2**14-entry lookup table on the
        clipped linear value (within 1 LSB of rounding ``forward``'s output * 255).
        Raises :class:`IspInputError` on a wrong encoding, shape, size or dtype.
        """
        validate_raw(raw, encoding, expected_hw)
        if raw.ndim != 2:
            raise IspInputError(f"to_rgb8 takes one frame (H, W), got shape {tuple(raw.shape)}")
        t = torch.from_numpy(np.ascontiguousarray(raw)) if isinstance(raw, np.ndarray) else raw
        x, _ = self._as_batch(t)
        n = 2 ** _LUT_BITS
        d = self.linear(x, scale=float(n), layout="hwc")[0].clamp_(max=n - 1)
        idx = d.to(torch.int32)  # truncation = bin index
        rgb = torch.index_select(self._lut(), 0, idx.view(-1))
        return rgb.view(idx.shape).numpy()


def load_isp(path: str | Path | None = None, sensor_params: Any = None, **overrides) -> Isp:
    """Build an :class:`Isp` from YAML (default ``config/isp.yaml``), optionally with the
    sensor's black/white levels and field overrides (e.g. ``binning=True``)."""
    if sensor_params is not None:
        params = IspParams.from_sensor(sensor_params, path, **overrides)
    else:
        params = IspParams.from_yaml(path)
        for k, v in overrides.items():
            setattr(params, k, v)
        params.__post_init__()
    return Isp(params)
