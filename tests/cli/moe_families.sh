# shellcheck shell=bash
# llama4, gpt_oss and deepseek_v3 (docs/mappings.md llama4, gpt_oss, deepseek_v3) against torchtitan's own
# adapters (fixtures/adapters): to-hf of native.safetensors must be byte-identical to
# torchtitan's hf/ output, from-hf of hf/ must give roundtrip_native.safetensors byte for
# byte; gpt_oss also in transformers' expert layout (hf_transformers/). Then the round trip
# of each family's debug flavor from `ckconv init`, the load-balance-off variants (no
# expert_bias_E anywhere) and wrong-flavor errors.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

# run LABEL command...: a failing conversion is a test failure, not the end of the script.
run() {
  local label="$1"
  shift
  if "$@"; then pass "$label"; else fail "$label (exit $?)"; fi
}
# has_key CHECKPOINT TEXT (grep reads all of inspect's output: with -q, inspect could die of
# SIGPIPE and pipefail would turn a match into a failure).
has_key() { "$CKCONV" inspect "$1" | grep -- "$2" >/dev/null; }

for fixture in llama4_tiny gpt_oss_tiny deepseek_v3_tiny deepseek_v3_tiny_qlora; do
  dir="$FIXTURES/adapters/$fixture"
  # shellcheck disable=SC2046
  run "$fixture: to-hf --verify-roundtrip" \
    "$CKCONV" to-hf -q $(fixture_args "$fixture") -i "$dir/native.safetensors" -o "$fixture.hf" --verify-roundtrip
  same_bytes "$fixture.hf/model.safetensors" "$dir/hf/model.safetensors" "$fixture: to-hf equals torchtitan"
  # shellcheck disable=SC2046
  run "$fixture: from-hf" \
    "$CKCONV" from-hf -q $(fixture_args "$fixture") -i "$dir/hf" -o "$fixture.native" --native-format safetensors --native-scheme 2026-06
  same_bytes "$fixture.native/model.safetensors" "$dir/roundtrip_native.safetensors" "$fixture: from-hf equals torchtitan"
  # shellcheck disable=SC2046
  run "$fixture: verify from HF" "$CKCONV" verify -q $(fixture_args "$fixture") --hf "$dir/hf"
done

# expert_bias_E: dropped by to-hf for llama4/gpt_oss (re-created as zeros), kept by
# deepseek_v3 as mlp.gate.e_score_correction_bias.
run "llama4_tiny: expert_bias_E re-created" has_key llama4_tiny.native 'layers.1.moe.expert_bias_E'
run "gpt_oss_tiny: expert_bias_E re-created" has_key gpt_oss_tiny.native 'layers.0.moe.expert_bias_E'
run "deepseek_v3_tiny: expert_bias_E kept as e_score_correction_bias" \
  has_key deepseek_v3_tiny.hf 'model.layers.1.mlp.gate.e_score_correction_bias'

# gpt_oss in transformers' loadable expert layout: gate_up_proj [E, D, 2F], down_proj [E, F, D].
gpt_dir="$FIXTURES/adapters/gpt_oss_tiny"
gpt_args="$(fixture_args gpt_oss_tiny) --set hf_expert_layout=transformers"
# shellcheck disable=SC2086
run "gpt_oss_tiny (transformers layout): to-hf --verify-roundtrip" \
  "$CKCONV" to-hf -q $gpt_args -i "$gpt_dir/native.safetensors" -o gpt_oss_tf.hf --verify-roundtrip
same_bytes gpt_oss_tf.hf/model.safetensors "$gpt_dir/hf_transformers/model.safetensors" \
  "gpt_oss_tiny (transformers layout): to-hf equals hf_transformers/"
# shellcheck disable=SC2086
run "gpt_oss_tiny (transformers layout): from-hf" \
  "$CKCONV" from-hf -q $gpt_args -i "$gpt_dir/hf_transformers" -o gpt_oss_tf.native --native-format safetensors --native-scheme 2026-06
same_bytes gpt_oss_tf.native/model.safetensors "$gpt_dir/roundtrip_native.safetensors" \
  "gpt_oss_tiny (transformers layout): from-hf equals torchtitan"
# shellcheck disable=SC2086
run "gpt_oss_tiny (transformers layout): verify from HF" "$CKCONV" verify -q $gpt_args --hf "$gpt_dir/hf_transformers"

# Seed debug flavors from `ckconv init` (gpt_oss has 2 of its 4 layers: ~70 MB of experts each).
verify_init() {  # verify_init NAME init-args...
  local name="$1" start
  shift
  if ! "$CKCONV" init -q "$@" -o "$name.native"; then
    fail "$name: init"
    return
  fi
  start=$EPOCHREALTIME
  if "$CKCONV" verify -q "$@" --native "$name.native"; then
    pass "$name: verify from native ($(awk "BEGIN { printf \"%.2f\", $EPOCHREALTIME - $start }") s)"
  else
    fail "$name: verify from native"
  fi
}
verify_init llama4_debug -m llama4 -f debugmodel
verify_init gpt_oss_debug -m gpt_oss -f debugmodel --set n_layers=2
verify_init deepseek_v3_debug -m deepseek_v3 -f debugmodel
verify_init deepseek_v3_debug_qlora -m deepseek_v3 -f debugmodel --set q_lora_rank=32 --set n_layers=3
verify_init llama4_debug_fused -m llama4 -f debugmodel --set fused_qkv=true --set n_layers=2
verify_init gpt_oss_debug_fused -m gpt_oss -f debugmodel --set fused_qkv=true --set n_layers=1 \
  --set hf_expert_layout=transformers

# Load balancing off: no expert_bias_E on either side, and the native key set survives.
for family in llama4 gpt_oss deepseek_v3; do
  args=(-m "$family" -f debugmodel --set n_layers=2 --set load_balance_coeff=null)
  "$CKCONV" init -q "${args[@]}" -o "$family.nolb.native"
  run "$family (load balancing off): to-hf --verify-roundtrip" \
    "$CKCONV" to-hf -q "${args[@]}" -i "$family.nolb.native" -o "$family.nolb.hf" --verify-roundtrip
  run "$family (load balancing off): from-hf" \
    "$CKCONV" from-hf -q "${args[@]}" -i "$family.nolb.hf" -o "$family.nolb.back" --native-format safetensors
  if has_key "$family.nolb.native" expert_bias || has_key "$family.nolb.back" expert_bias ||
    has_key "$family.nolb.hf" e_score_correction_bias; then
    fail "$family (load balancing off): an expert bias appeared"
  else
    pass "$family (load balancing off): no expert bias anywhere"
  fi
  if diff <("$CKCONV" inspect "$family.nolb.native" | grep -o 'layers\.[^ ]*' | sort) \
    <("$CKCONV" inspect "$family.nolb.back" | grep -o 'layers\.[^ ]*' | sort) >/dev/null; then
    pass "$family (load balancing off): native key set kept"
  else
    fail "$family (load balancing off): native key set changed"
  fi
done
# torchtitan's HF output has no bias for llama4/gpt_oss, so it also converts without one.
# shellcheck disable=SC2046
run "llama4_tiny (load balancing off): from-hf of torchtitan's output" \
  "$CKCONV" from-hf -q $(fixture_args llama4_tiny) --set load_balance_coeff=null \
  -i "$FIXTURES/adapters/llama4_tiny/hf" -o llama4_tiny.nolb --native-format safetensors
if has_key llama4_tiny.nolb expert_bias; then
  fail "llama4_tiny (load balancing off): from-hf invented expert_bias_E"
else
  pass "llama4_tiny (load balancing off): no expert_bias_E"
fi

# Wrong flavor or family: refused before a byte is written, naming the mismatch.
expect_exit 3 "does not match llama4/debugmodel" -- \
  "$CKCONV" to-hf -q -m llama4 -f debugmodel -i "$FIXTURES/adapters/llama4_tiny/native.safetensors" -o wrong1
# (from-hf: the HF folder's config.json already names the disagreeing field.)
expect_exit 3 "q_lora_rank 0 in config.json, but q_lora_rank 24 from --set" -- \
  "$CKCONV" from-hf -q -m deepseek_v3 -f debugmodel --set-from "$FIXTURES/adapters/deepseek_v3_tiny/flavor.json" \
  --set q_lora_rank=24 -i "$FIXTURES/adapters/deepseek_v3_tiny/hf" -o wrong2
# shellcheck disable=SC2046
expect_exit 3 "does not match gpt_oss/debugmodel" -- \
  "$CKCONV" to-hf -q $(fixture_args gpt_oss_tiny) -i "$FIXTURES/adapters/llama4_tiny/native.safetensors" -o wrong3
# shellcheck disable=SC2086
expect_exit 3 "does not match gpt_oss/debugmodel" -- \
  "$CKCONV" from-hf -q $gpt_args -i "$gpt_dir/hf" -o wrong4
expect_exit 2 "hf_expert_layout" -- "$CKCONV" to-hf -q -m gpt_oss -f debugmodel --set hf_expert_layout=mxfp4 \
  -i gpt_oss_debug.native -o wrong5
expect_exit 2 "unknown flavor" -- "$CKCONV" to-hf -q -m llama4 -f 17bx32e -i llama4_debug.native -o wrong6
for wrong in wrong1 wrong2 wrong3 wrong4 wrong5 wrong6; do
  if [[ -e "$wrong" ]]; then fail "$wrong: output written despite the error"; else pass "$wrong: no output"; fi
done

# Real-sized MoE layers are far too large for the suite (in bf16 one 671B MoE layer is 22.5 GB,
# one 17bx128e layer 32 GB, one 235B-A22B layer 4.8 GB): scripts/large_shapes.sh round-trips
# them on demand (docs/benchmarks.md).
finish
