"""Where the package's files are, and the one YAML loader for ``config/`` (no ROS import).

``config/`` is found the same way in a source checkout, an editable pip install and a colcon
install: ``<repo>/config`` beside the ``neural_ae_ros`` package first, then the ROS share
directory (``share/neural_ae_ros/config``) through ``ament_index_python`` when it is importable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Union

import yaml

PACKAGE_NAME = "neural_ae_ros"
#: The Python package directory (``neural_ae_ros/``).
PACKAGE_DIR = Path(__file__).resolve().parent
#: Files shipped inside the package: panoramas, detector and AE weights.
DATA_DIR = PACKAGE_DIR / "data"


def config_dir() -> Path:
    """The ``config`` directory: source tree first, then the installed ROS share directory."""
    local = PACKAGE_DIR.parent / "config"
    if local.is_dir():
        return local
    try:  # only in an installed ROS workspace
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE_NAME)) / "config"
        if share.is_dir():
            return share
    except Exception:  # noqa: BLE001 - any failure means "not installed"
        pass
    raise FileNotFoundError(
        f"no config directory: neither {local} (source tree) nor share/{PACKAGE_NAME}/config "
        "(ROS install, ament_index_python) exists")


def config_path(file_name: str) -> Path:
    """``config/<file_name>``."""
    return config_dir() / file_name


def load_yaml(path: Union[str, Path]) -> Mapping[str, Any]:
    """A parsed YAML mapping; errors name the file."""
    path = Path(path)
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise FileNotFoundError(f"config file {path} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {path}: expected a mapping at top level")
    return data


def load_config(file_name: str, directory: Optional[Path] = None) -> Mapping[str, Any]:
    """Parsed ``config/<file_name>`` (or ``<directory>/<file_name>``)."""
    return load_yaml(Path(directory or config_dir()) / file_name)
