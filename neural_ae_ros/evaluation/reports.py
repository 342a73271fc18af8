"""Writing evaluation reports (JSON) the same way everywhere."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Mapping, Optional


def write_report(report: Mapping, path, log: Optional[Callable[[str], None]] = print) -> Path:
    """``report`` as indented JSON at ``path`` (parent folders created); logs where it went."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    if log is not None:
        log(f"wrote {path}")
    return path
