#!/usr/bin/env bash
# Round trip of the largest real MoE flavors' shapes (not a test: tens of GB of disk, minutes).
# Each case is an `init` checkpoint of the real flavor with only its first layers (every
# per-layer tensor at full size: 256 or 128 experts) and a small vocabulary:
#   qwen3 235B-A22B   1 MoE layer,               ~5 GB bf16
#   deepseek_v3 671B  1 dense + 1 MoE layer,     ~24 GB bf16
#   llama4 17bx128e   1 MoE layer,               ~33 GB bf16
# A case runs `ckconv verify --native` when three copies fit on the disk (verify keeps its input
# and two intermediates). Otherwise it proves the same round trip in steps that never hold more
# than two copies: to-hf N -> H1 (CRC-32 of its files kept), from-hf H1 -> N2, to-hf N2 -> H3,
# H3 == H1 by size and CRC-32 of every file, then `init` again (deterministic) and N == N2 byte
# for byte (same writer, so equal files mean bit-equal tensors, expert_bias_E zeros included).
# Prints wall time, peak RSS and throughput of every step.
#
# Usage: scripts/large_shapes.sh [--ckconv BIN] [--work DIR] [--cases "qwen3_235b deepseek_671b llama4_17bx128e"]
#                                [--stepwise]   (always use the two-copy steps)
set -euo pipefail
cd "$(dirname "$0")/.."
ckconv="${CKCONV_BUILD_DIR:-build}/ckconv"
work=/var/tmp/ckconv-large
cases="qwen3_235b deepseek_671b llama4_17bx128e"
stepwise=0
while (($#)); do
  case "$1" in
    --ckconv) ckconv="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --cases) cases="$2"; shift 2 ;;
    --stepwise) stepwise=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "large_shapes: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
log() { printf 'large_shapes: %s\n' "$*" >&2; }
die() { printf 'large_shapes: ERROR: %s\n' "$*" >&2; exit 1; }
[[ -x "$ckconv" ]] || scripts/setup.sh >&2
[[ -x "$ckconv" ]] || die "no ckconv binary at $ckconv"
command -v /usr/bin/time >/dev/null || die "needs /usr/bin/time (apt-get install time)"

declare -A model flavor sets
model[qwen3_235b]=qwen3; flavor[qwen3_235b]=235B-A22B
sets[qwen3_235b]="--set n_layers=1 --set vocab_size=4096"
model[deepseek_671b]=deepseek_v3; flavor[deepseek_671b]=671B
sets[deepseek_671b]="--set n_layers=2 --set n_dense_layers=1 --set vocab_size=4096"
model[llama4_17bx128e]=llama4; flavor[llama4_17bx128e]=17bx128e
sets[llama4_17bx128e]="--set n_layers=1 --set vocab_size=4096"

mkdir -p "$work"
work="$(cd "$work" && pwd)"
trap 'rm -rf "$work"/case.*' EXIT

# Runs one ckconv step under /usr/bin/time and prints "step  wall  peak-RSS  GB/s".
step() {
  local name="$1" bytes="$2"; shift 2
  local stats="$work/time.txt"
  /usr/bin/time -f '%e %M' -o "$stats" "$ckconv" "$@" -q || die "$name failed: $ckconv $*"
  read -r wall rss <"$stats"
  awk -v n="$name" -v w="$wall" -v r="$rss" -v b="$bytes" \
    'BEGIN { printf "  %-34s %8.1f s %8.0f MiB %7.2f GB/s\n", n, w, r / 1024, (w > 0 ? b / w / 1e9 : 0) }'
}
size_of() { du -sb "$1" | cut -f1; }
free_bytes() { df -B1 --output=avail "$work" | tail -n 1 | tr -d ' '; }
# CRC-32 and size of every file (cksum: ~3 GB/s here, sha256sum ~0.2 GB/s); detects any accidental
# difference, which is all a round trip check needs.
digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 cksum); }

failed=0
for c in $cases; do
  [[ -n "${model[$c]:-}" ]] || die "unknown case $c (one of: ${!model[*]})"
  m=${model[$c]} f=${flavor[$c]}
  # shellcheck disable=SC2206
  s=(${sets[$c]})
  dir="$work/case.$c"
  rm -rf "$dir"; mkdir -p "$dir"
  log "$c: $m $f ${sets[$c]}"
  avail=$(free_bytes)
  "$ckconv" init -m "$m" -f "$f" "${s[@]}" --dtype bf16 -o "$dir/N" -q --no-sync
  bytes=$(size_of "$dir/N")
  awk -v c="$c" -v d="$m $f, ${sets[$c]}" -v b="$bytes" -v a="$avail" \
    'BEGIN { printf "%s (%s): %.1f GB native (bf16), %.1f GB free\n", c, d, b / 1e9, a / 1e9 }'
  (( avail > 2 * bytes + (1 << 30) )) || die "$c needs $(( (2 * bytes >> 30) + 1 )) GiB free in $work"
  if (( stepwise == 0 && avail > 3 * bytes + (2 << 30) )); then
    step "verify --native (3 passes)" $((3 * bytes)) verify -m "$m" -f "$f" "${s[@]}" --native "$dir/N" ||
      failed=1
  else
    step "to-hf N -> H1" "$bytes" to-hf -m "$m" -f "$f" "${s[@]}" -i "$dir/N" -o "$dir/H1"
    digest "$dir/H1" >"$dir/H1.cksum"
    rm -rf "$dir/N"
    step "from-hf H1 -> N2" "$bytes" from-hf -m "$m" -f "$f" "${s[@]}" -i "$dir/H1" -o "$dir/N2" \
      --native-format safetensors
    rm -rf "$dir/H1"
    step "to-hf N2 -> H3" "$bytes" to-hf -m "$m" -f "$f" "${s[@]}" -i "$dir/N2" -o "$dir/H3"
    if diff <(digest "$dir/H3") "$dir/H1.cksum" >/dev/null; then
      echo "  H3 == H1 (same size and CRC-32, $(wc -l <"$dir/H1.cksum") files)"
    else
      echo "  FAIL: H3 differs from H1"; failed=1
    fi
    rm -rf "$dir/H3"
    "$ckconv" init -m "$m" -f "$f" "${s[@]}" --dtype bf16 -o "$dir/N" -q --no-sync
    if diff -r -q "$dir/N" "$dir/N2" >/dev/null; then
      echo "  N2 == N byte for byte"
    else
      echo "  FAIL: N2 differs from N"; failed=1
    fi
  fi
  rm -rf "$dir"
done
exit "$failed"
