# shellcheck shell=bash
# The HF layouts besides each family's default (docs/mappings.md "HF layouts"): llama4's
# Llama4ForCausalLM keys (--hf-layout causal-lm), transformers' fused MoE experts
# (--hf-expert-layout fused) for qwen3 MoE, deepseek_v3 and gpt_oss, each written by to-hf,
# detected from the keys by from-hf and verify, and giving back torchtitan's native tensors
# byte for byte; then the usage errors of the options.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

run() {
  local label="$1"
  shift
  if "$@"; then pass "$label"; else fail "$label (exit $?)"; fi
}
has_key() { "$CKCONV" inspect "$1" | grep -- "$2" >/dev/null; }
lacks_key() { ! "$CKCONV" inspect "$1" | grep -- "$2" >/dev/null; }

# layout_round_trip FIXTURE LABEL KEY OPTION...: to-hf with OPTIONs (checked by the round
# trip), KEY in its output, from-hf of it (layout detected, no option) equal to torchtitan's
# from_hf output, and verify --hf of it.
layout_round_trip() {
  local fixture="$1" label="$2" key="$3" dir="$FIXTURES/adapters/$1"
  shift 3
  local args
  args="$(fixture_args "$fixture")"
  # shellcheck disable=SC2086
  run "$fixture $label: to-hf --verify-roundtrip" \
    "$CKCONV" to-hf -q $args "$@" -i "$dir/native.safetensors" -o "$fixture.$label.hf" --verify-roundtrip
  run "$fixture $label: output holds $key" has_key "$fixture.$label.hf" "$key"
  # shellcheck disable=SC2086
  run "$fixture $label: from-hf detects the layout" \
    "$CKCONV" from-hf -q $args -i "$fixture.$label.hf" -o "$fixture.$label.native" --native-format safetensors --native-scheme 2026-06
  same_bytes "$fixture.$label.native/model.safetensors" "$dir/roundtrip_native.safetensors" \
    "$fixture $label: from-hf equals torchtitan"
  # shellcheck disable=SC2086
  run "$fixture $label: verify --hf" "$CKCONV" verify -q $args --hf "$fixture.$label.hf"
}

# llama4 as Llama4ForCausalLM.save_pretrained writes it: model.*, lm_head.weight.
layout_round_trip llama4_tiny causal-lm 'model.layers.1.feed_forward.experts.gate_up_proj' --hf-layout causal-lm
run "llama4 causal-lm: lm_head.weight at the top" has_key llama4_tiny.causal-lm.hf '[[:space:]]lm_head\.weight'
run "llama4 causal-lm: no language_model. keys" lacks_key llama4_tiny.causal-lm.hf 'language_model\.'
run "llama4 causal-lm: config.json names Llama4ForCausalLM" \
  grep -q '"Llama4ForCausalLM"' llama4_tiny.causal-lm.hf/config.json
# The default stays the multimodal repository's layout, byte for byte.
# shellcheck disable=SC2046
run "llama4 multimodal (explicit): to-hf" "$CKCONV" to-hf -q $(fixture_args llama4_tiny) --hf-layout multimodal \
  --hf-expert-layout fused -i "$FIXTURES/adapters/llama4_tiny/native.safetensors" -o llama4.mm.hf
same_bytes llama4.mm.hf/model.safetensors "$FIXTURES/adapters/llama4_tiny/hf/model.safetensors" \
  "llama4 --hf-layout multimodal equals torchtitan"

# transformers' fused experts: gate_up_proj [E, 2F, D] (gate rows first), down_proj [E, D, F].
layout_round_trip qwen3_tiny_moe fused 'model.layers.1.mlp.experts.gate_up_proj .*\[12, 64, 64\]' \
  --hf-expert-layout fused
run "qwen3 fused: no per-expert keys" lacks_key qwen3_tiny_moe.fused.hf 'mlp\.experts\.[0-9]'
layout_round_trip deepseek_v3_tiny fused 'model.layers.1.mlp.experts.down_proj ' --hf-expert-layout fused

# gpt_oss: fused is GptOssForCausalLM's layout (what --set hf_expert_layout=transformers chose).
gpt_dir="$FIXTURES/adapters/gpt_oss_tiny"
layout_round_trip gpt_oss_tiny fused 'model.layers.0.mlp.experts.gate_up_proj ' --hf-expert-layout fused
same_bytes gpt_oss_tiny.fused.hf/model.safetensors "$gpt_dir/hf_transformers/model.safetensors" \
  "gpt_oss --hf-expert-layout fused equals the transformers layout"
# shellcheck disable=SC2046
run "gpt_oss: from-hf of transformers' layout without --set" \
  "$CKCONV" from-hf -q $(fixture_args gpt_oss_tiny) -i "$gpt_dir/hf_transformers" -o gpt.tf.native --native-format safetensors --native-scheme 2026-06
same_bytes gpt.tf.native/model.safetensors "$gpt_dir/roundtrip_native.safetensors" "gpt_oss: detected layout equals torchtitan"
# shellcheck disable=SC2046
default_log="$("$CKCONV" to-hf $(fixture_args gpt_oss_tiny) -i "$gpt_dir/native.safetensors" -o gpt.default.hf 2>&1)"
if [[ "$default_log" == *"transformers cannot load"*"--hf-expert-layout fused"* ]]; then
  pass "gpt_oss default layout: the output says transformers cannot load it"
else
  fail "gpt_oss default layout: no warning in: $default_log"
fi

# Usage errors.
native_qwen="$FIXTURES/adapters/qwen3_tiny/native.safetensors"
# shellcheck disable=SC2046
expect_exit 2 "--hf-layout applies to llama4 only" -- \
  "$CKCONV" to-hf -q $(fixture_args qwen3_tiny) --hf-layout causal-lm -i "$native_qwen" -o e1
# shellcheck disable=SC2046
expect_exit 2 "has no MoE experts" -- \
  "$CKCONV" to-hf -q $(fixture_args qwen3_tiny) --hf-expert-layout fused -i "$native_qwen" -o e2
# shellcheck disable=SC2046
expect_exit 2 "--hf-layout must be multimodal or causal-lm" -- \
  "$CKCONV" to-hf -q $(fixture_args llama4_tiny) --hf-layout text -i "$FIXTURES/adapters/llama4_tiny/native.safetensors" -o e3
# shellcheck disable=SC2046
expect_exit 2 "llama4's HF experts are always fused" -- \
  "$CKCONV" to-hf -q $(fixture_args llama4_tiny) --hf-expert-layout per-expert -i "$FIXTURES/adapters/llama4_tiny/native.safetensors" -o e4
# shellcheck disable=SC2046
expect_exit 2 "gpt_oss has no per-expert HF layout" -- \
  "$CKCONV" to-hf -q $(fixture_args gpt_oss_tiny) --hf-expert-layout per-expert -i "$gpt_dir/native.safetensors" -o e5
# shellcheck disable=SC2046
expect_exit 2 "go with --native" -- \
  "$CKCONV" verify -q $(fixture_args qwen3_tiny_moe) --hf-expert-layout fused --hf "$FIXTURES/adapters/qwen3_tiny_moe/hf"
finish
