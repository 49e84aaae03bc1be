#!/usr/bin/env bash
# Installs what ckconv needs to build (Debian packages, only those missing) and builds it
# into build/ (or $CKCONV_BUILD_DIR). Safe to run again: it only rebuilds what changed.
#   scripts/setup.sh                      install build dependencies, then build everything
#   scripts/setup.sh --target T [--target T…]  the same, building only targets T (e.g. ckconv)
#   scripts/setup.sh --deps-only [PKG…]   only install (the build dependencies and PKG…)
set -euo pipefail
cd "$(dirname "$0")/.."

deps_only=false
targets=()
if [[ "${1:-}" == --deps-only ]]; then
  deps_only=true
  shift
fi
while [[ "${1:-}" == --target ]]; do
  targets+=(--target "${2:?--target needs a name}")
  shift 2
done
packages=(g++ cmake ninja-build pkg-config libcli11-dev libspdlog-dev nlohmann-json3-dev doctest-dev zlib1g-dev
          libxxhash-dev libisal-dev "$@")
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
$deps_only && exit 0

build_dir="${CKCONV_BUILD_DIR:-build}"
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${CKCONV_BUILD_TYPE:-RelWithDebInfo}" ${CKCONV_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
echo "setup: built $build_dir/ckconv" >&2
