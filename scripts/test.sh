#!/usr/bin/env bash
# Builds ckconv, prepares the reference environments (real PyTorch, safetensors and
# transformers from Debian, cached outside the repo) and runs every test with ctest: unit
# tests, CLI tests of the real binary and interop tests against the references.
# Extra arguments go to ctest (e.g. -L interop, -R cli.errors).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps-only debootstrap

# The reference environments download and install while ckconv builds.
# sid: PyTorch 2.14, safetensors, transformers; trixie: PyTorch 2.6 for the DCP checks.
logs="$(mktemp -d "${TMPDIR:-/tmp}/ckconv-refenv.XXXXXX")"
for suite in sid trixie; do
  (CKCONV_REFENV_SUITE=$suite scripts/refenv.sh setup >"$logs/$suite.log" 2>&1; echo $? >"$logs/$suite.status") &
done
scripts/setup.sh
wait
for suite in sid trixie; do
  sed 's/^/  /' "$logs/$suite.log" >&2
  if [[ "$(cat "$logs/$suite.status")" != 0 ]]; then
    cat >&2 <<MSG
################################################################################
# The reference environment for Debian $suite (python3-torch, python3-safetensors,
# python3-transformers) could NOT be created. The interop tests that need it are
# reported as SKIPPED by ctest below.
################################################################################
MSG
  fi
done
rm -rf "$logs"
cd "${CKCONV_BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
