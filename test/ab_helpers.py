"""Small scene recordings and hand-made A/B bags for the A/B evaluation tests (fast: no rendering)."""
import numpy as np

from neural_ae_ros.classes import CLASS_NAMES
from neural_ae_ros.scenes.illumination_events import IlluminationEvent
from neural_ae_ros.scenes.scene_bag import SceneBagWriter

#: A car and a sign per frame, in a 128 x 96 frame.
BOXES = [dict(cls="car_van", box=[20.0, 40.0, 60.0, 70.0], id=1), dict(cls="traffic_sign", box=[90.0, 10.0, 110.0, 30.0], id=2)]


def write_step_scene(path, frames=12, width=128, height=96, fps=30.0, step_frame=5, factor=0.05):
    """A textured chart whose light drops by ``factor`` at ``step_frame`` (a tunnel entry), with
    two labelled boxes per frame; radiance in e-/s."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = (1.0 + 0.5 * np.sin(xx * 0.3) * np.sin(yy * 0.4)) * 10 ** (xx / width)
    base *= 2.0e6 / base.mean()
    rgb = np.stack([base * 0.9, base, base * 0.8]).astype(np.float32)
    events = [IlluminationEvent(step_frame, factor, "tunnel_entry", step_frame / fps)]
    info = dict(drive="step_chart", seed=0, frames=frames, classes=list(CLASS_NAMES),
                events=[e.to_dict() for e in events])
    with SceneBagWriter(path, width, height, fps, info) as w:
        for i in range(frames):
            f = factor if i >= step_frame else 1.0
            w.write(i, rgb * np.float32(f), BOXES, [], [e for e in events if e.frame_index == i])
    return path
