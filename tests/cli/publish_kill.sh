# kill -9 at random points of the publish into an existing output, over and over: the
# output is always the old or the new complete checkpoint (compared with known files and
# read back with `ckconv inspect`), or, only in the few-rename windows docs/output_safety.md
# describes, holds no checkpoint while its journal is pending; the next run then finishes
# the publish. Kill points come from the test-only hook CKCONV_TEST_PAUSE_AT=publish-step-K
# (every step) and from plain timing. The killed runs use --no-sync (a kill is not a power
# cut: file data need not reach the disk); the publish's directory syncs run regardless.
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2046
set -- $(fixture_args llama3_tiny_gqa)
ITERATIONS="${CKCONV_KILL_ITERATIONS:-200}"
# The loop runs 200+ times: it sleeps with bash's own `read -t` on a FIFO nobody writes and
# compares files with one cksum per check, to spend its time in ckconv rather than in forks.
# The leak check runs at a clean exit, which the killed runs never reach; the code paths of
# the surviving runs are leak-checked by the other CLI tests. Off here, each of the 600
# starts of the instrumented binary is a third cheaper.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mkfifo never
exec {never}<>never
pause() { read -r -t "$1" -u "$never" || true; }

"$CKCONV" init -q "$@" --seed 1 -o n1
"$CKCONV" init -q "$@" --seed 2 -o n2
size=$(stat -c %s n1/model.safetensors)
three=(--max-shard-size $((size * 40 / 100)))
two=(--max-shard-size $((size * 60 / 100)))
mkdir ref
"$CKCONV" to-hf -q "$@" -i n1 -o ref/hf1
"$CKCONV" to-hf -q "$@" -i n2 -o ref/hf2
"$CKCONV" to-hf -q "$@" -i n1 -o ref/hf1_3 "${three[@]}"
"$CKCONV" to-hf -q "$@" -i n2 -o ref/hf2_2 "${two[@]}"
"$CKCONV" init -q "$@" --seed 1 --native-format dcp -o ref/dcp1
"$CKCONV" init -q "$@" --seed 2 --native-format dcp -o ref/dcp2

# Scenario INDEX: OLD NEW WINDOW_FREE COMMAND... (the command writes NEW over OLD in "out").
# Window-free scenarios must show the old or the new checkpoint at every kill point.
scenarios=(
  "hf1 hf2 yes to-hf $* -i n2"
  "hf1_3 hf2_2 yes to-hf $* -i n2 ${two[*]}"
  "dcp1 dcp2 no init $* --seed 2 --native-format dcp"
  "hf1 hf2_2 no to-hf $* -i n2 ${two[*]}"
  "hf2_2 hf1 no to-hf $* -i n1"
)
declare -A files sums  # reference name -> its file names, their checksums
for ref in ref/*; do
  files[${ref#ref/}]="$(ls -A "$ref")"
  # shellcheck disable=SC2086
  sums[${ref#ref/}]="$(cd "$ref" && cksum ${files[${ref#ref/}]})"
done
# is_checkpoint DIR REF [read]: every file of REF is in DIR with the same bytes, and with
# "read", ckconv also reads DIR (the reader's view, not only the files).
is_checkpoint() {
  # shellcheck disable=SC2086
  [[ "$(cd "$1" && cksum ${files[$2]} 2>/dev/null)" == "${sums[$2]}" ]] || return 1
  [[ "${3:-}" != read ]] || "$CKCONV" inspect "$1" >/dev/null 2>&1
}
state() {  # state DIR OLD NEW [read]: sets $checkpoint to old, new or none
  if is_checkpoint "$1" "$2" "${4:-}"; then checkpoint=old
  elif is_checkpoint "$1" "$3" "${4:-}"; then checkpoint=new
  else checkpoint=none; fi
}

declare -A seen
bad=0
for ((i = 0; i < ITERATIONS; i++)); do
  read -r old new window_free command rest <<<"${scenarios[i % 5]}"
  rm -rf out && cp -a "ref/$old" out && echo card > out/README.md
  : > stderr.txt
  if ((i % 2 == 0)); then
    point="publish-step-$((RANDOM % 10))"
    # shellcheck disable=SC2086
    CKCONV_TEST_PAUSE_AT="$point" "$CKCONV" $command $rest -o out --force -q --no-sync 2>stderr.txt &
    pid=$!
    # With -q the pause message is all the run prints.
    until [[ -s stderr.txt ]] || ! kill -0 "$pid" 2>/dev/null; do pause 0.005; done
  else
    point="time"
    # shellcheck disable=SC2086
    "$CKCONV" $command $rest -o out --force -q --no-sync 2>stderr.txt &
    pid=$!
    pause "0.0$((RANDOM % 40))"
  fi
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  state out "$old" "$new" read
  raw="$checkpoint"
  if [[ "$raw" == none ]]; then
    if [[ "$window_free" == yes ]] || ! compgen -G "out/.ckconv-staging-*/journal" >/dev/null; then
      bad=$((bad + 1))
      echo "FAIL iteration $i ($old -> $new, $point): neither checkpoint and no pending journal: $(ls -A out)"
    fi
  fi
  # The next run into the same output: finishes or removes what the killed one left.
  # shellcheck disable=SC2086
  "$CKCONV" $command $rest -o out >/dev/null 2>stderr.txt && { bad=$((bad + 1)); echo "FAIL: no --force accepted"; }
  state out "$old" "$new"
  if [[ "$checkpoint" == none || ( "$raw" == new && "$checkpoint" != new ) ]]; then
    bad=$((bad + 1))
    echo "FAIL iteration $i ($old -> $new, $point): after the next run: $checkpoint (raw $raw): $(ls -A out)"
  fi
  read -r card < out/README.md
  if compgen -G "out/.ckconv-*" >/dev/null || compgen -G ".*.ckconv-*" >/dev/null || [[ "$card" != card ]]; then
    bad=$((bad + 1))
    echo "FAIL iteration $i: leftovers or README.md lost: $(ls -A out .)"
  fi
  seen["$raw/$checkpoint"]=$((${seen["$raw/$checkpoint"]:-0} + 1))
done
for key in "${!seen[@]}"; do echo "raw/after-next-run $key: ${seen[$key]}"; done | sort
[[ "$bad" == 0 ]] && pass "$ITERATIONS kills: always the old or the new checkpoint" || fail "$bad bad states"
[[ -n "${seen[old/old]:-}" && -n "${seen[new/new]:-}" ]] && pass "kills landed both before and after the commit" ||
  fail "the kills did not cover both sides of the commit point"
finish
