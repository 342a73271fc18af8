"""config/ is found in a colcon-style install, where no source tree sits beside the package.

CMakeLists.txt installs the Python package to ``<prefix>/lib/python3.X/site-packages/neural_ae_ros``
and ``config/`` to ``<prefix>/share/neural_ae_ros/config``; ``ament_package()`` registers the
package in ``<prefix>/share/ament_index/resource_index/packages``. This test lays out that prefix
(the package's Python files, config and the index marker) and runs a fresh interpreter in it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import json
from neural_ae_ros import config
from neural_ae_ros.imaging.isp import IspParams
from neural_ae_ros.imaging.sensor import SensorParams
from neural_ae_ros.parameters import node_defaults
print(json.dumps(dict(package_dir=str(config.PACKAGE_DIR), config_dir=str(config.config_dir()),
                      isp_gamma=IspParams.from_yaml().gamma, full_well_e=SensorParams.from_yaml().full_well_e,
                      isp_node=node_defaults("isp_node"))))
"""


def _install_prefix(root: Path, register: bool = True) -> Path:
    prefix = root / "install"
    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    shutil.copytree(REPO / "neural_ae_ros", site / "neural_ae_ros",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data"))
    shutil.copytree(REPO / "config", prefix / "share" / "neural_ae_ros" / "config")
    if register:
        marker = prefix / "share" / "ament_index" / "resource_index" / "packages" / "neural_ae_ros"
        marker.parent.mkdir(parents=True)
        marker.touch()
    return prefix


def _probe(prefix: Path, cwd: Path, code: str = PROBE) -> subprocess.CompletedProcess:
    site = next(prefix.glob("lib/python*/site-packages"))
    env = dict(os.environ, PYTHONPATH=str(site), AMENT_PREFIX_PATH=str(prefix))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_installed_package_reads_config_from_share(tmp_path):
    prefix = _install_prefix(tmp_path)
    share_cfg = prefix / "share" / "neural_ae_ros" / "config"
    # mark the installed copy so that reading the source tree's config cannot pass
    isp_yaml = share_cfg / "isp.yaml"
    isp_yaml.write_text(isp_yaml.read_text().replace("gamma: 2.4", "gamma: 2.2"))
    res = _probe(prefix, tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["package_dir"]).is_relative_to(prefix), "the probe imported the source tree, not the install"
    assert Path(out["config_dir"]) == share_cfg
    assert out["isp_gamma"] == 2.2 and out["isp_node"]["gamma"] == 2.2
    assert out["full_well_e"] > 0


def test_installed_package_without_index_says_where_it_looked(tmp_path):
    prefix = _install_prefix(tmp_path, register=False)
    res = _probe(prefix, tmp_path, "from neural_ae_ros import config; config.config_dir()")
    assert res.returncode != 0
    assert "no config directory" in res.stderr and "share/neural_ae_ros/config" in res.stderr


def _loaders():
    from neural_ae_ros.config import load_yaml
    from neural_ae_ros.imaging.exposure import CameraConfig, CameraLimits
    from neural_ae_ros.imaging.isp import IspParams
    from neural_ae_ros.imaging.sensor import SensorParams

    return {"load_yaml": load_yaml, "IspParams": IspParams.from_yaml, "SensorParams": SensorParams.from_yaml,
            "CameraLimits": CameraLimits.from_yaml, "CameraConfig": CameraConfig.from_yaml}


@pytest.mark.parametrize("loader", ["load_yaml", "IspParams", "SensorParams", "CameraLimits", "CameraConfig"])
@pytest.mark.parametrize("content", ["isp: [unclosed\n", "- a list, not a mapping\n", None])
def test_every_config_reader_names_the_bad_file(tmp_path, loader, content):
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=str(path)):
        _loaders()[loader](path)
