"""The learned AE methods of paper 000 (``histogram_nn``, ``semantic_nn``, ``hybrid_nn``) behind
the method registry, so the running loop (``ae_controller``), the benchmark and the tests use
them like ``average`` and ``gradient`` (same Eq. 5 smoothing, Eq. 6 split and clamping: those
are the :class:`~neural_ae_ros.ae.controller.ExposureController`'s).

Weights: ``neural_ae_ros/data/ae/<method>.pt`` by default (its detector beside it as
``<method>_detector.pt``), made by ``neural-ae train``; a missing file is refused with the
command that makes it (:func:`load_exposure_network`).

Where the semantic input is split between the detector and the AE (docs/design.md, "Semantic
features on the wire"): the detector node runs the method's own channel compression and
pyramid pooling (:class:`SemanticEncoder`, the first part of
:class:`~neural_ae_ros.ae.networks.SemanticBranch`, loaded from the same AE checkpoint) and
publishes the pooled vector (4 496 float32 = 17.6 KB per frame); the AE runs the dense layers.
``Observation.features`` may hold either that pooled vector ``(4496,)`` or a whole conv2 map
``(128, h, w)`` (tests, benchmark); both give the same decision.

Late or missing features (``features_timeout_s`` in the node): ``hybrid_nn`` decides from its
histogram branch alone (the head applied to the histogram vector, i.e. a zero semantic vector)
and ``semantic_nn`` holds the exposure (``ExposureDecision.info['hold']``); both say so in
``info['fallback']``. Features with NaN/inf are treated as missing, with the reason.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np

from neural_ae_ros.config import DATA_DIR

from .base import (INPUT_FEATURES, INPUT_HISTOGRAMS, AutoExposureMethod, ExposureDecision, FrameBatch,
                   MethodParameter, Observation, register_method)

__all__ = ["AE_WEIGHTS_DIR", "default_weights", "default_detector", "train_command", "load_exposure_network",
           "SemanticEncoder", "NeuralAE", "HistogramNN", "SemanticNN", "HybridNN", "POOLED_SIZE"]

#: Shipped weights: ``<method>.pt`` (exposure network) and ``<method>_detector.pt`` (its detector).
AE_WEIGHTS_DIR = DATA_DIR / "ae"
#: Length of the pyramid-pooled semantic vector: 128 (global conv2 average) + 2 x 26 x (4 + 16 + 64).
POOLED_SIZE = 128 + 2 * 26 * (2 * 2 + 4 * 4 + 8 * 8)


def default_weights(method: str) -> Path:
    return AE_WEIGHTS_DIR / f"{method}.pt"


def default_detector(method: str) -> Path:
    return AE_WEIGHTS_DIR / f"{method}_detector.pt"


def train_command(method: str, out: Union[str, Path, None] = None) -> str:
    return f"neural-ae train --method {method} --scenes TRAIN_SCENES --out {out or default_weights(method)}"


def load_exposure_network(method: str, weights: Union[str, Path, None] = None):
    """``(net, metadata, sha256)`` of ``method``'s exposure network from ``weights`` (default:
    the shipped file). Raises :class:`~neural_ae_ros.ae.training.AeCheckpointError` naming the
    file: missing (with the ``neural-ae train`` command that makes it), corrupt, another method,
    or weights of another input size (they do not fit the network)."""
    from neural_ae_ros.ae.training import AeCheckpointError, load_ae_checkpoint
    from neural_ae_ros.weights import file_sha256

    path = Path(weights) if weights else default_weights(method)
    if not path.is_file():
        raise AeCheckpointError(f"{method}: exposure-network weights {path} are missing; make them with "
                                f"`{train_command(method, path)}`")
    net, meta = load_ae_checkpoint(path, expected_method=method)
    return net, meta, file_sha256(path)


def _torch():
    import torch

    return torch


class SemanticEncoder:
    """Detector side of the semantic split: conv2 map -> pyramid-pooled vector (float32,
    ``POOLED_SIZE``), with the method's own channel compression from its AE checkpoint.
    ``sha256`` names the checkpoint, so the AE side can check that both halves match."""

    def __init__(self, weights: Union[str, Path], method: Optional[str] = None) -> None:
        from neural_ae_ros.ae.training import AeCheckpointError, load_ae_checkpoint
        from neural_ae_ros.weights import file_sha256

        net, _ = load_ae_checkpoint(weights, expected_method=method)
        if net.semantic_branch is None:
            raise AeCheckpointError(f"{weights}: a {net.method!r} network has no semantic branch (no features to "
                                    "encode); give the checkpoint of semantic_nn or hybrid_nn")
        self.method = net.method
        self.branch = net.semantic_branch
        self.path = Path(weights)
        self.sha256 = file_sha256(weights)

    def encode(self, conv2) -> np.ndarray:
        """(1, 128, h, w) or (128, h, w) conv2 map (tensor) -> (POOLED_SIZE,) float32."""
        torch = _torch()
        f = conv2 if conv2.ndim == 4 else conv2[None]
        with torch.no_grad():
            return self.branch.pyramid(f.float())[0].numpy().astype(np.float32)


class NeuralAE(AutoExposureMethod):
    """Base of the three learned methods: loads ``weights`` (default: the shipped file), runs
    one frame (``next_exposure``) or a batch (``adjustment_factors``) through the same module."""

    method_name = ""
    loads_weights = True
    parameters = (
        MethodParameter("features_timeout_s", "features_timeout_s", float, 0.0, 5.0,
                        "semantic_nn/hybrid_nn: features of a frame that have not arrived this long (s) after its "
                        "histograms are late: hybrid_nn decides from its histogram branch, semantic_nn holds."),
        MethodParameter("network_target_alpha", "target_alpha", float, 0.05, 1.0,
                        "learned methods in the running loop: weight of a new frame's target exposure in the "
                        "log-domain average of targets (1: no averaging); damps the network's frame-to-frame "
                        "decision noise on steady scenes."),
        MethodParameter("network_target_jump_ev", "target_jump_ev", float, 0.1, 10.0,
                        "learned methods: a new target this far (EV) from the averaged one is taken whole "
                        "(illumination steps are not slowed)."),
    )

    def __init__(self, weights: Union[str, Path, None] = None, features_timeout_s: float = 0.5,
                 network=None, target_alpha: float = 1.0, target_jump_ev: float = 1.0) -> None:
        if not (0.0 <= float(features_timeout_s) <= 5.0):
            raise ValueError(f"features_timeout_s={features_timeout_s!r} must be in [0, 5] s")
        if not (0.05 <= float(target_alpha) <= 1.0):
            raise ValueError(f"target_alpha={target_alpha!r} must be in [0.05, 1]")
        if not (0.1 <= float(target_jump_ev) <= 10.0):
            raise ValueError(f"target_jump_ev={target_jump_ev!r} must be in [0.1, 10] EV")
        self.features_timeout_s = float(features_timeout_s)
        self.target_alpha = float(target_alpha)
        self.target_jump_ev = float(target_jump_ev)
        self._log2_target: Optional[float] = None
        if network is not None:  # an in-memory network (tests, training)
            if network.method != self.name:
                raise ValueError(f"a {network.method!r} network cannot run as {self.name!r}")
            self.net, self.metadata, self.sha256, self.weights_path = network.eval(), {}, None, None
        else:
            self.net, self.metadata, self.sha256 = load_exposure_network(self.name, weights)
            self.weights_path = Path(weights) if weights else default_weights(self.name)

    # -- inputs -------------------------------------------------------------------------------
    def _histograms(self, histograms, where: str):
        torch = _torch()
        h = torch.as_tensor(np.asarray(histograms) if not isinstance(histograms, torch.Tensor) else histograms)
        if h.ndim == 2:
            h = h[None]
        if h.ndim != 3 or tuple(h.shape[1:]) != (59, 256):
            raise ValueError(f"{where}: {self.name} needs the 59 x 256 histogram stack (grids 1,3,7; 256 bins), "
                             f"got shape {tuple(h.shape)}")
        return h.float()

    def _semantic_vector(self, features):
        """(N, 64) semantic branch output from pooled vectors (N, POOLED_SIZE) or conv2 maps (N, 128, h, w)."""
        branch = self.net.semantic_branch
        if features.ndim == 2:
            if features.shape[1] != POOLED_SIZE:
                raise ValueError(f"pooled semantic features must have {POOLED_SIZE} values, got {features.shape[1]}")
            return branch.dense(features.float())
        return branch(features.float())

    def features_problem(self, features) -> Optional[str]:
        """Why ``features`` (one frame: pooled vector or conv2 map) cannot be used, or None."""
        if features is None:
            return "no features"
        a = np.asarray(features)
        if not (a.ndim == 1 and a.size == POOLED_SIZE) and not (a.ndim == 3 and a.shape[0] == 128):
            return f"features of shape {a.shape} are neither the pooled vector ({POOLED_SIZE},) nor a conv2 map"
        if not np.isfinite(a).all():
            return f"features hold {int((~np.isfinite(a)).sum())} NaN/inf values"
        return None

    # -- one frame ------------------------------------------------------------------------------
    def next_exposure(self, obs: Observation) -> ExposureDecision:
        torch = _torch()
        where = f"frame {obs.frame_index}"
        hist = None
        if self.net.histogram_branch is not None:
            if obs.histograms is None:
                raise ValueError(f"{where}: {self.name} needs the histogram stack")
            hist = self._histograms(obs.histograms, where)
        info: Dict[str, Any] = {"weights": str(self.weights_path) if self.weights_path else "in memory"}
        feats = None
        if INPUT_FEATURES in self.inputs:
            problem = self.features_problem(obs.features)
            if problem is None:
                feats = torch.from_numpy(np.ascontiguousarray(obs.features, dtype=np.float32))[None]
            else:
                info["features"] = problem
                if hist is None:  # semantic_nn: nothing to decide from
                    info.update(hold=True, fallback=f"hold exposure ({problem})")
                    return ExposureDecision(1.0, info)
                info["fallback"] = f"histogram branch only ({problem})"
        with torch.no_grad():
            u = float(self._forward(hist, feats)[0])
        info["branches"] = "histogram" if feats is None else ("semantic" if hist is None else "histogram+semantic")
        return ExposureDecision(self._smoothed(u, obs, info), info)

    def reset(self) -> None:
        self._log2_target = None

    def _smoothed(self, u: float, obs: Observation, info: Dict[str, Any]) -> float:
        """The network's target ``e_obs * u`` (absolute, so commands in flight do not matter)
        averaged in log2 over frames with weight ``target_alpha`` for the new one; a target at
        least ``target_jump_ev`` EV away restarts the average (a scene step is followed at
        once). Returns the adjustment that reaches the averaged target from ``e_obs``."""
        e_obs = obs.effective_exposure_s
        if self.target_alpha >= 1.0 or not (math.isfinite(e_obs) and e_obs > 0 and math.isfinite(u) and u > 0):
            return u
        target = math.log2(e_obs * u)
        prev = self._log2_target
        if prev is None or abs(target - prev) >= self.target_jump_ev:
            self._log2_target = target
        else:
            self._log2_target = prev + self.target_alpha * (target - prev)
            info["target_averaged_ev"] = round(self._log2_target - target, 3)
        return 2.0 ** self._log2_target / e_obs

    # -- batched ----------------------------------------------------------------------------------
    def _forward(self, hist, feats):
        """u (N,) from histogram counts (N, 59, 256) and/or features; a hybrid without features
        uses the histogram vector alone (zero semantic vector)."""
        from neural_ae_ros.ae.networks import exposure_activation

        vec = None
        if hist is not None and self.net.histogram_branch is not None:
            vec = self.net.histogram_branch(hist)
        if feats is not None:
            sem = self._semantic_vector(feats)
            vec = sem if vec is None else vec + sem
        if vec is None:
            raise ValueError(f"{self.name}: no input to decide from")
        return exposure_activation(self.net.head(vec).squeeze(1), self.net.m_exp)

    def adjustment_factors(self, batch: FrameBatch):
        """u (N,) in one forward pass (the single-frame path runs the same module on N = 1)."""
        torch = _torch()
        hist = None
        if self.net.histogram_branch is not None:
            if batch.histograms is None:
                raise ValueError(f"batch: {self.name} needs histograms")
            hist = self._histograms(batch.histograms, "batch")
        feats = None
        if INPUT_FEATURES in self.inputs:
            if batch.features is None:
                raise ValueError(f"batch: {self.name} needs features")
            feats = torch.as_tensor(batch.features)
        with torch.no_grad():
            return self._forward(hist, feats).double()


@register_method
class HistogramNN(NeuralAE):
    """Paper 000 Section 4.1: the histogram network (59 x 256 histogram stack -> Eq. 4 u)."""

    name = "histogram_nn"
    inputs = frozenset({INPUT_HISTOGRAMS})
    parameters = ()


@register_method
class SemanticNN(NeuralAE):
    """Paper 000 Section 4.2: the semantic network (detector conv2 features -> Eq. 4 u)."""

    name = "semantic_nn"
    inputs = frozenset({INPUT_HISTOGRAMS, INPUT_FEATURES})  # histograms: the controller's clip/dark checks


@register_method
class HybridNN(NeuralAE):
    """Paper 000 Section 4.2: both branches summed, one head, Eq. 4."""

    name = "hybrid_nn"
    inputs = frozenset({INPUT_HISTOGRAMS, INPUT_FEATURES})
