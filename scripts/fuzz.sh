#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp, clang + ASan/UBSan) into build-fuzz/
# and runs them.
#   scripts/fuzz.sh TARGET|all SECONDS   fuzz each target for SECONDS, starting from its seed
#                                        corpus tests/fuzz/corpus/<target>/ (new inputs go to
#                                        build-fuzz/corpus/<target>/, not into the repository)
#   scripts/fuzz.sh replay [TARGET|all]  run every saved seed once under libFuzzer (fast; ctest
#                                        replays them too, as fuzz_replay.*, in every build)
# A finding stops the run and leaves crash-*/leak-*/oom-*/timeout-* in build-fuzz/findings/;
# fix it and add the input to the seed corpus (or a unit test) so replay keeps checking it.
# Environment: CKCONV_FUZZ_BUILD_DIR (default build-fuzz), CKCONV_FUZZ_BUILD_JOBS (default 2),
# CKCONV_FUZZ_BUILD_TYPE (default RelWithDebInfo; the test script uses Sanitize, quicker to
# build), CKCONV_FUZZ_FLAGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
build="${CKCONV_FUZZ_BUILD_DIR:-build-fuzz}"
targets=(safetensors_header_fuzz safetensors_index_fuzz pickle_fuzz zip_fuzz torch_save_fuzz
         dcp_metadata_fuzz toml_subset_fuzz)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }
[[ $# -ge 1 ]] || usage
mode="$1"
if [[ "$mode" == replay ]]; then selected="${2:-all}"; else selected="$mode"; seconds="${2:-}"; [[ -n "$seconds" ]] || usage; fi
if [[ "$selected" == all ]]; then
  chosen=("${targets[@]}")
else
  [[ " ${targets[*]} " == *" $selected "* ]] || { echo "fuzz.sh: unknown target '$selected' (one of: ${targets[*]})" >&2; exit 2; }
  chosen=("$selected")
fi

if [[ ! -f "$build/build.ninja" ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE="${CKCONV_FUZZ_BUILD_TYPE:-RelWithDebInfo}" -DCMAKE_UNITY_BUILD=ON \
    -DCKCONV_FUZZ=ON >/dev/null
fi
cmake --build "$build" --target fuzzers -j"${CKCONV_FUZZ_BUILD_JOBS:-2}"

# Leaks are reported by the targets' own checks; a limit on memory turns unbounded allocation
# into a finding (oom-*), a limit on time per input turns super-linear work into one.
common=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1)
# No allocation stack traces while fuzzing (malloc_context_size=0): collecting them took most
# of the time of the allocation-heavy targets (dcp_metadata side by side: ~2,400 -> ~4,800
# executions/s);
# replay a finding with the default options to get them.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0:malloc_context_size=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$build/findings"
status=0
for target in "${chosen[@]}"; do
  seeds="$root/tests/fuzz/corpus/$target"
  dict=()
  [[ -f "$root/tests/fuzz/$target.dict" ]] && dict=(-dict="$root/tests/fuzz/$target.dict")
  if [[ "$mode" == replay ]]; then
    echo "== replay $target ($(ls "$seeds" | wc -l) inputs)"
    "$build/$target" "${common[@]}" -runs=0 "$seeds" >"$build/findings/$target.replay.log" 2>&1 ||
      { status=1; echo "FAIL replay $target:"; tail -n 30 "$build/findings/$target.replay.log"; }
    continue
  fi
  work="$build/corpus/$target"
  mkdir -p "$work"
  echo "== fuzz $target for ${seconds}s"
  # shellcheck disable=SC2086
  if "$build/$target" "${common[@]}" "${dict[@]}" -max_total_time="$seconds" \
      -artifact_prefix="$build/findings/$target-" ${CKCONV_FUZZ_FLAGS:-} "$work" "$seeds" \
      >"$build/findings/$target.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/findings/$target.log" | sed 's/^/   /'
  else
    status=1
    echo "FAIL $target: finding saved in $build/findings/ (log: $build/findings/$target.log)"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$build/findings/$target.log" | head -n 8
  fi
done
exit "$status"
