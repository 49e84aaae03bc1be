#!/usr/bin/env bash
# Benchmark (not a test): ckconv to-hf, from-hf and verify on llama3-8B-shaped checkpoints of
# about 1, 4 and 8 GB and on a Qwen3-30B-A3B-shaped MoE checkpoint (128 experts), the layout
# cases (one real-sized llama4 17bx16e MoE layer, whose experts are transposed; one
# gpt-oss-120b layer in transformers' layout; from-hf of release-shaped gpt-oss-120b MXFP4 and
# DeepSeek-V3 FP8 MoE layers, which dequantize), next to
# `cp -r` of the same input (the disk's limit), the PyTorch path (load_file, permute,
# save_file in the reference environment of scripts/refenv.sh) and torchtitan's own path
# from a DCP checkpoint (dcp.load, the family's StateDictAdapter.to_hf, save_file; llama3
# cases, needs CKCONV_TORCHTITAN_GIT). Prints medians of wall time, CPU time and peak RSS,
# their ratios, which targets of issues 6 and 15 are met, and checks that outputs are
# byte-identical across runs, at --threads 1, 2 and 8, split with --part over 2 and 4
# processes, and to PyTorch's and torchtitan's.
#
# Usage: scripts/bench.sh [--ckconv BIN] [--work DIR] [--rounds N] [--cases "dense1 dense4 dense8 moe"]
#                         [--no-torch] [--keep]
#   (all cases: dense1 dense4 dense8 moe llama4 gptoss gptoss_mxfp4 dsv3_fp8; the default runs
#   the first four, the layout cases are named with --cases or --layout)
#   --layout      add the layout cases to the run
#   --ckconv BIN  the binary to measure (default: build/ckconv, built by scripts/setup.sh if missing)
#   --work DIR    scratch directory (default: <refenv root>/tmp/ckconv-bench, so that the chroot
#                 sees the same files; /var/tmp/ckconv-bench without the reference environment)
#   --rounds N    timed repetitions of every command (default 3; medians are reported)
#   --cases LIST  subset of the cases below
#   --no-torch    skip the PyTorch and torchtitan comparisons
#   --keep        keep the work directory
# Environment: CKCONV_TORCHTITAN_GIT, a git clone of pytorch/torchtitan (bare or not) holding
#   commit $torchtitan_commit below; without it the torchtitan comparison is skipped, saying why.
#
# Method (also printed with the results):
# - Warm input for everyone: each timed command's input is dropped from the page cache and
#   read back in 16 MiB reads right before it runs (the same large-folio cache for every
#   contender), and `sync` runs first so no earlier dirty data is flushed on its time. The
#   commands themselves then read warm: a cold start would time the virtual disk's reads
#   (~1.3 GB/s here), not the converters.
# - Rounds alternate the commands (cp, ckconv, PyTorch, ...) so that drift of a shared
#   machine hits all of them alike; medians of --rounds runs.
# - `cp -r` leaves its copy dirty in the page cache, while ckconv fsyncs its output before it
#   publishes it (crash safety). Both are reported: cp -r alone and cp -r + sync of the copy.
#   The native and HF checkpoints of a case hold the same bytes, so the copy is timed once,
#   of the native one, and is the reference of both directions (release cases: of the HF input).
#   The release cases dequantize into an output 2-3.7x their input: the from-hf output of
#   their first round is copied too (cp_out, in every round) and is a second reference.
# - Once per case, apart from the medians: to-hf and from-hf at --threads 1, 2 and 8 (peak RSS
#   of each printed), and each conversion once in one process and split with --part I/N over
#   N = 2 and 4 concurrent local processes (HF output in --max-shard-size 1GB shards, so that
#   it has several files); every output's CRC-32s must match.
# - torchtitan: the native checkpoint is also written as DCP (init, same seed: the same
#   tensors); torchtitan's path and ckconv to-hf both convert that DCP checkpoint, alternately,
#   and the ratio is ckconv's time over torchtitan's. The torchtitan source is exported at the
#   pinned commit (the 2026-08 generation, whose adapter maps ckconv's native keys) into the
#   work directory; its time includes starting Python and importing torch.
# - /usr/bin/time -f: wall, user + sys, max RSS (for PyTorch, of the python process).
set -euo pipefail

cd "$(dirname "$0")/.."
repo="$PWD"
ckconv="${CKCONV_BUILD_DIR:-build}/ckconv"
work=""
rounds=3
cases="dense1 dense4 dense8 moe"
torch=1
# torchtitan's 2026-08 generation (tests/fixtures/generations/README.md): its llama3
# StateDictAdapter maps the native keys ckconv writes by default.
torchtitan_commit=b5bcd76c6
# --max-shard-size of the --part checks: these cases' HF output is otherwise often one file.
parts_shard_size=1GB
keep=0
while (($#)); do
  case "$1" in
    --ckconv) ckconv="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --no-torch) torch=0; shift ;;
    --layout) cases="$cases llama4 gptoss gptoss_mxfp4 dsv3_fp8"; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

# --- Cases: name, model, flavor, overrides, approximate size in bytes, PyTorch arguments ---
# llama3 8B: 436 MB per layer and 1.05 GB per embedding matrix (bf16); qwen3 30B-A3B: 1.25 GB
# per layer (128 experts x 3 x 768 x 2048) and 0.62 GB per embedding matrix.
declare -A case_model case_flavor case_sets case_bytes case_torch
case_model[dense1]=llama3; case_flavor[dense1]=8B; case_sets[dense1]="--set n_layers=2 --set vocab_size=8192"
case_bytes[dense1]=1006000000; case_torch[dense1]="llama3 --n-heads 32 --n-kv-heads 8"
declare -A case_torchtitan  # torchtitan_to_hf.py's FLAVOR N_LAYERS (llama3 cases)
case_torchtitan[dense1]="8B 2"; case_torchtitan[dense4]="8B 4"; case_torchtitan[dense8]="8B 14"
case_model[dense4]=llama3; case_flavor[dense4]=8B; case_sets[dense4]="--set n_layers=4"
case_bytes[dense4]=3846000000; case_torch[dense4]="llama3 --n-heads 32 --n-kv-heads 8"
case_model[dense8]=llama3; case_flavor[dense8]=8B; case_sets[dense8]="--set n_layers=14"
case_bytes[dense8]=8208000000; case_torch[dense8]="llama3 --n-heads 32 --n-kv-heads 8"
case_model[moe]=qwen3; case_flavor[moe]=30B-A3B; case_sets[moe]="--set n_layers=2"
case_bytes[moe]=3737000000; case_torch[moe]=""  # the reference script knows llama3 only
# Layout cases. llama4 17bx16e: 16 experts x 3 x 8192 x 5120 bf16, stored transposed between
# the two layouts (4.5 GB). gpt-oss 120b: 128 experts x (5760 + 2880) x 2880 bf16 (6.4 GB),
# HF side in transformers' layout.
case_model[llama4]=llama4; case_flavor[llama4]=17bx16e; case_sets[llama4]="--set n_layers=1 --set vocab_size=4096"
case_bytes[llama4]=4489000000; case_torch[llama4]=""
case_model[gptoss]=gpt_oss; case_flavor[gptoss]=120b
case_sets[gptoss]="--set n_layers=1 --set vocab_size=4096 --set hf_expert_layout=transformers"
case_bytes[gptoss]=6480000000; case_torch[gptoss]=""
# Release-shaped folders (tests/make_releases.py --real-dims --fast-data), from-hf only: the
# input is quantized, the output bf16 (its size in case_bytes, for the disk check).
# gpt-oss-120b: one layer, 128 experts of MXFP4 (1.7 GB in, 6.4 GB out). DeepSeek-V3: one dense
# and one MoE layer plus the multi-token-prediction block, 32 of 256 routed experts in FP8
# (3.9 GB in, 7.7 GB out).
declare -A case_release
case_release[gptoss_mxfp4]="gpt-oss-20b --layers=1"; case_bytes[gptoss_mxfp4]=6500000000
case_release[dsv3_fp8]="deepseek-v3 --layers=2 --experts=32"; case_bytes[dsv3_fp8]=7800000000
for name in $cases; do
  [[ -n "${case_model[$name]:-}${case_release[$name]:-}" ]] ||
    die "unknown case '$name' (dense1 dense4 dense8 moe llama4 gptoss gptoss_mxfp4 dsv3_fp8)"
done

# --- Tools ---
[[ -x /usr/bin/time ]] || {
  log "installing the 'time' package (GNU time, for peak RSS)"
  sudo_cmd=()
  [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq time >/dev/null
}
if [[ ! -x "$ckconv" ]]; then
  log "$ckconv missing: building with scripts/setup.sh"
  scripts/setup.sh
fi
ckconv="$(realpath "$ckconv")"
refenv_root=""
if ((torch)); then
  if scripts/refenv.sh status || scripts/refenv.sh setup; then
    refenv_root="$(scripts/refenv.sh root)"
  else
    log "the reference environment is not available: PyTorch comparison SKIPPED"
    torch=0
  fi
fi
torchtitan_skip=""
if ((!torch)); then
  torchtitan_skip="no reference environment (or --no-torch)"
elif [[ -z "${CKCONV_TORCHTITAN_GIT:-}" ]]; then
  torchtitan_skip="CKCONV_TORCHTITAN_GIT is not set (a git clone of pytorch/torchtitan)"
elif ! git -C "$CKCONV_TORCHTITAN_GIT" cat-file -e "$torchtitan_commit:torchtitan" 2>/dev/null; then
  torchtitan_skip="$CKCONV_TORCHTITAN_GIT has no commit $torchtitan_commit"
fi
[[ -z "$torchtitan_skip" ]] || log "torchtitan comparison SKIPPED: $torchtitan_skip"
if [[ -z "$work" ]]; then
  if [[ -n "$refenv_root" ]]; then work="$refenv_root/tmp/ckconv-bench"; else work=/var/tmp/ckconv-bench; fi
fi
if ((torch)); then
  [[ "$(realpath -m "$work")/" == "$(realpath "$refenv_root")/"* ]] ||
    die "--work must be inside the reference environment ($refenv_root) for the PyTorch runs (or pass --no-torch)"
fi

# --- Room: the largest case needs its input, the HF copy kept for from-hf and, during
# verify, two intermediates (the third conversion is compared, not written): 4x its size;
# one more for the DCP copy of the torchtitan comparison. ---
largest=0
for name in $cases; do ((case_bytes[$name] > largest)) && largest=${case_bytes[$name]}; done
need=$((largest * (torch ? 5 : 4) + (1 << 30)))
mkdir -p "$work"
avail=$(($(df --output=avail -k "$work" | tail -n1) * 1024))
if ((avail < need)); then
  die "not enough disk space in $work: needs $((need >> 30)) GiB free, has $((avail >> 30)) GiB (use --cases to run smaller cases)"
fi
# shellcheck disable=SC2317  # called by the trap
cleanup() { ((keep)) || rm -rf "$work"; }
trap cleanup EXIT

if [[ -z "$torchtitan_skip" ]]; then
  # The source tree at the pinned commit (the subtree only: a partial clone may lack the
  # rest), with the stubs of tests/generations/torchtitan_fixtures.py beside it.
  rm -rf "$work/torchtitan-tree"
  mkdir -p "$work/torchtitan-tree"
  git -C "$CKCONV_TORCHTITAN_GIT" archive --prefix=torchtitan/ "$torchtitan_commit:torchtitan" |
    tar -x -C "$work/torchtitan-tree"
  cp tests/generations/torchtitan_fixtures.py "$work/torchtitan-tree/"
fi

results="$work/results.txt"
: >"$results"
notes="$work/notes.txt"
: >"$notes"
hashes="$work/hashes.txt"
: >"$hashes"

# files_of DIR...: the regular files under DIR, sorted.
files_of() { find "$@" -type f | LC_ALL=C sort; }
# warm PATH...: every file dropped from the page cache, then read back in 16 MiB reads, so
# that every contender finds the same cache: large folios, as a cold read makes them. Pages
# cached by `cat` after partial eviction came in small folios, which doubled the transposing
# cases' CPU time from one run to the next (docs/benchmarks.md).
warm() {
  local file
  while IFS= read -r file; do
    dd if="$file" iflag=nocache count=0 status=none
    dd if="$file" of=/dev/null bs=16M status=none
  done < <(files_of "$@")
}
# digest DIR: one line of cksum (CRC-32 and length) per file, paths relative to DIR.
digest() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs -r cksum | awk '{print $1, $2, $3}' | md5sum | cut -c1-32); }

# timed CASE METRIC ROUND [--after-previous] [--may-fail] -- command...: runs the command
# under /usr/bin/time after `sync` (not with --after-previous), appends "CASE METRIC ROUND wall
# cpu rss_kib" to the results; stops the benchmark if the command fails, unless --may-fail:
# then it records nothing and returns 1.
timed() {
  local name="$1" metric="$2" round="$3" out="$work/time.out" may_fail=0
  shift 3
  if [[ "$1" == --after-previous ]]; then shift; else sync; fi
  if [[ "$1" == --may-fail ]]; then may_fail=1; shift; fi
  shift
  if ! /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >"$work/cmd.out" 2>"$work/cmd.err"; then
    cat "$work/cmd.out" "$work/cmd.err" >&2
    ((may_fail)) && return 1
    die "$name $metric failed: $*"
  fi
  read -r wall user system rss < <(tail -n1 "$out")
  echo "$name $metric $round $wall $(awk "BEGIN { print $user + $system }") $rss" >>"$results"
}

record_hash() { echo "$1 $2 $(digest "$3")" >>"$hashes"; }  # CASE LABEL DIR

# check_parts CASE LABEL INPUT OUTPUT -- COMMAND...: COMMAND -i INPUT -o OUTPUT once in one
# process and split with --part over 2 and 4 concurrent processes (scripts/bench/parts.sh),
# each timed once with warm input as LABEL_p1, _p2, _p4; the digest of each output is recorded
# under the same label (the report compares _p2 and _p4 with _p1), then the output deleted.
# A split whose part fails or that publishes nothing is recorded as FAILED, with the parts'
# exit statuses in the notes, and the benchmark goes on.
check_parts() {
  local name="$1" label="$2" input="$3" output="$4" n
  shift 5
  local staging
  staging="$(dirname "$output")/.$(basename "$output").ckconv-parts"
  for n in 1 2 4; do
    warm "$input"
    if ((n == 1)); then
      timed "$name" "${label}_p1" 1 -- "$@" -i "$input" -o "$output"
      echo "$name ${label//_/-} --part check: output files: $(files_of "$output" | wc -l)" >>"$notes"
    else
      rm -rf "$work/part-logs"
      mkdir -p "$work/part-logs"
      if ! timed "$name" "${label}_p$n" 1 --may-fail -- "$repo/scripts/bench/parts.sh" "$n" "$work/part-logs" "$@" \
        -i "$input" -o "$output"; then
        echo "$name ${label//_/-} --part over $n processes FAILED: $(grep -h '^parts:' "$work/cmd.err" | tr '\n' ' ')" >>"$notes"
        echo "$name ${label}_p$n FAILED" >>"$hashes"
        log "$name: ${label//_/-} --part over $n processes FAILED (reported; going on)"
        rm -rf "$output" "$staging"
        continue
      fi
      if [[ ! -d "$output" || -e "$staging" ]]; then
        echo "$name ${label//_/-} --part over $n processes FAILED: every part exited 0, but nothing was published" >>"$notes"
        echo "$name ${label}_p$n FAILED" >>"$hashes"
        rm -rf "$output" "$staging"
        continue
      fi
    fi
    record_hash "$name" "${label}_p$n" "$output"
    rm -rf "$output"
  done
}

# time_copy CASE METRIC ROUND DIR: cp -r of DIR (warm) as METRIC, then its sync as METRIC_sync.
time_copy() {
  warm "$4"
  timed "$1" "$2" "$3" -- cp -r "$4" "$work/copy"
  timed "$1" "$2_sync" "$3" --after-previous -- sync "$work/copy"/*
  rm -rf "$work/copy"
}

run_case() {
  local name="$1" model="${case_model[$1]}" flavor="${case_flavor[$1]}"
  local dir="$work/$name"
  # shellcheck disable=SC2206
  local sets=(${case_sets[$name]})
  local args=(-m "$model" -f "$flavor" "${sets[@]}" -q)
  rm -rf "$dir"
  mkdir -p "$dir"
  log "$name: init $model $flavor ${sets[*]} (bf16)"
  "$ckconv" init "${args[@]}" --dtype bf16 --seed 1 -o "$dir/native"
  local bytes
  bytes=$(du -sb "$dir/native" | cut -f1)
  echo "$name size $bytes" >>"$notes"
  record_hash "$name" native "$dir/native"
  "$ckconv" to-hf "${args[@]}" -i "$dir/native" -o "$dir/hf"  # the input of from-hf

  local use_torch=0 use_torchtitan=0 available_kib
  available_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  if ((torch)) && [[ -n "${case_torch[$name]}" ]]; then
    if ((available_kib * 1024 > bytes * 3 / 2 + (1 << 30))); then
      use_torch=1
    else
      echo "$name torch skipped: PyTorch needs ~1.1x the checkpoint in RAM; only $((available_kib >> 20)) GiB available" >>"$notes"
    fi
  fi
  if [[ -n "${case_torchtitan[$name]:-}" ]]; then
    if [[ -n "$torchtitan_skip" ]]; then
      echo "$name torchtitan skipped: $torchtitan_skip" >>"$notes"
    elif ((available_kib * 1024 > bytes * 3 / 2 + (1 << 30))); then
      use_torchtitan=1
      "$ckconv" init "${args[@]}" --dtype bf16 --seed 1 --native-format dcp -o "$dir/native.dcp"
    else
      echo "$name torchtitan skipped: dcp.load holds the checkpoint in RAM; only $((available_kib >> 20)) GiB available" >>"$notes"
    fi
  fi
  local chroot_dir="/${dir#"$refenv_root"/}"
  # shellcheck disable=SC2206
  local torch_args=(${case_torch[$name]})

  for round in $(seq "$rounds"); do
    log "$name: round $round of $rounds"
    time_copy "$name" cp "$round" "$dir/native"

    warm "$dir/native"
    timed "$name" to_hf "$round" -- "$ckconv" to-hf "${args[@]}" -i "$dir/native" -o "$dir/out"
    if ((round <= 2 || round == rounds)); then record_hash "$name" to_hf "$dir/out"; fi
    rm -rf "$dir/out"

    if ((use_torch)); then
      warm "$dir/native"
      timed "$name" torch "$round" -- scripts/refenv.sh run tests/interop/torch_convert_reference.py to-hf \
        "${torch_args[0]}" "$chroot_dir/native/model.safetensors" "$chroot_dir/out" "${torch_args[@]:1}"
      grep -h '^torch_convert_reference:' "$work/cmd.err" | sed "s/^/$name round $round: /" >>"$notes" || true
      if ((round == 1)); then
        rm -f "$dir/out/config.json"  # PyTorch writes the tensors only; compare those
        record_hash "$name" torch_tensors "$dir/out"
      fi
      rm -rf "$dir/out"
    fi

    if ((use_torchtitan)); then
      warm "$dir/native.dcp"
      timed "$name" to_hf_dcp "$round" -- "$ckconv" to-hf "${args[@]}" -i "$dir/native.dcp" -o "$dir/out"
      if ((round == 1)); then
        rm -f "$dir/out/config.json"
        record_hash "$name" to_hf_dcp_tensors "$dir/out"
      fi
      rm -rf "$dir/out"
      warm "$dir/native.dcp"
      # shellcheck disable=SC2206
      local titan=(${case_torchtitan[$name]})
      timed "$name" torchtitan "$round" -- scripts/refenv.sh run scripts/bench/torchtitan_to_hf.py \
        "/${work#"$refenv_root"/}/torchtitan-tree" 2026-08 "$chroot_dir/native.dcp" "$chroot_dir/out" "${titan[@]}"
      grep -h '^torchtitan_to_hf:' "$work/cmd.err" | sed "s/^/$name round $round: /" >>"$notes" || true
      if ((round == 1)); then record_hash "$name" torchtitan_tensors "$dir/out"; fi
      rm -rf "$dir/out"
    fi

    warm "$dir/hf"
    timed "$name" from_hf "$round" -- "$ckconv" from-hf "${args[@]}" --native-format safetensors -i "$dir/hf" -o "$dir/out"
    if ((round <= 2 || round == rounds)); then record_hash "$name" from_hf "$dir/out"; fi
    rm -rf "$dir/out"

    warm "$dir/native"
    timed "$name" verify "$round" -- "$ckconv" verify "${args[@]}" --native "$dir/native"
  done

  # Thread-count independence (timed once each, reported apart from the medians).
  for threads in 1 2 8; do
    warm "$dir/native"
    timed "$name" "to_hf_t$threads" 1 -- "$ckconv" to-hf "${args[@]}" --threads "$threads" -i "$dir/native" -o "$dir/out"
    record_hash "$name" to_hf "$dir/out"
    rm -f "$dir/out/config.json"
    record_hash "$name" to_hf_tensors "$dir/out"
    rm -rf "$dir/out"
    warm "$dir/hf"
    timed "$name" "from_hf_t$threads" 1 -- "$ckconv" from-hf "${args[@]}" --native-format safetensors --threads "$threads" \
      -i "$dir/hf" -o "$dir/out"
    record_hash "$name" from_hf "$dir/out"
    rm -rf "$dir/out"
  done
  check_parts "$name" to_hf "$dir/native" "$dir/out" -- "$ckconv" to-hf "${args[@]}" --max-shard-size "$parts_shard_size"
  check_parts "$name" from_hf "$dir/hf" "$dir/out" -- "$ckconv" from-hf "${args[@]}" --native-format safetensors
  rm -rf "$dir"
}

# run_release_case NAME: from-hf of a release-shaped folder against cp -r of that folder.
run_release_case() {
  local name="$1" dir="$work/$1"
  # shellcheck disable=SC2206
  local release=(${case_release[$1]})
  rm -rf "$dir"
  mkdir -p "$dir"
  log "$name: make_releases.py --real-dims --fast-data ${release[*]}"
  python3 tests/make_releases.py "$dir/src" --real-dims --fast-data "${release[@]:1}" "${release[0]}"
  mv "$dir/src/${release[0]}" "$dir/hf"
  echo "$name size $(du -sb "$dir/hf" | cut -f1)" >>"$notes"
  for round in $(seq "$rounds"); do
    log "$name: round $round of $rounds"
    time_copy "$name" cp_hf "$round" "$dir/hf"
    warm "$dir/hf"
    timed "$name" from_hf "$round" -- "$ckconv" from-hf -q --native-format safetensors -i "$dir/hf" -o "$dir/out"
    if ((round <= 2 || round == rounds)); then record_hash "$name" from_hf "$dir/out"; fi
    if ((round == 1)); then
      echo "$name output $(du -sb "$dir/out" | cut -f1) bytes" >>"$notes"
      mv "$dir/out" "$dir/first_out"  # the output copied as cp_out in every round
    fi
    rm -rf "$dir/out"
    # The output is 2-3.7x the quantized input: its copy is the reference for the bytes written.
    time_copy "$name" cp_out "$round" "$dir/first_out"
  done
  rm -rf "$dir/first_out"
  for threads in 1 2 8; do
    warm "$dir/hf"
    timed "$name" "from_hf_t$threads" 1 -- "$ckconv" from-hf -q --native-format safetensors --threads "$threads" \
      -i "$dir/hf" -o "$dir/out"
    record_hash "$name" from_hf "$dir/out"
    rm -rf "$dir/out"
  done
  check_parts "$name" from_hf "$dir/hf" "$dir/out" -- "$ckconv" from-hf -q --native-format safetensors
  rm -rf "$dir"
}

machine="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n1)), $(awk '/^MemTotal:/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM, $(uname -r)"
disk="$(df --output=source,fstype "$work" | tail -n1 | awk '{print $1 " (" $2 ")"}')"
log "machine: $machine; work dir $work on $disk; needs $((need >> 30)) GiB, has $((avail >> 30)) GiB"
log "ckconv: $ckconv ($("$ckconv" --version 2>/dev/null || echo unknown version)); rounds: $rounds; load: $(cut -d' ' -f1-3 /proc/loadavg)"
start_load="$(cut -d' ' -f1-3 /proc/loadavg)"
start_time=$SECONDS
for name in $cases; do
  if [[ -n "${case_release[$name]:-}" ]]; then run_release_case "$name"; else run_case "$name"; fi
done
end_load="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- Report ---
echo
echo "ckconv benchmark, $(date -u +%Y-%m-%d): $machine; disk $disk"
echo "$rounds rounds, medians; ckconv $("$ckconv" --version | cut -d' ' -f2) with default options (threads = $(nproc), fsync on);"
echo "load average $start_load at start, $end_load at end; $(((SECONDS - start_time) / 60)) min"
echo "Method: every command starts after a sync with its input warm in the page cache: dropped"
echo "and read back in 16 MiB reads just before, so every contender finds the same large folios"
echo "(a cold start would time the virtual disk's reads, ~1.3 GB/s, rather than the converters)."
echo "cp -r leaves its copy dirty in the page cache; ckconv fsyncs what it writes, so cp -r + sync"
echo "of the copy is the like-for-like reference. Commands alternate within each round."
echo "The dequantizing (release) cases are also compared with cp -r (+ sync) of their output."
echo "Once per case: --threads 1, 2 and 8, and --part over 2 and 4 concurrent processes (HF"
echo "output in --max-shard-size $parts_shard_size shards) against one process; CRC-32 of every file."
echo "torchtitan: its own path (dcp.load, StateDictAdapter.to_hf, save_file; commit $torchtitan_commit,"
echo "Python start included) against ckconv to-hf of the same DCP checkpoint."
echo
awk -v notes="$notes" -v hashes="$hashes" -f "$repo/scripts/bench/report.awk" "$results"
