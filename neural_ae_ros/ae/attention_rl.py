"""``attention_rl``: the attention-aware exposure network of paper 001 as an AE method.

Per frame it runs :class:`neural_ae_ros.personalization.attention_net.AttentionExposureNet` on
the ISP's RGB output (``Observation.rgb``, uint8 ``(H, W, 3)`` or float ``(3, H, W)``), takes
``Delta_EV = EV_RANGE * mean(EM * AM)`` (Eq. 1) and returns ``u = 2 ** Delta_EV``; the shared
:class:`~neural_ae_ros.ae.controller.ExposureController` smooths, splits and clamps it.

Split: paper 001 Section 7.2 decomposes EV into exposure time and ISO "always preferring a small
ISO", raising ISO only when the time exceeds the hardware limit. The project's Eq. 6 split
(``t = min(e, T_max)``, ``K = e / t``) is the same rule with ``T_max`` as the limit (T_max may
be shorter than the frame period, to bound motion blur): gain stays at 1 until the time
reaches T_max.

Personalised weights swap in without a restart: :meth:`AttentionRlAE.swap_weights` loads and
checks a new file first and replaces the running network only when it is sound (a corrupt or
mismatching file raises and leaves the running weights untouched).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .base import INPUT_RGB, AutoExposureMethod, ExposureDecision, Observation, register_method

__all__ = ["AttentionRlAE", "SHIPPED_WEIGHTS"]

#: Pre-trained weights shipped with the package (``neural-ae train --method attention_rl``).
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "attention_rl" / "pretrained.pt"


@register_method
class AttentionRlAE(AutoExposureMethod):
    name = "attention_rl"
    inputs = frozenset({INPUT_RGB})
    parameters = ()

    def __init__(self, weights: Union[str, Path, None] = None, threads: int = 1) -> None:
        from neural_ae_ros.personalization.attention_net import load_weights

        from neural_ae_ros.weights import file_sha256

        self.weights_path = Path(weights) if weights else SHIPPED_WEIGHTS
        self.net, self.metadata = load_weights(self.weights_path)
        self.weights_sha256 = self.metadata.get("weights_sha256") or file_sha256(self.weights_path)
        self._lock = threading.Lock()
        self.threads = int(threads)

    def swap_weights(self, path: Union[str, Path], expected_sha256: Optional[str] = None) -> dict:
        """Load ``path`` and make it the running network; raises CheckpointError (naming the
        file) and keeps the old weights when the file is unusable. With ``expected_sha256``
        (an announcement's hash) the file and its .json metadata must both carry that hash, so a
        file replaced after the announcement is refused too. Returns its metadata."""
        from neural_ae_ros.personalization.attention_net import CheckpointError, load_weights
        from neural_ae_ros.weights import file_sha256

        if expected_sha256 is not None:
            if not Path(path).is_file():
                raise CheckpointError(f"{path}: no such attention_rl weights file")
            actual = file_sha256(path)
            if actual != expected_sha256:
                raise CheckpointError(f"{path}: sha256 {actual[:12]}... is not the announced {expected_sha256[:12]}...")
        net, meta = load_weights(path)
        sha = meta.get("weights_sha256") or file_sha256(path)
        if expected_sha256 is not None and sha != expected_sha256:
            raise CheckpointError(f"{path}: metadata sha256 {sha[:12]}... is not the announced "
                                  f"{expected_sha256[:12]}... (file replaced meanwhile)")
        with self._lock:
            self.net, self.metadata, self.weights_path, self.weights_sha256 = net, meta, Path(path), sha
        return meta

    def maps(self, rgb) -> tuple:
        """(Delta_EV, EM (h, w), AM (h, w)) numpy, for the maps-on-request images and plots."""
        from neural_ae_ros.personalization.attention_net import predict_ev

        with self._lock:
            net = self.net
        d, em, am = predict_ev(net, _as_tensor(rgb))
        return d, em.numpy(), am.numpy()

    def next_exposure(self, obs: Observation) -> ExposureDecision:
        if obs.rgb is None:
            raise ValueError(f"frame {obs.frame_index}: attention_rl needs the ISP's RGB image (Observation.rgb)")
        import torch

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        d, _, _ = self.maps(obs.rgb)
        return ExposureDecision(adjustment_factor=float(2.0 ** d),
                                info={"delta_ev": d, "weights": str(self.weights_path)})


def _as_tensor(rgb):
    import torch

    if isinstance(rgb, torch.Tensor):
        return rgb
    a = np.asarray(rgb)
    if a.ndim == 3 and a.shape[-1] == 3:  # (H, W, 3) as the ISP node publishes it
        a = a.transpose(2, 0, 1)
    if a.ndim != 3 or a.shape[0] != 3:
        raise ValueError(f"RGB image must be (H, W, 3) or (3, H, W), got {a.shape}")
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if t.dtype == torch.uint8 else t.float()
