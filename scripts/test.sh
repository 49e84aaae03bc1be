#!/usr/bin/env bash
# Builds ckconv with AddressSanitizer + UndefinedBehaviorSanitizer (in build-test/, apart from
# the ordinary build/), prepares the reference environments (real PyTorch, safetensors and
# transformers from Debian, cached outside the repo) and runs every test with ctest: unit
# tests, CLI tests of the real binary (the bad-input corpus included), replays of the fuzz
# corpora, and interop tests against the references. Any sanitizer report fails its test.
# Every C++ file must match .clang-format (scripts/check_format.sh); a difference fails the run.
# Extra arguments go to ctest (e.g. -L interop, -R cli.errors).
# CKCONV_TEST_SANITIZE=0 tests an ordinary build instead (build/, or CKCONV_BUILD_DIR).
# While ctest runs, every libFuzzer target (clang) fuzzes for CKCONV_TEST_FUZZ_SECONDS
# (default 15; 0 skips) from its saved corpus; a finding fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds="${CKCONV_TEST_FUZZ_SECONDS:-15}"
fuzz_deps=()
[[ "$fuzz_seconds" == 0 ]] || fuzz_deps=(clang libclang-rt-14-dev)
scripts/setup.sh --deps-only debootstrap python3 clang-format "${fuzz_deps[@]}"
# Formatting is checked first (a second) and fails the run at the end, after the tests.
format_status=0
scripts/check_format.sh || format_status=1
if [[ "${CKCONV_TEST_SANITIZE:-1}" == 1 ]]; then
  # One build serves every test; unity batches keep the instrumented build short.
  export CKCONV_BUILD_DIR="${CKCONV_BUILD_DIR:-build-test}" CKCONV_BUILD_TYPE=Sanitize
  export CKCONV_CMAKE_ARGS="-DCKCONV_SANITIZE=ON -DCMAKE_UNITY_BUILD=ON ${CKCONV_CMAKE_ARGS:-}"
  # Leaks are findings too; halt on the first report so the test fails.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi

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

# Brief fuzzing next to the tests (its own clang build, build-fuzz-ci/).
if [[ "$fuzz_seconds" != 0 ]]; then
  (CKCONV_FUZZ_BUILD_DIR=build-fuzz-ci CKCONV_FUZZ_BUILD_TYPE=Sanitize \
     scripts/fuzz.sh all "$fuzz_seconds" >"$logs/fuzz.log" 2>&1; echo $? >"$logs/fuzz.status") &
fi
status=0
(cd "${CKCONV_BUILD_DIR:-build}" && ctest --output-on-failure -j"$(nproc)" "$@") || status=$?
wait
if [[ "$fuzz_seconds" != 0 ]]; then
  echo "fuzzing, ${fuzz_seconds}s per target:" >&2
  sed 's/^/  /' "$logs/fuzz.log" | grep -v '^  \[' >&2
  [[ "$(cat "$logs/fuzz.status")" == 0 ]] || { echo "test: FUZZING FOUND A PROBLEM (above)" >&2; status=1; }
fi
rm -rf "$logs"
[[ "$format_status" == 0 ]] || { echo "test: FORMATTING DIFFERS from .clang-format (above)" >&2; status=1; }
exit "$status"
