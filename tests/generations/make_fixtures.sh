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
# v0.1 = tag v0.1.0; v0.2 = tag v0.2.2; 2026-06 = the commit before llama4's deletion;
# 2026-08 = main then.
declare -A COMMITS=([v0.1]=f7084fc78 [v0.2]=73a0e6979 [2026-06]=43e52fd01 [2026-08]=b5bcd76c6)
work="$(mktemp -d "$ROOT/tmp/ckconv-generations.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tree_of() { # tree_of GENERATION: torchtitan's source tree at the generation's commit
  local tree="$work/tt-$1"
  if [[ ! -d "$tree" ]]; then
    mkdir -p "$tree"
    # The subtree only: a partial mirror may lack objects elsewhere (tests/assets).
    git -C "$TORCHTITAN_GIT" archive --prefix=torchtitan/ "${COMMITS[$1]}:torchtitan" | tar -x -C "$tree"
    cp "$HERE"/tt_models_*.py "$tree/" # the model tables, imported next to torchtitan
  fi
  echo "$tree"
}
for generation in "${!COMMITS[@]}"; do
  tree="$(tree_of "$generation")"
  "$REFENV" run "$HERE/torchtitan_fixtures.py" make "${tree#"$ROOT"}" "$generation" \
    "${work#"$ROOT"}/out/$generation"
  if [[ "$generation" == v0.1 ]]; then # no adapter at v0.1.0: v0.2.2's to_hf of the same weights
    tree="$(tree_of v0.2)"
    "$REFENV" run "$HERE/torchtitan_fixtures.py" hf_v01 "${tree#"$ROOT"}" v0.2 "${work#"$ROOT"}/out/v0.1"
  fi
  rm -rf "${OUT:?}/$generation"
  mkdir -p "$OUT"
  cp -r "$work/out/$generation" "$OUT/$generation"
done
