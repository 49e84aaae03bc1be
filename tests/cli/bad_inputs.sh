# The bad-input corpus against the real binary: damaged and hostile copies of the real fixtures
# (tests/bad_inputs/make_corpus.py: safetensors, index.json, DCP, torch.save, pickle, model
# and config level), then the environment (unwritable output, full disk, SIGKILL mid-run).
# Every case must fail with its documented exit code (README "Exit codes") and one clear
# message naming the problem and the file; no crash, no sanitizer report, no output left.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "FAIL bad_inputs.sh needs python3 (plain, no torch) to generate the corpus"; exit 1; }
python3 "$CKCONV_SOURCE_DIR/tests/bad_inputs/make_corpus.py" "$FIXTURES" corpus >/dev/null
# shellcheck disable=SC2046
gqa_args=($(fixture_args llama3_tiny_gqa))

# check_failure NAME CODE FRAGMENT NAMES STATUS OUTPUT: the one judgement every case gets.
check_failure() {
  local name="$1" code="$2" fragment="$3" names="$4" status="$5" out="$6" problems=""
  [[ "$status" == "$code" ]] || problems+=" exit $status, expected $code;"
  [[ "$out" == *"$fragment"* ]] || problems+=" message lacks '$fragment';"
  [[ -z "$names" || "$out" == *"$names"* ]] || problems+=" message does not name '$names';"
  [[ "$out" != *AddressSanitizer* && "$out" != *"runtime error:"* && "$out" != *LeakSanitizer* ]] ||
    problems+=" sanitizer report;"
  [[ "$out" != *"internal error"* ]] || problems+=" internal error;"
  [[ "$(grep -c '^ckconv: error:' <<<"$out")" == 1 || "$code" == 2 ]] || problems+=" not exactly one error message;"
  if [[ -z "$problems" ]]; then
    pass "$name: exit $code"
    [[ -z "${CKCONV_TEST_VERBOSE:-}" ]] || echo "     $(head -n 1 <<<"$out" | cut -c1-300)"
  else
    fail "$name:$problems output: $(head -c 600 <<<"$out")"
  fi
}

# --- the generated corpus ------------------------------------------------------------------
declare -A per_category
while IFS=$'\t' read -r -a row; do
  name="${row[0]}" code="${row[1]}" fragment="${row[2]}" names="${row[3]}"
  [[ "$fragment" == - ]] && fragment=""
  [[ "$names" == - ]] && names=""
  argv=()
  for arg in "${row[@]:4}"; do
    if [[ "$arg" == @GQA ]]; then argv+=("${gqa_args[@]}"); else argv+=("$arg"); fi
  done
  status=0
  out="$("$CKCONV" "${argv[@]}" 2>&1 >/dev/null)" || status=$?
  check_failure "$name" "$code" "$fragment" "$names" "$status" "$out"
  category="${name%%.*}"
  per_category[$category]=$((${per_category[$category]:-0} + 1))
done <corpus/cases.tsv
leftovers="$(find corpus/out -mindepth 1 -maxdepth 1 2>/dev/null | head -n 3)"
[[ -z "$leftovers" ]] && pass "no output or staging directory left by failed runs" || fail "left behind: $leftovers"

# --- environment -----------------------------------------------------------------------------
input="$FIXTURES/adapters/llama3_tiny_gqa/native.safetensors"
run_case() {  # run_case NAME CODE FRAGMENT -- command...
  local name="$1" code="$2" fragment="$3" status=0 out
  shift 4
  out="$("$@" 2>&1 >/dev/null)" || status=$?
  check_failure "env.$name" "$code" "$fragment" "" "$status" "$out"
  per_category[env]=$((${per_category[env]:-0} + 1))
}
no_staging_in() {  # no_staging_in DIR LABEL
  if ls -A "$1" | grep -q 'ckconv-'; then fail "$2: staging left in $1: $(ls -A "$1")"; else pass "$2: no staging left"; fi
}

touch parent_is_a_file
run_case output_parent_is_a_file 5 "parent_is_a_file is not a directory" -- "$CKCONV" to-hf "${gqa_args[@]}" -i "$input" -o parent_is_a_file/out

# --force onto a directory that holds the input: the input would be deleted on success.
mkdir -p holder && cp "$input" holder/native.safetensors
run_case output_contains_input 2 "contains the input" -- "$CKCONV" to-hf "${gqa_args[@]}" -i holder/native.safetensors -o holder --force
run_case output_is_input 2 "contains the input" -- "$CKCONV" from-hf "${gqa_args[@]}" -i "$FIXTURES/adapters/llama3_tiny_gqa/hf" -o "$FIXTURES/adapters/llama3_tiny_gqa/hf" --force
[[ -f holder/native.safetensors ]] && pass "the input survived" || fail "the input was deleted"

# Output directory not writable. Root ignores permission bits, so as root use a read-only mount.
mkdir -p readonly
mounted=""
if [[ "$(id -u)" == 0 ]]; then
  mount -t tmpfs -o size=1m,ro tmpfs readonly 2>/dev/null && mounted=readonly
else
  chmod a-w readonly
fi
if [[ "$(id -u)" != 0 || -n "$mounted" ]]; then
  run_case output_not_writable 5 "cannot create" -- "$CKCONV" to-hf "${gqa_args[@]}" -i "$input" -o readonly/out
else
  echo "skip output_not_writable: cannot mount a read-only tmpfs here"
fi
[[ -n "$mounted" ]] && umount readonly

# Disk full: a 2 MiB tmpfs for a ~30 MB output; then a file-size limit (SIGXFSZ ignored, so
# the write fails with EFBIG instead of killing the process).
big=(-m llama3 -f debugmodel)
"$CKCONV" init -q "${big[@]}" -o big.native
if [[ "$(id -u)" == 0 ]] && mkdir -p small && mount -t tmpfs -o size=2m tmpfs small 2>/dev/null; then
  run_case disk_full_tmpfs 5 "" -- "$CKCONV" to-hf "${big[@]}" -i big.native -o small/hf
  [[ ! -e small/hf ]] && pass "disk full: no output" || fail "disk full: output left: $(ls -A small)"
  no_staging_in small "disk full"
  umount small
else
  echo "skip disk_full_tmpfs: cannot mount a tmpfs here"
fi
run_case file_size_limit 5 "" -- bash -c 'ulimit -f 1024; exec "$0" "$@"' "$CKCONV" to-hf "${big[@]}" -i big.native -o limited
[[ ! -e limited ]] && pass "file size limit: no output" || fail "file size limit: output left"
no_staging_in . "file size limit"

# Killed with SIGKILL mid-run: no partial output, and a previous complete output survives.
# `init` of a real-shaped flavor writes ~2.5 GB, long enough to be killed while writing.
killed=(-m llama3 -f 8B --set n_layers=2 --dtype bf16)
# A new output is staged beside it, an existing one inside it.
kill_midway() {  # kill_midway OUTPUT [--force]: starts init, kills it once it has written something
  "$CKCONV" init -q "${killed[@]}" -o "$@" &
  local pid=$! waited=0 staging
  while ((waited < 300)); do
    for staging in ".$1.ckconv-tmp-$pid" "$1/.ckconv-staging-$pid"; do
      if [[ -d "$staging" && -n "$(find "$staging" -type f -size +1M)" ]]; then break 2; fi
    done
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$pid"
}
pid="$(kill_midway victim)"
[[ ! -e victim ]] && pass "SIGKILL: no output published" || fail "SIGKILL: partial output 'victim' exists"
[[ -d ".victim.ckconv-tmp-$pid" ]] && pass "SIGKILL: the staging dir of the dead run is there" ||
  fail "SIGKILL: expected .victim.ckconv-tmp-$pid (killed too late or too early?): $(ls -A)"
"$CKCONV" to-hf -q "${gqa_args[@]}" -i "$input" -o victim
[[ -f victim/model.safetensors ]] && pass "SIGKILL: the next run succeeds" || fail "SIGKILL: the next run failed"
no_staging_in . "SIGKILL: the next run removed the stale staging dir"
cp victim/model.safetensors previous.safetensors
pid="$(kill_midway victim --force)"
same_bytes victim/model.safetensors previous.safetensors "SIGKILL with --force: the previous complete output is intact"
[[ ! -e victim/.metadata ]] && pass "SIGKILL with --force: nothing of the killed run in the output" || fail "SIGKILL --force: mixed output"
"$CKCONV" inspect victim >/dev/null 2>&1 && pass "SIGKILL with --force: the old output still reads" || fail "SIGKILL --force: old output unreadable"
"$CKCONV" to-hf -q "${gqa_args[@]}" -i "$input" -o victim --force
no_staging_in . "SIGKILL with --force: the next run removed the stale staging dir"
no_staging_in victim "SIGKILL with --force: the next run removed the stale staging dir inside the output"

for category in "${!per_category[@]}"; do echo "cases: $category ${per_category[$category]}"; done | sort
finish
