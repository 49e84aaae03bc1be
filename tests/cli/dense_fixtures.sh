# llama3 and qwen3 against torchtitan's own adapters (fixtures/adapters, docs/mappings.md
# llama3, qwen3): to-hf of native.safetensors must be byte-identical to torchtitan's hf/ output,
# from-hf of hf/ must give roundtrip_native.safetensors byte for byte (hence bit-equal
# tensors), and the round trip must pass.
source "$(dirname "$0")/lib.sh"
for fixture in llama3_tiny_gqa llama3_tiny_fused llama3_tiny_tied llama3_tiny_bf16 \
               qwen3_tiny qwen3_tiny_fused qwen3_tiny_moe qwen3_tiny_moe_nolb; do
  dir="$FIXTURES/adapters/$fixture"
  # shellcheck disable=SC2046
  "$CKCONV" to-hf -q $(fixture_args "$fixture") -i "$dir/native.safetensors" -o "$fixture.hf" --verify-roundtrip
  same_bytes "$fixture.hf/model.safetensors" "$dir/hf/model.safetensors" "$fixture: to-hf equals torchtitan"
  # shellcheck disable=SC2046
  "$CKCONV" from-hf -q $(fixture_args "$fixture") -i "$dir/hf" -o "$fixture.native" --native-format safetensors --native-scheme 2026-06
  same_bytes "$fixture.native/model.safetensors" "$dir/roundtrip_native.safetensors" "$fixture: from-hf equals torchtitan"
  # shellcheck disable=SC2046
  if "$CKCONV" verify -q $(fixture_args "$fixture") --hf "$dir/hf"; then pass "$fixture: verify from HF"; else fail "$fixture: verify from HF"; fi
done
# The load-balance-off MoE variant keeps the native key set: no expert_bias_E anywhere.
if "$CKCONV" inspect qwen3_tiny_moe_nolb.native | grep expert_bias_E >/dev/null; then
  fail "qwen3_tiny_moe_nolb: from-hf invented expert_bias_E"
else
  pass "qwen3_tiny_moe_nolb: no expert_bias_E"
fi
"$CKCONV" inspect qwen3_tiny_moe.native | grep "layers.1.moe.expert_bias_E" >/dev/null && pass "qwen3_tiny_moe: expert_bias_E re-created" || fail "qwen3_tiny_moe: expert_bias_E missing"
# A HuggingFace hub cache snapshot: every file is a symlink into ../../blobs/.
mkdir -p hub/blobs hub/snapshots/rev
cp "$FIXTURES/adapters/llama3_tiny_gqa/hf/model.safetensors" hub/blobs/0a1b
cp "$FIXTURES/adapters/llama3_tiny_gqa/hf/config.json" hub/blobs/2c3d
ln -s ../../blobs/0a1b hub/snapshots/rev/model.safetensors
ln -s ../../blobs/2c3d hub/snapshots/rev/config.json
# shellcheck disable=SC2046
"$CKCONV" from-hf -q $(fixture_args llama3_tiny_gqa) -i hub/snapshots/rev -o hub.native --native-format safetensors --native-scheme 2026-06
same_bytes hub.native/model.safetensors "$FIXTURES/adapters/llama3_tiny_gqa/roundtrip_native.safetensors" \
  "llama3_tiny_gqa: from-hf of a hub cache snapshot (symlinked shards)"
finish
