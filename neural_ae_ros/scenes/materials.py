"""Surface materials of the procedural world: ids, names, albedo per material, which are ground.
"""
from __future__ import annotations

import numpy as np

# material ids (values of :attr:`.background.Background.material`)
SKY, ROAD, MARKING, SIDEWALK, VERGE, FACADE, WINDOW, T_WALL, T_CEIL, PORTAL, BRIDGE, TREES, CURB = range(13)
MATERIAL_NAMES = ["sky", "road", "marking", "sidewalk", "verge", "facade", "window", "tunnel_wall",
                  "tunnel_ceiling", "portal", "bridge", "trees", "curb"]


ALBEDO_LUT = np.zeros((16, 3), np.float32)
for _m, _rgb in {
    1: (0.085, 0.085, 0.09), 2: (0.55, 0.55, 0.52), 3: (0.28, 0.27, 0.25), 4: (0.07, 0.11, 0.04),
    12: (0.35, 0.35, 0.33), 6: (0.02, 0.024, 0.028), 7: (0.45, 0.45, 0.42), 8: (0.04, 0.04, 0.04),
    9: (0.3, 0.29, 0.27), 10: (0.32, 0.31, 0.3), 11: (0.05, 0.09, 0.035), 5: (0.4, 0.38, 0.35),
}.items():
    ALBEDO_LUT[_m] = _rgb
GROUND_LUT = np.zeros(16, bool)
GROUND_LUT[[1, 2, 3, 4, 12]] = True
