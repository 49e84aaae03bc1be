#!/usr/bin/env bash
# Regenerates tests/fixtures/generations/ from torchtitan's own code: for each generation,
# exports torchtitan's source tree at the generation's commit from a git clone of
# github.com/pytorch/torchtitan (TORCHTITAN_GIT, a bare or normal repository) into the
# reference chroot (scripts/refenv.sh) and runs torchtitan_fixtures.py there.
#   TORCHTITAN_GIT=/path/to/torchtitan.git tests/generations/make_fixtures.sh
set -euo pipefail
: "${TORCHTITAN_GIT:?TORCHTITAN_GIT must name a git clone of pytorch/torchtitan}"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$HERE/../.."
REFENV="$REPO/scripts/refenv.sh"
ROOT="$("$REFENV" root)"
OUT="$REPO/tests/fixtures/generations"
declare -A COMMITS=([2026-08]=b5bcd76c6)
work="$(mktemp -d "$ROOT/tmp/ckconv-generations.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for generation in "${!COMMITS[@]}"; do
  tree="$work/tt-$generation"
  mkdir -p "$tree"
  git -C "$TORCHTITAN_GIT" archive "${COMMITS[$generation]}" torchtitan | tar -x -C "$tree"
  "$REFENV" run "$HERE/torchtitan_fixtures.py" make "${tree#"$ROOT"}" "$generation" \
    "${work#"$ROOT"}/out/$generation"
  rm -rf "${OUT:?}/$generation"
  mkdir -p "$OUT"
  cp -r "$work/out/$generation" "$OUT/$generation"
done
