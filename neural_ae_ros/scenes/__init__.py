"""HDR scene generation for training and testing learned auto-exposure (issue 3).

Modules:

Procedural road worlds (street canyons, rural roads, tunnels, bridges, day / low sun / dusk /
night lighting), rendered by a vectorised ray caster:

- :mod:`.radiometry` — the absolute radiance scale (``radiance_e_per_s``, 1 cd/m^2 = 2300 e-/s)
  and the scene dynamic range in dB.
- :mod:`.world` — scene kinds and the random sampling of a world (buildings, tunnel, bridge,
  lamps, sun, sky); :mod:`.materials` — material ids and albedos; :mod:`.textures` — noise.
- :mod:`.camera_geometry` — the pinhole camera (pose, projection, rays).
- :mod:`.lighting` — sun with shadows, sky ambient, tunnel / street lamps, headlights, sky.
- :mod:`.background` — the ray-cast background (radiance terms, depth, materials).

Objects (the six classes of :mod:`neural_ae_ros.classes`):

- :mod:`.placement` — :class:`~.placement.ObjectSpec`, random objects and where they stand.
- :mod:`.canvas` and :mod:`.sprites` — the parametric sprites drawn in metres.
- :mod:`.compositing` — objects over a background: lighting, shadows, depth test, exact boxes
  from instance masks and the occlusion rule.

Scenes and recordings:

- :mod:`.panorama` — perspective crops of the shipped CC0 HDR panoramas, heading sectors per split.
- :mod:`.drives` — scene stages and :class:`~.drives.DriveSource`, scripted drives with
  illumination events (the camera bridge's built-in scene source).
- :mod:`.generate` — splits, seeds, pairs of consecutive frames, storage and ``index.json``.
- :mod:`.contact_sheet` — tone-mapped PNG grids with boxes.
- :mod:`.scene_bag` — scene recordings (rosbag2 MCAP) and their one schema; :mod:`.sources` —
  radiance sources of the camera bridge (drive, step test, bag).
- :mod:`.user_data` — the user's own HDR files and exposure brackets (Eq. 7) into scene bags.
"""
