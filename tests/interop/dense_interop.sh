# ckconv's HF output for the dense seed pairs (and a GQA llama3 flavor) checked by the real
# libraries: byte-identical to safetensors' save_file of the same tensors, loaded strictly by
# transformers (no missing/unexpected keys, values equal), and, for llama3, identical to a
# PyTorch implementation of torchtitan's to_hf (RoPE permutation included).
source "$(dirname "$0")/lib.sh"
check_pair() {  # check_pair NAME ARCH ckconv-model-args...
  local name="$1" arch="$2"
  shift 2
  "$CKCONV" init -q "$@" --seed 7 -o "$name.native"
  "$CKCONV" to-hf -q "$@" -i "$name.native" -o "$name.hf" --verify-roundtrip
  reference "$name: save_file byte identity" check_savefile_identity.py "$IN/$name.hf/model.safetensors"
  reference "$name: transformers $arch loads strictly" check_transformers_load.py "$IN/$name.hf" "$arch"
}
check_pair llama3_debugmodel LlamaForCausalLM -m llama3 -f debugmodel
check_pair llama3_debugmodel_fused LlamaForCausalLM -m llama3 -f debugmodel_fused_qkv
check_pair qwen3_debugmodel Qwen3ForCausalLM -m qwen3 -f debugmodel
check_pair qwen3_debugmodel_fused Qwen3ForCausalLM -m qwen3 -f debugmodel_fused_qkv
# GQA (n_kv_heads 8 < n_heads 32) with real 1B layer shapes, tied embeddings.
check_pair llama3_1B_gqa LlamaForCausalLM -m llama3 -f 1B --set n_layers=2 --set vocab_size=512
# A fused checkpoint must give the same HF bytes as its unfused twin (same tensors, split).
"$CKCONV" from-hf -q -m llama3 -f debugmodel_fused_qkv -i llama3_debugmodel.hf -o fused_from_plain --native-format safetensors --native-scheme 2026-06
"$CKCONV" to-hf -q -m llama3 -f debugmodel_fused_qkv -i fused_from_plain -o fused_again
cmp -s fused_again/model.safetensors llama3_debugmodel.hf/model.safetensors && pass "fused and plain llama3 agree" || fail "fused and plain llama3 disagree"

# The RoPE permutation against an independent PyTorch implementation of torchtitan's to_hf.
"$CKCONV" init -q -m llama3 -f 1B --set n_layers=2 --set vocab_size=512 --set enable_weight_tying=false -o gqa.native
"$CKCONV" to-hf -q -m llama3 -f 1B --set n_layers=2 --set vocab_size=512 --set enable_weight_tying=false -i gqa.native -o gqa.hf
reference "llama3 GQA: PyTorch reference to_hf equals ckconv" torch_convert_reference.py to-hf llama3 \
  "$IN/gqa.native/model.safetensors" "$IN/gqa.torch" --n-heads 32 --n-kv-heads 8
cmp -s gqa.torch/model.safetensors gqa.hf/model.safetensors && pass "llama3 GQA bytes equal the PyTorch path" || fail "llama3 GQA differs from the PyTorch path"

# ckconv's conversion of torchtitan's fixtures loads strictly too.
for pair in llama3_tiny_gqa:LlamaForCausalLM llama3_tiny_tied:LlamaForCausalLM qwen3_tiny_fused:Qwen3ForCausalLM; do
  fixture="${pair%%:*}"
  # shellcheck disable=SC2046
  "$CKCONV" to-hf -q $(fixture_args "$fixture") -i "$FIXTURES/adapters/$fixture/native.safetensors" -o "$fixture.hf"
  reference "$fixture: transformers loads ckconv's output" check_transformers_load.py "$IN/$fixture.hf" "${pair##*:}"
done
finish
