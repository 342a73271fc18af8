"""The one record of a scripted change of scene illumination (tunnel entry, a step of a test chart).

Built-in drives (:mod:`.drives`) script them, scene recordings (:mod:`.scene_bag`) store them on
``/scene/info`` and ``/scene/events``, radiance sources (:mod:`.sources`) hand them to the loop
runner, and :func:`neural_ae_ros.evaluation.loop_scores.step_events` scores the AE loop's
response to each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True)
class IlluminationEvent:
    """From frame ``frame_index`` on, the scene's mean radiance is ``factor`` times what it was.

    ``kind`` names the event (``tunnel_entry``, ``step_down``, ...); ``time_s`` is the drive time
    of that frame in seconds where the source has a clock (None otherwise). ``factor`` > 0 is a
    ratio of mean radiances (e-/s over e-/s): exact for scripted gains, measured on the rendered
    frames ~0.6-1 s either side of the event otherwise.
    """

    frame_index: int
    factor: float
    kind: str
    time_s: Optional[float] = None

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(f"illumination event {self.kind!r} at frame {self.frame_index}: factor must be > 0, "
                             f"got {self.factor}")

    def to_dict(self) -> dict:
        """The scene-bag JSON form: ``{"frame", "kind", "factor", "time_s"}``."""
        return dict(frame=self.frame_index, kind=self.kind, factor=self.factor, time_s=self.time_s)

    @classmethod
    def from_dict(cls, d: Mapping, where: str = "") -> "IlluminationEvent":
        """Inverse of :meth:`to_dict`; a missing or malformed field names ``where`` (file, topic)."""
        try:
            time_s = d.get("time_s")
            return cls(int(d["frame"]), float(d["factor"]), str(d["kind"]),
                       None if time_s is None else float(time_s))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where or 'illumination event'}: malformed event {dict(d)!r}: {exc}") from exc
