"""Weight files of our own networks (exposure networks, attention RL): ``NAME.pt`` (a plain dict
with a ``format`` tag, loaded with ``weights_only=True``: no pickled code) and ``NAME.json``
beside it whose ``weights_sha256`` is checked before the weights are read.

Writing is atomic (temporary files, then rename; the .json names the .pt's hash). Every failure
raises the caller's error class with the file and the reason. The detector has its own format
(:mod:`neural_ae_ros.detector.checkpoint`) with the same hash rule.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Type

import torch

__all__ = ["file_sha256", "metadata_path", "write_weights", "read_weights"]


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def metadata_path(path) -> Path:
    return Path(path).with_suffix(".json")


def write_weights(blob: Mapping[str, Any], path, metadata: Mapping[str, Any]) -> Path:
    """``blob`` (must hold ``format``) to ``path`` and ``metadata`` plus the file's sha256 beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(blob), tmp)
    meta = dict(metadata, format=blob["format"], weights_file=path.name, weights_sha256=file_sha256(tmp))
    mpath = metadata_path(path)
    mtmp = mpath.with_name(mpath.name + ".tmp")
    mtmp.write_text(json.dumps(meta, indent=1, default=str))
    tmp.replace(path)
    mtmp.replace(mpath)
    return path


def read_weights(path, expected_format: str, what: str, error: Type[Exception]) -> Tuple[Dict, Dict]:
    """``(blob, metadata)`` of a file written by :func:`write_weights`; ``error(message)`` on a
    missing file, corrupt metadata, a sha256 mismatch, an unreadable file or another format."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    meta: Dict = {}
    mpath = metadata_path(path)
    if mpath.is_file():
        try:
            meta = json.loads(mpath.read_text())
        except json.JSONDecodeError as e:
            raise error(f"{mpath}: corrupt metadata JSON: {e}") from e
        if meta.get("weights_sha256") and meta["weights_sha256"] != file_sha256(path):
            raise error(f"{path}: sha256 does not match weights_sha256 in {mpath.name} (corrupt or replaced file)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for corrupt files
        raise error(f"{path}: not a readable torch file: {type(e).__name__}: {e}") from e
    if not isinstance(blob, dict) or blob.get("format") != expected_format:
        raise error(f"{path}: not a {what} file (expected format {expected_format!r})")
    return blob, meta
