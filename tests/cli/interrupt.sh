# SIGINT, SIGTERM and SIGHUP while reading, writing, verifying and publishing: the run stops,
# removes its staging and scratch folders, says what it was doing, exits 128 + signal, and
# the previous output is intact. Leftovers of dead runs are removed by the next run. verify
# on a read-only checkpoint as an unprivileged user, and the up-front scratch space check.
# Uses the test-only hook CKCONV_TEST_PAUSE_AT (docs/output_safety.md).
source "$(dirname "$0")/lib.sh"
# Job control, so background jobs do not start with SIGINT ignored (ckconv keeps ignored
# signals ignored, as nohup and scripts expect).
set -m
GQA="$FIXTURES/adapters/llama3_tiny_gqa"
cp "$GQA/native.safetensors" input.safetensors
cp "$GQA/flavor.json" flavor.json
args=(-m llama3 -f "$(fixture_field llama3_tiny_gqa base_flavor)" --set-from "$WORK/flavor.json")
input="$WORK/input.safetensors"
no_leftovers() {  # no_leftovers DIR LABEL
  if ls -A "$1" | grep -q 'ckconv-'; then fail "$2: leftovers in $1: $(ls -A "$1")"; else pass "$2: no leftovers"; fi
}

# interrupt_at POINT SIGNAL CODE FRAGMENT -- command...: runs the command paused at POINT,
# sends SIGNAL, and expects exit CODE with FRAGMENT on stderr.
interrupt_at() {
  local point="$1" signal="$2" code="$3" fragment="$4" pid status=0 waited=0
  shift 5
  # The last run's stderr.txt could still match until the new job truncates it: a signal
  # sent then would reach the job's shell before it runs ckconv.
  rm -f stderr.txt
  CKCONV_TEST_PAUSE_AT="$point" "$@" 2>stderr.txt >/dev/null &
  pid=$!
  until grep -q "test pause at $point" stderr.txt 2>/dev/null; do
    if ((waited++ > 1000)) || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.01
  done
  kill "-$signal" "$pid" 2>/dev/null
  wait "$pid" || status=$?
  if [[ "$status" == "$code" ]] && grep -q -- "$fragment" stderr.txt; then
    pass "$point/$signal: exit $code, '$fragment'"
  else
    fail "$point/$signal: expected exit $code and '$fragment', got $status: $(cat stderr.txt)"
  fi
}

"$CKCONV" to-hf -q "${args[@]}" -i "$input" -o reference
cp -a reference old && echo kept > old/README.md
cp -a old old.copy
"$CKCONV" init -q "${args[@]}" --seed 7 -o other.native  # a different checkpoint to write over old

# A new output: interrupted at each activity, nothing is left.
interrupt_at read INT 130 "interrupted (SIGINT) while reading .*; no output was changed" -- \
  "$CKCONV" to-hf "${args[@]}" -i "$input" -o new
interrupt_at write TERM 143 "interrupted (SIGTERM) while writing .*new; no output was changed" -- \
  "$CKCONV" to-hf "${args[@]}" -i "$input" -o new
interrupt_at verify HUP 129 "interrupted (SIGHUP) while verifying" -- \
  "$CKCONV" to-hf "${args[@]}" -i "$input" -o new --verify-roundtrip
interrupt_at publish INT 130 "while publishing .*; no output was changed" -- \
  "$CKCONV" to-hf "${args[@]}" -i "$input" -o new
[[ ! -e new ]] && pass "new output: nothing published" || fail "new output: $(ls -A new)"
no_leftovers . "new output"

# Under nohup, SIGHUP stays ignored; SIGINT still stops the run.
rm -f stderr.txt  # as in interrupt_at
CKCONV_TEST_PAUSE_AT=write nohup "$CKCONV" to-hf "${args[@]}" -i "$input" -o nohup_out >/dev/null 2>stderr.txt &
pid=$!
for ((waited = 0; waited < 1000; waited++)); do grep -q "test pause" stderr.txt && break; sleep 0.01; done
kill -HUP "$pid"
sleep 0.3
kill -0 "$pid" 2>/dev/null && pass "nohup: SIGHUP ignored" || fail "nohup: SIGHUP stopped the run"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
[[ "$status" == 130 && ! -e nohup_out ]] && pass "nohup: SIGINT still stops it" || fail "nohup: exit $status"

# Over an existing output: the old checkpoint and the user's files are intact.
for case in "write TERM 143" "verify INT 130" "publish HUP 129" "publish-step-0 INT 130"; do
  read -r point signal code <<<"$case"
  interrupt_at "$point" "$signal" "$code" "no output was changed" -- \
    "$CKCONV" to-hf "${args[@]}" -i other.native -o old --force --verify-roundtrip
  diff -r old old.copy >/dev/null && pass "$point: the old output is intact" || fail "$point: old output changed"
  no_leftovers old "$point (inside the output)"
  no_leftovers . "$point (beside the output)"
done
# Once the journal is written the publish completes, then the run reports the signal.
interrupt_at publish-step-2 INT 130 "was written completely" -- \
  "$CKCONV" to-hf "${args[@]}" -i other.native -o old --force
"$CKCONV" to-hf -q "${args[@]}" -i other.native -o other.hf
same_bytes old/model.safetensors other.hf/model.safetensors "publish-step-2: the new output is complete"
[[ "$(cat old/README.md)" == kept ]] && pass "publish-step-2: README.md kept" || fail "publish-step-2: README.md"
no_leftovers old "publish-step-2"

# verify: its scratch folders go, beside the input or in the scratch directory.
mkdir scratch
interrupt_at verify INT 130 "while verifying" -- "$CKCONV" verify "${args[@]}" --native "$input"
no_leftovers . "verify interrupted (beside the input)"
interrupt_at verify TERM 143 "while verifying" -- "$CKCONV" verify "${args[@]}" --native "$input" --scratch scratch
no_leftovers scratch "verify interrupted (--scratch)"

# Leftovers of dead runs (pid 999999999 exists nowhere) are removed by the next run there.
mkdir -p .input.safetensors.ckconv-verify1-999999999 scratch/.x.ckconv-verify2-999999999 \
  .new.ckconv-tmp-999999999 old/.ckconv-staging-999999999 .live.ckconv-tmp-1
"$CKCONV" verify "${args[@]}" --native "$input" 2>stderr.txt
grep -q "ckconv-verify1-999999999, left by an interrupted run" stderr.txt && pass "verify reports the removal" ||
  fail "verify: $(cat stderr.txt)"
"$CKCONV" verify -q "${args[@]}" --native "$input" --scratch scratch
"$CKCONV" to-hf "${args[@]}" -i "$input" -o old --force 2>stderr.txt
grep -q "ckconv-staging-999999999, left by an interrupted run" stderr.txt &&
  pass "to-hf reports the staging it removed" || fail "to-hf: $(cat stderr.txt)"
[[ -d .live.ckconv-tmp-1 ]] && pass "a live run's folder is kept" || fail "a live run's folder was removed"
rmdir .live.ckconv-tmp-1
no_leftovers . "dead runs (beside)"
no_leftovers scratch "dead runs (scratch)"
no_leftovers old "dead runs (inside)"

# verify on a read-only checkpoint, as an unprivileged user: scratch goes to $TMPDIR.
as_nobody=()
if [[ "$(id -u)" != 0 ]]; then
  as_nobody=(env)
elif command -v setpriv >/dev/null; then
  as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
elif command -v runuser >/dev/null; then
  as_nobody=(runuser -u nobody --)
fi
if [[ ${#as_nobody[@]} == 0 ]]; then
  echo "SKIP read-only verify: neither setpriv nor runuser exists to drop root's privileges"
else
  chmod 755 "$WORK"
  chmod 644 flavor.json
  mkdir -p readonly/ckpt nobody_tmp
  cp "$input" readonly/ckpt/model.safetensors
  chmod -R a-w readonly
  [[ "$(id -u)" == 0 ]] && chown nobody nobody_tmp
  status=0
  "${as_nobody[@]}" env TMPDIR="$WORK/nobody_tmp" "$CKCONV" verify -q "${args[@]}" --native "$WORK/readonly/ckpt" \
    2>stderr.txt || status=$?
  [[ "$status" == 0 ]] && pass "verify of a read-only checkpoint as $("${as_nobody[@]}" id -un)" ||
    fail "read-only verify: exit $status: $(cat stderr.txt)"
  no_leftovers readonly "read-only verify"
  no_leftovers nobody_tmp "read-only verify (TMPDIR)"
  expect_exit 5 "readonly: not writable" -- "${as_nobody[@]}" "$CKCONV" verify "${args[@]}" \
    --native "$WORK/readonly/ckpt" --scratch "$WORK/readonly"
  chmod -R u+w readonly
fi

# Not enough room for the intermediates: exit 5 before any work, naming the numbers.
if [[ "$(id -u)" == 0 ]] && mkdir -p tiny && mount -t tmpfs -o size=64k tmpfs tiny 2>/dev/null; then
  expect_exit 5 "MiB) free" -- "$CKCONV" verify "${args[@]}" --native "$input" --scratch tiny
  expect_exit 5 "$WORK/tiny: " -- "$CKCONV" to-hf "${args[@]}" -i "$input" -o roomless --verify-roundtrip --scratch tiny
  [[ ! -e roomless ]] && pass "no room: nothing written" || fail "no room: output written"
  umount tiny
else
  echo "skip scratch space check: cannot mount a small tmpfs here (tests/unit covers it)"
fi
finish
