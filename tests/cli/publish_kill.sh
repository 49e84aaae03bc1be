# kill -9 at random points of the publish into an existing output, over and over, for each
# kind of replacement docs/output_safety.md describes: the directory as the killed run left
# it, before any other run touches it, always holds the old or the new complete checkpoint
# as a reader finds it, and the next run finishes the publish a killed run had begun. Kill
# points come from the test-only hook CKCONV_TEST_PAUSE_AT=publish-step-K (every step, in
# turn) and from plain timing. The killed runs use --no-sync (a kill is not a power cut: file
# data need not reach the disk); the publish's directory syncs run regardless.
#
# Each lane is one output directory that goes back and forth between two checkpoints A and
# B; every iteration writes the one the directory does not hold, so that the run killed in
# one iteration is the "next run" of the one before (it finishes that publish first). That
# keeps the loop at one ckconv start per iteration (plus an `inspect` at every eighth), which
# matters: the 200 iterations also run under ASan in CI.
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2046
set -- $(fixture_args llama3_tiny_gqa)
ITERATIONS="${CKCONV_KILL_ITERATIONS:-200}"
# The leak check runs at a clean exit, which the killed runs never reach; the code paths of
# the surviving runs are leak-checked by the other CLI tests. Off here, each start of the
# instrumented binary is a third cheaper.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mkfifo never
exec {never}<>never
pause() { read -r -t "$1" -u "$never" || true; }
# running PID: the process exists and has not exited. A child that exited stays a zombie until
# bash reaps it, which bash may defer while it sits in `read`; `kill -0` succeeds on a zombie.
running() {
  local state
  read -r _ _ state _ <"/proc/$1/stat" 2>/dev/null || return 1
  [[ "$state" != Z ]]
}

"$CKCONV" init -q "$@" --seed 1 -o n1
"$CKCONV" init -q "$@" --seed 2 -o n2
size=$(stat -c %s n1/model.safetensors)
three="--max-shard-size $((size * 40 / 100))"
two="--max-shard-size $((size * 60 / 100))"
dcp="--native-format dcp"

# Lane: the commands that write A and B. A over B and B over A are the transitions tested:
#   0  one file over one file
#   1  2 shards over 3 and 3 over 2 (new names)
#   2  2 shards over 2 of the same names (the old shards kept, the old index redirected)
#   3  DCP over DCP (the new data file takes another name)
#   4  shards over one file, one file over shards
lanes_a=("to-hf $* -i n1" "to-hf $* -i n1 $three" "to-hf $* -i n1 $two" "init $* --seed 1 $dcp"
         "to-hf $* -i n1")
lanes_b=("to-hf $* -i n2" "to-hf $* -i n2 $two" "to-hf $* -i n2 $two" "init $* --seed 2 $dcp"
         "to-hf $* -i n2 $two")
lanes=${#lanes_a[@]}

# view DIR: sets $seen to what a reader finds in DIR, following ckconv's precedence (the same
# as transformers' for safetensors): .metadata and the data file it names; else
# model.safetensors; else the index and the shards it names, read through the kept folder as
# through the plain names. Checksums of those files and the weight map; one `cksum` is the
# only process it starts. A DCP .metadata is told apart by its checksum: with_name (below)
# knows the checksum of each reference's .metadata under either data file name.
declare -A data_file_of canonical_of  # checksum of a reference .metadata -> the data file
# it names, and the checksum of the same .metadata naming __0_0.distcp
view() {
  local dir="$1" line files=() map="" sums
  if [[ -e "$dir/.metadata" ]]; then
    sums="$(cd "$dir" && cksum .metadata __0_0.distcp __0_1.distcp 2>/dev/null)" || true
    line="${sums%%$'\n'*}"
    local meta="${line% *}" name="${data_file_of[${line% *}]:-none}"
    [[ "$sums" =~ ([0-9]+ [0-9]+)\ $name ]] && seen="${canonical_of[$meta]} ${BASH_REMATCH[1]}" ||
      seen="$meta ?"
  elif [[ -e "$dir/model.safetensors" ]]; then
    seen="$(cksum <"$dir/model.safetensors")"
  elif [[ -e "$dir/model.safetensors.index.json" ]]; then
    while IFS= read -r line; do
      if [[ "$line" =~ \"([^\"]+)\":\ *\"([^\"]+\.safetensors)\" ]]; then
        map+="${BASH_REMATCH[1]}=${BASH_REMATCH[2]} "
        [[ " ${files[*]} " == *" ${BASH_REMATCH[2]} "* ]] || files+=("${BASH_REMATCH[2]}")
      fi
    done <"$dir/model.safetensors.index.json"
    seen="$(cd "$dir" && cksum "${files[@]}" 2>&1) $map" || true
    seen="${seen//.ckconv-previous\//}"
  else
    seen="no checkpoint"
  fi
}

declare -A view_of  # lane/A, lane/B -> the reader's view of that checkpoint
mkdir ref
for ((lane = 0; lane < lanes; lane++)); do
  # shellcheck disable=SC2086
  "$CKCONV" ${lanes_a[lane]} -q -o "ref/$lane-A"
  # shellcheck disable=SC2086
  "$CKCONV" ${lanes_b[lane]} -q -o "ref/$lane-B"
  for ref in "ref/$lane-A" "ref/$lane-B"; do
    [[ -e "$ref/.metadata" ]] || continue
    # The same .metadata naming the other data file: the one a publish over it writes.
    LC_ALL=C sed 's/__0_0\.distcp/__0_1.distcp/g' "$ref/.metadata" >renamed.metadata
    sum="$(cksum <"$ref/.metadata")" renamed="$(cksum <renamed.metadata)"
    data_file_of[$sum]=__0_0.distcp canonical_of[$sum]="dcp $sum"
    data_file_of[$renamed]=__0_1.distcp canonical_of[$renamed]="dcp $sum"
  done
  view "ref/$lane-A" && view_of[$lane/A]="$seen"
  view "ref/$lane-B" && view_of[$lane/B]="$seen"
  [[ "${view_of[$lane/A]}" != "${view_of[$lane/B]}" && "${view_of[$lane/A]}${view_of[$lane/B]}" != *"No such"* &&
     "${view_of[$lane/A]}${view_of[$lane/B]}" != *"?"* ]] ||
    fail "lane $lane: A and B are not two checkpoints: ${view_of[$lane/A]} / ${view_of[$lane/B]}"
  cp -a "ref/$lane-A" "out$lane"
  echo card > "out$lane/README.md"
  logical[lane]=A  # what out$lane holds once any pending publish is finished
done
[[ -e ref/1-A/model-00003-of-00003.safetensors && -e ref/2-A/model-00002-of-00002.safetensors &&
   -e ref/3-A/__0_0.distcp ]] || fail "unexpected reference layouts"

checkpoint_in() {  # checkpoint_in DIR LANE: sets $checkpoint to A, B or none
  view "$1"
  if [[ "$seen" == "${view_of[$2/A]}" ]]; then checkpoint=A
  elif [[ "$seen" == "${view_of[$2/B]}" ]]; then checkpoint=B
  else checkpoint=none; fi
}

declare -A tally  # lane/transition/raw state -> iterations
bad=0
for ((i = 0; i < ITERATIONS; i++)); do
  lane=$((i % lanes))
  out="out$lane"
  old="${logical[lane]}"
  if [[ "$old" == A ]]; then new=B command="${lanes_b[lane]}"; else new=A command="${lanes_a[lane]}"; fi
  : > stderr.txt
  if (((i / lanes) % 2 == 0)); then
    # Each pause point in turn, per lane: 0 (before the journal) to 9 (past the last step).
    point="publish-step-$(((i / (2 * lanes)) % 10))"
    # shellcheck disable=SC2086
    CKCONV_TEST_PAUSE_AT="$point" "$CKCONV" $command -o "$out" --force -q --no-sync 2>stderr.txt &
    pid=$!
    # With -q the pause message is all the run prints.
    # A run whose publish has fewer steps than the point exits without pausing.
    until [[ -s stderr.txt ]] || ! running "$pid"; do pause 0.005; done
  else
    point="time"
    # shellcheck disable=SC2086
    "$CKCONV" $command -o "$out" --force -q --no-sync 2>stderr.txt &
    pid=$!
    pause "0.0$((RANDOM % 40))"
  fi
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  paused=no
  [[ -s stderr.txt && "$point" != time ]] && paused=yes
  # The directory as the kill left it, read before any other run: one of the two checkpoints.
  checkpoint_in "$out" "$lane"
  raw="$checkpoint"
  ours=no others=no
  [[ -e "$out/.ckconv-staging-$pid/journal" ]] && ours=yes
  for journal in "$out"/.ckconv-staging-*/journal; do
    [[ -e "$journal" && "$journal" != "$out/.ckconv-staging-$pid/journal" ]] && others=yes
  done
  where="iteration $i (lane $lane, $old -> $new, $point)"
  if [[ "$raw" == none ]]; then
    bad=$((bad + 1))
    echo "FAIL $where: neither checkpoint: $(ls -A "$out"): $seen"
  fi
  # A run that reached its publish had first finished the publish a killed run had begun.
  if [[ "$paused" == yes && ( "$others" == yes || ( "$point" == publish-step-0 && "$raw" != "$old" ) ) ]]; then
    bad=$((bad + 1))
    echo "FAIL $where: the previous publish was not finished first: $raw, $(ls -A "$out")"
  fi
  # ckconv's own reader agrees that a checkpoint is there (the view says which one).
  if ((i % 8 == 0)) && ! "$CKCONV" inspect "$out" >/dev/null 2>inspect.txt; then
    bad=$((bad + 1))
    echo "FAIL $where, $raw: inspect refused: $(cat inspect.txt)"
  fi
  # What the directory becomes once the next run finishes what is pending.
  if [[ "$ours" == yes ]]; then logical[lane]="$new"
  elif [[ "$others" == no && "$raw" != none ]]; then logical[lane]="$raw"; fi
  tally["$lane/$old->$new/$raw"]=$((${tally["$lane/$old->$new/$raw"]:-0} + 1))
  [[ "$ours" == yes ]] && tally["journal"]=$((${tally["journal"]:-0} + 1))
done

# The last run into each lane, without --force: finishes what is pending, then refuses.
for ((lane = 0; lane < lanes; lane++)); do
  out="out$lane"
  # shellcheck disable=SC2086
  "$CKCONV" ${lanes_a[lane]} -o "$out" >/dev/null 2>stderr.txt && { bad=$((bad + 1)); echo "FAIL: no --force accepted"; }
  checkpoint_in "$out" "$lane"
  state="$checkpoint"
  read -r card < "$out/README.md"
  if [[ "$state" != "${logical[lane]}" ]] || compgen -G "$out/.ckconv-*" >/dev/null ||
     compgen -G ".$out.ckconv-*" >/dev/null || [[ "$card" != card ]]; then
    bad=$((bad + 1))
    echo "FAIL lane $lane: after the last run $state (expected ${logical[lane]}), or leftovers: $(ls -A "$out" .)"
  fi
done
for key in "${!tally[@]}"; do echo "lane/transition/raw state, journals: $key: ${tally[$key]}"; done | sort
[[ "$bad" == 0 ]] && pass "$ITERATIONS kills: always the old or the new checkpoint, finished by the next run" ||
  fail "$bad bad states"
missing=""
for transition in 0/A-\>B 0/B-\>A 1/A-\>B 1/B-\>A 2/A-\>B 2/B-\>A 3/A-\>B 3/B-\>A 4/A-\>B 4/B-\>A; do
  from="${transition:2:1}" to="${transition:5:1}"
  [[ -n "${tally[$transition/$from]:-}" && -n "${tally[$transition/$to]:-}" ]] || missing+=" $transition"
done
[[ -z "$missing" && -n "${tally[journal]:-}" ]] &&
  pass "kills landed before and after the commit point of every transition, and mid-publish" ||
  fail "kills did not cover both sides of the commit point of:$missing"
finish
