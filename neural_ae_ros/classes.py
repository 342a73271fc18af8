"""The six object classes of paper 000 (Section 6.1, Table 1), in the project's index order.

Class id ``i`` is ``CLASS_NAMES[i]`` everywhere: scene labels (``class_id``), the detector's
outputs, the metrics' label indices and the checkpoint's ``classes`` list.

- ``bike``: bicycle with its rider (the rider is part of the bike box);
- ``bus_truck``, ``car_van``, ``person``;
- ``traffic_light``: the signal housing, not the pole;
- ``traffic_sign``: the sign panel, not the pole.
"""
from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("bike", "bus_truck", "car_van", "person", "traffic_light", "traffic_sign")
#: class name -> class id (index into :data:`CLASS_NAMES`)
CLASS_ID: dict[str, int] = {c: i for i, c in enumerate(CLASS_NAMES)}
