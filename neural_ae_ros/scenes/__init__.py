"""HDR scene generation for training and testing learned auto-exposure (issue 3).

Modules:

- :mod:`.procedural` — road worlds (street canyons, rural roads, tunnels, bridges, day / low
  sun / dusk / night lighting) rendered by a vectorised ray caster; the absolute radiance scale
  (``radiance_e_per_s``, 1 cd/m^2 = 2300 e-/s) is documented there.
- :mod:`.objects` — the six classes (``CLASSES``) as parametric sprites, placement, lighting,
  compositing with exact boxes from instance masks, and the occlusion rule.
- :mod:`.panorama` — perspective crops of the shipped CC0 HDR panoramas, heading sectors per split.
- :mod:`.drives` — scene stages and :class:`~.drives.DriveSource`, scripted drives with
  illumination events (the camera bridge's built-in scene source).
- :mod:`.generate` — splits, seeds, pairs of consecutive frames, storage and ``index.json``.
- :mod:`.contact_sheet` — tone-mapped PNG grids with boxes.
"""
