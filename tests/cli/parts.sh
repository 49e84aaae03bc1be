# One conversion split across processes (--part I/N, `ckconv publish`): for HF (one file and
# shards) and DCP outputs N = 1, 2, 4 parts (torch.save: 2) run at once publish
# exactly the bytes of a single-process conversion; a part killed (kill -9) before its
# marker and run again completes the set; the launchers' variables are read only when
# --part names them; parts of different conversions, an incomplete set and an existing output
# are refused with their exit codes; quantized releases split as well.
source "$(dirname "$0")/lib.sh"
model=(-m llama3 -f debugmodel --set n_layers=2)
run=(-q --block-mib 1 --threads 2)  # 1 MiB blocks: a few per file, so parts share files

"$CKCONV" init -q "${model[@]}" --dtype bf16 --seed 3 --native-format dcp -o native
size=$(stat -c %s native/__0_0.distcp)
shards=(--max-shard-size $((size * 40 / 100)))
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o ref.hf
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o ref.shards "${shards[@]}"
"$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o ref.dcp
"$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o ref.torch --native-format torch

# same_tree A B LABEL: the same file names (hidden ones too) and bytes.
same_tree() {
  if diff -r "$1" "$2" >/dev/null && [[ "$(ls -A "$1")" == "$(ls -A "$2")" ]]; then
    pass "$3"
  else
    fail "$3 ($(diff -r "$1" "$2" 2>&1 | head -n2))"
  fi
}
# Each case: NAME REFERENCE COMMAND ARGS (written to -o NAME).
cases=(
  "hf ref.hf to-hf -i native"
  "shards ref.shards to-hf -i native ${shards[*]}"
  "dcp ref.dcp from-hf -i ref.hf"
  "torch ref.torch from-hf -i ref.hf --native-format torch"
)
for n in 1 2 4; do
  for entry in "${cases[@]}"; do
    read -r name ref command rest <<<"$entry"
    [[ $name != torch || $n == 2 ]] || continue  # the zip CRC pieces: one split is enough
    out="$name.$n"
    pids=()
    for ((i = 1; i <= n; i++)); do
      # shellcheck disable=SC2086
      "$CKCONV" $command $rest "${run[@]}" "${model[@]}" -o "$out" --part "$i/$n" --no-sync &
      pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    if [[ $status == 0 ]]; then pass "$out: $n parts exit 0"; else fail "$out: a part exited $status"; fi
    same_tree "$out" "$ref" "$out: $n parts publish the single-process bytes"
    [[ ! -e ".$out.ckconv-parts" ]] && pass "$out: staging removed" || fail "$out: staging left"
  done
done

# kill -9 a part (before its marker, and at its first block), run the others, publish is
# refused naming the missing part, run it again: the set completes and publishes.
wait_for_pause() {  # wait_for_pause PID FILE
  until grep -q "test pause" "$2" 2>/dev/null || ! kill -0 "$1" 2>/dev/null; do sleep 0.05; done
}
for point in part-marker write; do
  out="killed.$point"
  CKCONV_TEST_PAUSE_AT=$point "$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o "$out" \
    --part 2/3 2>pause.txt &
  pid=$!
  wait_for_pause "$pid" pause.txt
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  "$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o "$out" --part 1/3
  "$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o "$out" --part 3/3
  [[ ! -e "$out" ]] && pass "$point: not published while part 2/3 is missing" || fail "$point: published early"
  expect_exit 3 "part(s) 2/3 of 3 not complete" -- "$CKCONV" publish "$out"
  "$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o "$out" --part 2/3
  same_tree "$out" ref.dcp "$point: killed part run again, published bytes are exact"
done

# A part that is the last to finish but does not publish (its claim taken), then publish.
mkdir -p .manual.ckconv-parts && echo "elsewhere 1" >.manual.ckconv-parts/publishing
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o manual --part 1/2 "${shards[@]}"
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o manual --part 2/2 "${shards[@]}"
[[ ! -e manual ]] && pass "claimed staging: the last part leaves the publish" || fail "claimed: published"
expect_exit 6 "is being published by host elsewhere pid 1" -- "$CKCONV" publish manual
rm .manual.ckconv-parts/publishing
"$CKCONV" publish -q .manual.ckconv-parts
same_tree manual ref.shards "ckconv publish STAGING publishes the shards"

# The launchers' variables: only when --part names them.
RANK=1 WORLD_SIZE=2 "$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o plain
same_tree plain ref.hf "RANK/WORLD_SIZE without --part: a plain conversion"
RANK=0 WORLD_SIZE=2 "$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o env --part torchrun
SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_STEP=2 SLURM_ARRAY_TASK_COUNT=2 \
  "$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o env --part auto
same_tree env ref.hf "torchrun rank 0 and Slurm array task 7 (5-7:2) make the two parts"
expect_exit 2 "say which splits the work" -- env RANK=0 WORLD_SIZE=2 SLURM_ARRAY_TASK_ID=1 \
  SLURM_ARRAY_TASK_COUNT=2 "$CKCONV" to-hf "${model[@]}" -i native -o x --part auto
expect_exit 2 "neither torchrun" -- env -u RANK -u WORLD_SIZE -u SLURM_ARRAY_TASK_ID \
  "$CKCONV" to-hf "${model[@]}" -i native -o x --part auto
expect_exit 2 "is beyond 2 parts" -- "$CKCONV" to-hf "${model[@]}" -i native -o x --part 3/2
expect_exit 2 "expected I/N" -- "$CKCONV" to-hf "${model[@]}" -i native -o x --part 0/2
expect_exit 2 "excludes" -- "$CKCONV" to-hf "${model[@]}" -i native -o x --part 1/2 --verify-roundtrip

# Parts of different conversions in one staging; an output holding a checkpoint.
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o mixed --part 1/2
expect_exit 2 "holds parts of another conversion" -- "$CKCONV" to-hf "${run[@]}" "${model[@]}" \
  -i native -o mixed --part 2/3
expect_exit 2 "holds parts of another conversion" -- "$CKCONV" to-hf "${run[@]}" "${model[@]}" \
  -i native -o mixed --part 2/2 "${shards[@]}"
expect_exit 6 "--force" -- "$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o ref.hf --part 1/1
expect_exit 3 "no parts to publish" -- "$CKCONV" publish nothing
# Quantized releases (the parts dequantize their share from the same decoded view of the
# FP8/MXFP4 input): N = 2 and 3 parts publish the single-process bytes.
python3 "$CKCONV_SOURCE_DIR/tests/make_releases.py" rel deepseek-v3 gpt-oss-20b >/dev/null
for release in deepseek-v3 gpt-oss-20b; do
  "$CKCONV" from-hf "${run[@]}" -i "rel/$release" -o "$release.1" --native-format safetensors
  for n in 2 3; do
    out="$release.$n"
    pids=()
    for ((i = 1; i <= n; i++)); do
      "$CKCONV" from-hf "${run[@]}" -i "rel/$release" -o "$out" --native-format safetensors \
        --part "$i/$n" --no-sync 2>"$out.err.$i" &
      pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    if [[ $status == 0 ]]; then
      pass "$out: $n parts of a quantized release exit 0"
    else
      fail "$out: a part exited $status: $(cat "$out".err.* | head -c 300)"
    fi
    same_tree "$out" "$release.1" "$out: $n parts of a quantized release publish the same bytes"
  done
done

# --force over an existing output: the journaled publish replaces the shards by one file.
cp -a ref.shards forced && echo card >forced/README.md
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o forced --part 1/2 --force
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o forced --part 2/2 --force
rm forced/README.md
same_tree forced ref.hf "--force: parts replace the shards, other files kept"
# Over the same shard names (the old shards kept aside for the publish, then removed), and
# DCP over DCP (the data file takes the name the old checkpoint lacks, as one process would).
cp -a ref.shards shards.over
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o shards.over --part 1/2 --force "${shards[@]}"
"$CKCONV" to-hf "${run[@]}" "${model[@]}" -i native -o shards.over --part 2/2 --force "${shards[@]}"
same_tree shards.over ref.shards "--force: parts over the same shard names, nothing left aside"
cp -a ref.dcp dcp.single && cp -a ref.dcp dcp.over
"$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o dcp.single --force
"$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o dcp.over --part 1/2 --force
"$CKCONV" from-hf "${run[@]}" "${model[@]}" -i ref.hf -o dcp.over --part 2/2 --force
[[ -e dcp.single/__0_1.distcp ]] && same_tree dcp.over dcp.single \
  "--force: DCP parts over DCP publish the single-process bytes (__0_1.distcp)" ||
  fail "DCP over DCP: $(ls -A dcp.single)"
finish
