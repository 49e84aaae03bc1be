#!/usr/bin/env bash
# Builds ckconv, prepares the reference environment (real PyTorch, safetensors and
# transformers from Debian, cached outside the repo) and runs every test with ctest: unit
# tests, CLI tests of the real binary and interop tests against the references.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir="${CKCONV_BUILD_DIR:-build}"
if ! scripts/refenv.sh setup; then
  cat >&2 <<'MSG'
################################################################################
# The reference environment (Debian unstable chroot with python3-torch,
# python3-safetensors, python3-transformers) could not be created.
# The interop tests against PyTorch/transformers will be reported as SKIPPED.
################################################################################
MSG
fi
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)" "$@"
