#!/usr/bin/env bash
# The main job on a built-in example: make a llama3 debugmodel native checkpoint, convert it
# to HuggingFace safetensors with the round-trip check, and show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the binary, in unity batches (several sources per compiler run): the quickest build.
CKCONV_CMAKE_ARGS="-DCMAKE_UNITY_BUILD=ON ${CKCONV_CMAKE_ARGS:-}" scripts/setup.sh --target ckconv
ckconv="${CKCONV_BUILD_DIR:-build}/ckconv"
demo="$(mktemp -d "${TMPDIR:-/tmp}/ckconv-demo.XXXXXX")"
set -x
"$ckconv" init --model llama3 --flavor debugmodel --seed 0 --output "$demo/native"
"$ckconv" to-hf --model llama3 --flavor debugmodel --input "$demo/native" --output "$demo/hf" --verify-roundtrip
"$ckconv" inspect "$demo/hf"
cat "$demo/hf/config.json"
set +x
echo "demo: the HF checkpoint is in $demo/hf"
