"""Constants of the Eq. 1-3 sensor model (paper 000 Section 3), without torch: nodes that only
need the sensor's levels (the histogram node) import this, not :mod:`sensor`."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

from neural_ae_ros.config import config_path, load_yaml

__all__ = ["DEFAULT_SENSOR_YAML", "SensorParams"]

DEFAULT_SENSOR_YAML = "sensor_imx249.yaml"


@dataclass(frozen=True)
class SensorParams:
    """Constants of the Eq. 1-3 sensor model (defaults: Sony IMX249-like, see the YAML)."""

    full_well_e: float = 32500.0  # M_well, e-
    g1_dn_per_e: float = 0.12  # gain at ISO 100 (K = 1), DN/e-
    dark_current_e_per_s: float = 5.0  # mu_d, e-/s
    read_noise_e: float = 6.9  # std of n_pre, e-
    post_noise_dn: float = 0.2  # std of n_post, DN
    white_level_dn: int = 4095  # M_white, DN
    black_level_dn: float = 64.0  # pedestal, DN
    max_analog_gain: float = 15.85  # K_max (24 dB)
    name: str = "imx249_like"

    def __post_init__(self) -> None:
        problems = []
        for f in ("full_well_e", "g1_dn_per_e", "max_analog_gain"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                problems.append(f"{f}={v!r} must be a finite number > 0")
        for f in ("dark_current_e_per_s", "read_noise_e", "post_noise_dn", "black_level_dn"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                problems.append(f"{f}={v!r} must be a finite number >= 0")
        wl = self.white_level_dn
        if not (isinstance(wl, (int, np.integer)) and wl > 0):
            problems.append(f"white_level_dn={wl!r} must be a positive integer")
        elif not (0 <= self.black_level_dn < wl):
            problems.append(
                f"black_level_dn={self.black_level_dn!r} must lie in [0, white_level_dn={wl})"
            )
        if isinstance(self.max_analog_gain, (int, float)) and self.max_analog_gain < 1:
            problems.append(f"max_analog_gain={self.max_analog_gain!r} must be >= 1")
        if problems:
            raise ValueError("invalid SensorParams: " + "; ".join(problems))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SensorParams":
        """Build from a mapping (the ``sensor:`` section of the YAML, or the whole file)."""
        if "sensor" in d and isinstance(d["sensor"], Mapping):
            d = d["sensor"]
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sensor parameter(s) {unknown}; expected some of {sorted(known)}")
        kw: dict = {}
        for k, v in d.items():
            if k == "name":
                kw[k] = str(v)
            elif k == "white_level_dn":
                if float(v) != int(v):
                    raise ValueError(f"white_level_dn={v!r} must be an integer")
                kw[k] = int(v)
            else:
                kw[k] = float(v)
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: Optional[Union[str, Path]] = None) -> "SensorParams":
        """Load from YAML; default ``<config dir>/sensor_imx249.yaml``."""
        return cls.from_dict(load_yaml(path if path is not None else config_path(DEFAULT_SENSOR_YAML)))

    def to_dict(self) -> dict:
        return asdict(self)

    # ------------------------------------------------------------------ derived
    def gain_dn_per_e(self, analog_gain: Any = 1.0) -> Any:
        """g = K * g1 (Eq. 2), DN per electron."""
        return analog_gain * self.g1_dn_per_e

    @property
    def signal_range_dn(self) -> float:
        """Usable DN range above the black level: M_white - black."""
        return float(self.white_level_dn) - float(self.black_level_dn)
