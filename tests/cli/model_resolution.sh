# How the model is resolved (docs/model_resolution.md): from-hf reads the HF input's
# config.json, --hf-config checks a native input against a reference config.json, and every
# byte-changing field the flags imply must agree with config.json.
source "$(dirname "$0")/lib.sh"

# from-hf with config.json alone: byte-identical to torchtitan's from_hf. Fields config.json
# cannot show (a fused wqkv, no expert_bias_E buffers) come from --set.
for fixture in llama3_tiny_gqa llama3_tiny_fused llama3_tiny_tied llama3_tiny_bf16 \
               qwen3_tiny qwen3_tiny_fused qwen3_tiny_moe qwen3_tiny_moe_nolb \
               llama4_tiny gpt_oss_tiny deepseek_v3_tiny deepseek_v3_tiny_qlora; do
  dir="$FIXTURES/adapters/$fixture"
  extra=()
  case "$fixture" in
    *_fused) extra=(--set fused_qkv=true) ;;
    *_nolb) extra=(--set load_balance_coeff=null) ;;
  esac
  "$CKCONV" from-hf -q -i "$dir/hf" -o "$fixture.native" --native-format safetensors --native-scheme 2026-06 "${extra[@]}"
  same_bytes "$fixture.native/model.safetensors" "$dir/roundtrip_native.safetensors" \
    "$fixture: from-hf driven by config.json equals torchtitan"
done

# The issue's first case: a checkpoint made with 8 heads, converted as debugmodel (16 heads).
"$CKCONV" init -q -m llama3 -f debugmodel --set n_heads=8 -o heads8 --native-format safetensors
"$CKCONV" to-hf -q -m llama3 -f debugmodel --set n_heads=8 -i heads8 -o heads8.hf
out="$("$CKCONV" to-hf -m llama3 -f debugmodel -i heads8 -o wrong.hf --json wrong.json 2>&1)"
if [[ "$out" == *"n_heads 16 from flavor debugmodel, not confirmed by the checkpoint"* ]]; then
  pass "to-hf says which head count it used and that the checkpoint cannot confirm it"
else
  fail "to-hf did not report the unconfirmed head count: $out"
fi
if grep -q '"source": "flavor debugmodel"' wrong.json; then pass "--json lists the unconfirmed field"; else fail "--json lacks the unconfirmed field"; fi
expect_exit 3 "num_attention_heads 8 in config.json, but n_heads 16 from flavor debugmodel" -- \
  "$CKCONV" to-hf -m llama3 -f debugmodel --hf-config heads8.hf/config.json -i heads8 -o refused.hf
[[ ! -e refused.hf ]] && pass "refused to-hf wrote nothing" || fail "refused to-hf wrote output"
"$CKCONV" to-hf -q --hf-config heads8.hf/config.json -i heads8 -o right.hf
same_bytes right.hf/model.safetensors heads8.hf/model.safetensors "--hf-config alone names the model"
expect_exit 3 "num_attention_heads 8 in config.json, but n_heads 16 from flavor debugmodel" -- \
  "$CKCONV" verify -m llama3 -f debugmodel --hf-config heads8.hf/config.json --native heads8

# The second case: from-hf --flavor debugmodel of an HF folder whose config.json says 8 heads.
expect_exit 3 "num_attention_heads 8 in config.json, but n_heads 16 from flavor debugmodel" -- \
  "$CKCONV" from-hf -m llama3 -f debugmodel -i heads8.hf -o refused.native
expect_exit 3 "n_heads 16 from --set" -- \
  "$CKCONV" from-hf --set n_heads=16 -i heads8.hf -o refused.native

# The third case: config.json edited to another model type, more layers, another rope_theta.
edit_config() {  # edit_config DIR PYTHON-EXPRESSION-ON-c
  mkdir -p "$1"
  cp heads8.hf/model.safetensors "$1/"
  python3 -c "import json,sys; c=json.load(open('heads8.hf/config.json')); $2; json.dump(c, open('$1/config.json','w'))"
}
edit_config mistral "c['model_type']='mistral'; c['architectures']=['MistralForCausalLM']"
expect_exit 3 "names model_type \"mistral\"" -- "$CKCONV" from-hf -i mistral -o refused.native
edit_config qwen "c['model_type']='qwen3'; c['architectures']=['Qwen3ForCausalLM']"
expect_exit 3 "family qwen3, but --model is llama3" -- "$CKCONV" from-hf -m llama3 -i qwen -o refused.native
edit_config layers32 "c['num_hidden_layers']=32"
expect_exit 3 "num_hidden_layers 32 in config.json, but n_layers 6 from --set" -- \
  "$CKCONV" from-hf -m llama3 -f debugmodel --set n_heads=8 --set n_layers=6 -i layers32 -o refused.native
edit_config theta "c['rope_theta']=10000.0"
out="$("$CKCONV" from-hf -m llama3 -f debugmodel --set n_heads=8 -i theta -o theta.native 2>&1)"
if [[ "$out" == *"rope_theta 10000.0 in config.json, but rope_theta 500000.0"*"metadata only"* ]]; then
  pass "a metadata field that disagrees is a warning"
else
  fail "no warning for rope_theta: $out"
fi
# config.json of a built-in flavor says which one it is.
"$CKCONV" init -q -m llama3 -f debugmodel -o debug --native-format safetensors
"$CKCONV" to-hf -q -m llama3 -f debugmodel -i debug -o debug.hf
out="$("$CKCONV" from-hf -i debug.hf -o debug.native --native-format safetensors 2>&1)"
[[ "$out" == *"matches llama3/debugmodel"* ]] && pass "config.json matches llama3/debugmodel" || fail "no flavor match: $out"
same_bytes debug.native/model.safetensors debug/model.safetensors "from-hf by config.json round-trips init's checkpoint"
# An HF folder without config.json still works with --model/--flavor.
mkdir bare && cp debug.hf/model.safetensors bare/
"$CKCONV" from-hf -q -m llama3 -f debugmodel -i bare -o bare.native --native-format safetensors
same_bytes bare.native/model.safetensors debug/model.safetensors "from-hf without config.json"
expect_exit 2 "name the model" -- "$CKCONV" from-hf -i bare -o refused.native
finish
