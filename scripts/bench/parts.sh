#!/usr/bin/env bash
# Runs one ckconv conversion split over N local processes, as scripts/bench.sh times it:
#   scripts/bench/parts.sh N LOGDIR ckconv to-hf|from-hf ARGS...
# starts `ARGS... --part I/N` for I = 1..N at once (background jobs), waits for every one and
# exits 1 if any failed, after printing "parts: part I/N exited CODE: <its first error line>"
# and that part's output (each part's stdout and stderr go to LOGDIR/part-I.log). The last part to finish publishes the output (docs/parts.md).
set -uo pipefail

count="$1" logdir="$2"
shift 2
pids=()
for ((part = 1; part <= count; part++)); do
  "$@" --part "$part/$count" >"$logdir/part-$part.log" 2>&1 &
  pids+=($!)
done
status=0
for ((part = 1; part <= count; part++)); do
  wait "${pids[part - 1]}"
  code=$?
  if ((code != 0)); then
    echo "parts: part $part/$count exited $code: $(grep -a -m1 'error' "$logdir/part-$part.log" | LC_ALL=C tr -c '[:print:]' '?' | cut -c1-200)" >&2
    echo "$* --part $part/$count:" >&2
    cat "$logdir/part-$part.log" >&2
    status=1
  fi
done
exit "$status"
