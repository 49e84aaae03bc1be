#!/usr/bin/env bash
# Builds ckconv, prepares the reference environment (real PyTorch, safetensors and
# transformers from Debian, cached outside the repo) and runs every test with ctest: unit
# tests, CLI tests of the real binary and interop tests against the references.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir="${CKCONV_BUILD_DIR:-build}"
# sid: PyTorch 2.14, safetensors, transformers; trixie: PyTorch 2.6 for the DCP checks.
for suite in sid trixie; do
  if ! CKCONV_REFENV_SUITE=$suite scripts/refenv.sh setup; then
    cat >&2 <<MSG
################################################################################
# The reference environment for Debian $suite (python3-torch, python3-safetensors,
# python3-transformers) could not be created. The interop tests that need it are
# reported as SKIPPED by ctest below.
################################################################################
MSG
  fi
done
cd "$build_dir"
ctest --output-on-failure -j"$(nproc)" "$@"
