"""Where the package's files are, and the one YAML loader for ``config/`` (no ROS import).

``config/`` is found the same way in a source checkout, an editable pip install and a colcon
install: ``<repo>/config`` beside the ``neural_ae_ros`` package first, then the ROS share
directory (``share/neural_ae_ros/config``) through ``ament_index_python`` when it is importable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

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


# -- ROS 2 parameter files (``<node>: ros__parameters: {...}``) ----------------------------------
#: The key under a node's entry that holds its parameters (what rcl's YAML parser reads).
ROS_PARAMETERS_KEY = "ros__parameters"


def node_keys(node: str):
    """The entries of a parameter file that apply to a node named ``node`` in any namespace, most
    specific first: ``/**/node`` (how this package's files name nodes), ``node``, ``/node``
    (root namespace only in ROS 2, accepted here for user files), ``/**`` (every node)."""
    return (f"/**/{node}", node, f"/{node}", "/**")


def ros_parameters(data: Mapping[str, Any], node: str, where: Union[str, Path] = "") -> Dict[str, Any]:
    """The parameters a ``ros__parameters`` file gives ``node``: the entries of
    :func:`node_keys` merged, the most specific winning (as rcl applies ``/**`` before the
    node's own entry). Errors name the file."""
    out: Dict[str, Any] = {}
    for key in reversed(node_keys(node)):
        entry = data.get(key)
        if entry is None:
            continue
        if not isinstance(entry, Mapping) or ROS_PARAMETERS_KEY not in entry:
            raise ValueError(f"parameter file {where}: entry '{key}' has no '{ROS_PARAMETERS_KEY}' mapping "
                             f"(expected '{key}: {{{ROS_PARAMETERS_KEY}: {{name: value}}}}')")
        params = entry[ROS_PARAMETERS_KEY] or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"parameter file {where}: '{key}.{ROS_PARAMETERS_KEY}' must be a mapping")
        out.update(params)
    return out


def is_ros_parameters_file(data: Mapping[str, Any]) -> bool:
    """True when every top-level entry is a node entry holding ``ros__parameters``."""
    return bool(data) and all(isinstance(v, Mapping) and ROS_PARAMETERS_KEY in v for v in data.values())


def load_node_parameters(file_name: str, node: str, directory: Optional[Path] = None) -> Dict[str, Any]:
    """``node``'s parameters in ``config/<file_name>`` (a ``ros__parameters`` file); an error
    names the file when it holds no entry for ``node``."""
    path = Path(directory or config_dir()) / file_name
    data = load_yaml(path)
    if not any(k in data for k in node_keys(node)):
        raise KeyError(f"parameter file {path}: no entry for node '{node}' (expected '/**/{node}:' with "
                       f"'{ROS_PARAMETERS_KEY}:')")
    return ros_parameters(data, node, path)
