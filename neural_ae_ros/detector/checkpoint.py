"""Detector checkpoints: ``NAME.pt`` (weights + config) and ``NAME.json`` (metadata).

The ``.pt`` file is a plain dict ``{"format": FORMAT, "config": DetectorConfig.to_dict(),
"state_dict": ...}`` loaded with ``torch.load(weights_only=True)`` (no pickled code).
The ``.json`` beside it says what the weights are: classes, input size, training data,
git commit, training settings and metrics.

Integrity: the ``.json`` carries ``weights_sha256``, the SHA-256 of the ``.pt`` bytes, checked
before the weights are unpickled; a mismatch (bit rot, a partial copy, a zeroed block) is refused
naming both files. A ``.pt`` without a ``.json`` still loads (``metadata["integrity"]`` says
"unchecked"); a ``.json`` without the field is refused unless ``allow_unverified=True``.

Every failure raises :class:`CheckpointError` with the path and the reason: missing file,
unreadable or corrupt file, checksum mismatch, wrong format, classes or input size other than the caller
expects, weights that do not fit the architecture in the config.
"""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path
from typing import Any, Sequence

import torch

from .model import Detector, DetectorConfig

FORMAT = "neural_ae_ros.detector/1"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "detector" / "default.pt"


class CheckpointError(RuntimeError):
    """A detector checkpoint could not be used; the message names the file and the reason."""


def metadata_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def git_commit(repo_dir: str | Path | None = None) -> str | None:
    """HEAD commit of the repository holding this package ("-dirty" appended when modified)."""
    cwd = Path(repo_dir) if repo_dir else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def save_checkpoint(model: Detector, path: str | Path, metadata: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``path`` (.pt) and its ``.json`` metadata. Returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    # float16 weights halve the file; BN statistics and counters stay exact enough in fp32
    state = {k: (v.half() if v.is_floating_point() and v.dim() > 1 else v) for k, v in state.items()}
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": FORMAT, "config": model.cfg.to_dict(), "state_dict": state}, tmp)
    tmp.replace(path)
    meta = {
        "format": FORMAT,
        "classes": list(model.cfg.classes),
        "input_size": {"width": model.cfg.input_size[0], "height": model.cfg.input_size[1]},
        "conv2_features": {"channels": model.cfg.stage_channels[0], "stride": 4},
        "commit": git_commit(),
        "weights_file": path.name,
        "weights_bytes": path.stat().st_size,
        "weights_sha256": file_sha256(path),
    }
    # The caller's metadata (e.g. copied from the checkpoint training started from) never
    # overrides what describes this file.
    own = {"format", "weights_file", "weights_bytes", "weights_sha256"}
    meta.update({k: v for k, v in (metadata or {}).items() if k not in own})
    mpath = metadata_path(path)
    mpath.write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
    return path, mpath


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_metadata(path: Path) -> dict[str, Any] | None:
    mpath = metadata_path(path)
    if not mpath.is_file():
        return None
    try:
        meta = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{mpath}: corrupt metadata JSON: {e}") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"{mpath}: metadata must be a JSON object, got {type(meta).__name__}")
    return meta


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_checkpoint(
    path: str | Path | None = None,
    expected_classes: Sequence[str] | None = None,
    expected_input_size: Sequence[int] | None = None,
    allow_unverified: bool = False,
) -> tuple[Detector, dict[str, Any]]:
    """Load a detector in eval mode. Returns ``(model, metadata)`` (metadata ``{"integrity":
    "unchecked"}`` if the .json is absent). Raises :class:`CheckpointError` on any problem,
    a SHA-256 mismatch with the metadata included."""
    path = Path(path) if path is not None else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    meta = _read_metadata(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e}") from e
    if meta is not None:
        expected_sha = meta.get("weights_sha256")
        actual_sha = hashlib.sha256(data).hexdigest()
        if expected_sha is None and not allow_unverified:
            raise CheckpointError(f"{metadata_path(path)}: no weights_sha256 to check {path.name} against "
                                  f"(re-save the checkpoint, or load with allow_unverified=True)")
        if expected_sha is not None and expected_sha != actual_sha:
            raise CheckpointError(f"{path}: sha256 {actual_sha[:16]}... does not match weights_sha256 "
                                  f"{str(expected_sha)[:16]}... in {metadata_path(path).name} "
                                  f"(file corrupted, truncated or replaced)")
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for corrupt files
        raise CheckpointError(f"{path}: not a readable torch checkpoint (corrupt or truncated?): "
                              f"{type(e).__name__}: {e}") from e
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        fmt = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{path}: not a neural_ae_ros detector checkpoint (format {fmt!r}, expected {FORMAT!r})")
    try:
        cfg = DetectorConfig.from_dict(blob["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid detector config: {e}") from e
    if expected_classes is not None and tuple(expected_classes) != cfg.classes:
        raise CheckpointError(f"{path}: classes {list(cfg.classes)} do not match the expected {list(expected_classes)}")
    if expected_input_size is not None and tuple(int(v) for v in expected_input_size) != cfg.input_size:
        raise CheckpointError(f"{path}: input size {cfg.input_size} does not match the expected "
                              f"{tuple(expected_input_size)}")
    model = Detector(cfg)
    state = blob.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no state_dict")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors (e.g. {unexpected[:3]})")
        if bad_shape:
            k = bad_shape[0]
            parts.append(f"{len(bad_shape)} shape mismatches (e.g. {k}: checkpoint "
                         f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)})")
        raise CheckpointError(f"{path}: weights do not fit the architecture: " + "; ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    for k, v in model.state_dict().items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: non-finite values in {k}")
    model.eval()
    mpath = metadata_path(path)
    if meta is None:
        meta = {"integrity": "unchecked"}
    else:
        meta = dict(meta, integrity="sha256" if meta.get("weights_sha256") else "unchecked")
        if meta.get("classes") is not None and tuple(meta["classes"]) != cfg.classes:
            raise CheckpointError(f"{mpath}: metadata classes {meta['classes']} disagree with the weights' "
                                  f"{list(cfg.classes)} (mismatched .pt / .json pair?)")
    return model, meta
