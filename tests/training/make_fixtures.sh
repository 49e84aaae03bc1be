#!/usr/bin/env bash
# Regenerates tests/fixtures/training/: model weights from `ckconv init` (one tiny flavor per
# torchtitan key scheme), then the training checkpoints, exports and storage-feature DCPs
# saved by real PyTorch in the reference chroot (training_fixtures.py says what each holds).
#   CKCONV=build/ckconv tests/training/make_fixtures.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$HERE/../.."
: "${CKCONV:=$REPO/build/ckconv}"
REFENV="$REPO/scripts/refenv.sh"
ROOT="$("$REFENV" root)"
OUT="$REPO/tests/fixtures/training"
work="$(mktemp -d "$ROOT/tmp/ckconv-training.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/models"
llama=(-m llama3 -f debugmodel --set dim=16 --set n_layers=1 --set n_heads=2 --set n_kv_heads=1
       --set vocab_size=32 --set hidden_dim=16)
qwen_moe=(-m qwen3 -f debugmodel_moe --set dim=16 --set n_layers=1 --set n_heads=2
          --set n_kv_heads=1 --set head_dim=8 --set vocab_size=32 --set moe_hidden_dim=8
          --set num_experts=4)
# 2026-06 and 2026-08 give llama3 the same keys and the same training state: one fixture serves both.
for scheme in v0.2 2026-08; do
  "$CKCONV" init -q "${llama[@]}" --native-scheme "$scheme" --seed 5 -o "$work/models/full_$scheme"
done
"$CKCONV" init -q "${qwen_moe[@]}" --native-scheme 2026-08 --seed 6 -o "$work/models/export_qwen3_moe"
"$CKCONV" init -q "${llama[@]}" --native-scheme 2026-08 --seed 7 -o "$work/models/features"
"$REFENV" run "$HERE/training_fixtures.py" "${work#"$ROOT"}/models" "${work#"$ROOT"}/out"
rm -rf "${OUT:?}"/*/
mkdir -p "$OUT"
cp -r "$work/out"/* "$OUT/"
for model in "$work/models"/*/; do  # the weights, to compare conversions against
  cp "$model/model.safetensors" "$OUT/$(basename "$model").model.safetensors"
done
du -sh "$OUT"/*
