"""Synthetic exposure experts: deterministic preference profiles that stand in for paper 001's
five MIT-FiveK retouchers (Section 6.2) on the project's radiance scenes.

Every expert looks at one statistic of the linear frame and wants it at its own target level
(levels are the raw signal normalised to the white level, 1.0 = clipping). Exposure is
counted in EV relative to the scene's base exposure ``e_base`` (paper 000 Sec. 5.3: the mean
raw level at half the white level), so at offset ``o`` EV a pixel of radiance ``phi`` records
the normalised level ``0.5 * phi / mean(mosaic) * 2**o``.

* ``neutral``: mean luminance of the frame at 0.45 (close to the native mean metering);
* ``bright_persons``: median luminance inside person / bike boxes at 0.30 (a labeller who
  wants faces and riders clearly visible); scenes without persons: log-average at 0.30;
* ``protect_highlights``: 99.5th percentile luminance at 0.70 (nothing important clips);
* ``favour_shadows``: 10th percentile luminance at 0.01 (dark areas keep detail, highlights
  may clip);
* ``readable_lights``: 95th percentile inside traffic-light boxes at 0.80 (signal colours not
  washed out); scenes without traffic lights: 98th percentile of the frame at 0.80.

The statistic asks for ``raw = log2(target / statistic(o = 0))`` EV. On our HDR scenes (44-128
dB) that spans -4 .. +8 EV (the mean-metered native exposure leaves night scenes dark), more
than any labeller would move, so the preferred exposure is the compromise
``p = PREFERENCE_LIMIT_EV * tanh(raw / PREFERENCE_SOFTNESS_EV)``: monotone in the statistic,
within 1 EV of the native exposure (measured on 120 training scenes, p10..p90 of ``raw``:
neutral -0.3..-0.1, bright_persons -0.4..8.2, protect_highlights -4.6..-0.3, favour_shadows
-3.1..6.4, readable_lights -3.5..2.9 EV; p10..p90 of ``p`` on 60 of them: neutral -0.07..-0.03,
bright_persons -0.04..0.97, protect_highlights -0.79..-0.02, favour_shadows -0.66..0.92,
readable_lights -0.73..0.62 EV). The expert labels a frame at
offset ``o`` as paper 001 Section 6.2 does: ``well`` if ``|o - p| < WELL_TOLERANCE_EV`` (0.1 EV),
``under`` below, ``over`` above; this equals comparing the statistic of the unclipped frame at
``o`` with the target, so labels are monotone in exposure by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from neural_ae_ros.classes import CLASS_ID

#: Paper 001 Sec. 6.2: "well-exposed ... when the difference is less than 0.1" (EV).
WELL_TOLERANCE_EV = 0.1
#: Preferences stay within this many EV of e_base.
PREFERENCE_LIMIT_EV = 1.0
#: EV of ``raw`` preference that move the compromise by tanh(1) * PREFERENCE_LIMIT_EV.
PREFERENCE_SOFTNESS_EV = 4.0
LABELS = ("under", "well", "over")
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float64)


@dataclass(frozen=True)
class SceneView:
    """What an expert may look at: radiance ``(3, H, W)`` e-/s, boxes (M, 4) xyxy pixels and
    their class ids, and the mean of the Bayer mosaic that defines ``e_base``."""

    radiance: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    mosaic_mean: float

    def level_at_base(self) -> np.ndarray:
        """(H, W) normalised luminance level at ``e_base`` (0.5 = the mosaic mean)."""
        lum = np.tensordot(_LUMA, self.radiance.astype(np.float64), axes=1)
        return 0.5 * lum / self.mosaic_mean

    def box_mask(self, class_names: Sequence[str]) -> np.ndarray:
        ids = {CLASS_ID[c] for c in class_names}
        h, w = self.radiance.shape[-2:]
        m = np.zeros((h, w), bool)
        for b, c in zip(self.boxes, self.labels):
            if int(c) in ids:
                x0, y0 = max(int(np.floor(b[0])), 0), max(int(np.floor(b[1])), 0)
                x1, y1 = min(int(np.ceil(b[2])), w), min(int(np.ceil(b[3])), h)
                if x1 > x0 and y1 > y0:
                    m[y0:y1, x0:x1] = True
        return m


def _log_average(v: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(np.maximum(v, 1e-6)))))


@dataclass(frozen=True)
class Expert:
    """One preference profile: ``statistic(view) -> level at e_base`` and its ``target`` level."""

    name: str
    description: str
    statistic: Callable[[SceneView], float]
    target: float

    def preferred_ev(self, view: SceneView) -> float:
        """Preferred exposure offset from ``e_base`` in EV, ``L tanh(raw / S)`` (module doc)."""
        s = float(self.statistic(view))
        if not np.isfinite(s) or s <= 0:
            return PREFERENCE_LIMIT_EV  # a black statistic: as bright as the labeller accepts
        raw = np.log2(self.target / s)
        return float(PREFERENCE_LIMIT_EV * np.tanh(raw / PREFERENCE_SOFTNESS_EV))

    def label(self, view_or_preference, exposure_ev: float) -> str:
        """``under`` / ``well`` / ``over`` for the frame captured ``exposure_ev`` EV from e_base."""
        p = view_or_preference if isinstance(view_or_preference, (float, int, np.floating)) \
            else self.preferred_ev(view_or_preference)
        return label_for_offset(float(exposure_ev) - float(p))


def label_for_offset(exposure_minus_preferred_ev: float) -> str:
    """Paper 001 Sec. 6.2 labelling of a frame ``d`` EV away from the preferred exposure."""
    d = float(exposure_minus_preferred_ev)
    if abs(d) < WELL_TOLERANCE_EV:
        return "well"
    return "under" if d < 0 else "over"


def _neutral(v: SceneView) -> float:
    return float(np.mean(v.level_at_base()))


def _persons(v: SceneView) -> float:
    m = v.box_mask(("person", "bike"))
    lv = v.level_at_base()
    return float(np.median(lv[m])) if m.sum() >= 4 else _log_average(lv)


def _highlights(v: SceneView) -> float:
    return float(np.percentile(v.level_at_base(), 99.5))


def _shadows(v: SceneView) -> float:
    return float(np.percentile(v.level_at_base(), 10.0))


def _lights(v: SceneView) -> float:
    m = v.box_mask(("traffic_light",))
    lv = v.level_at_base()
    return float(np.percentile(lv[m], 95.0)) if m.sum() >= 4 else float(np.percentile(lv, 98.0))


EXPERTS: Dict[str, Expert] = {e.name: e for e in (
    Expert("neutral", "mean luminance at 0.45 (near the native mean metering)", _neutral, 0.45),
    Expert("bright_persons", "median luminance of persons and riders at 0.30", _persons, 0.30),
    Expert("protect_highlights", "99.5th percentile luminance at 0.70 (no clipping)", _highlights, 0.70),
    Expert("favour_shadows", "10th percentile luminance at 0.01 (shadow detail)", _shadows, 0.01),
    Expert("readable_lights", "95th percentile inside traffic lights at 0.80", _lights, 0.80),
)}


def get_expert(name: str) -> Expert:
    try:
        return EXPERTS[name]
    except KeyError:
        raise ValueError(f"unknown expert {name!r}; expected one of {sorted(EXPERTS)}") from None


def preferences(view: SceneView, names: Optional[Sequence[str]] = None) -> Dict[str, float]:
    return {n: get_expert(n).preferred_ev(view) for n in (names or EXPERTS)}
