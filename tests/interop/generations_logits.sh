# shellcheck shell=bash
# ckconv's to-hf of every torchtitan generation fixture (fixtures/generations) is loaded by
# transformers strictly and gives the logits torchtitan's own model gave on the same native
# weights (logits.safetensors, written by the fixture generator; tolerances in
# check_logits.py). Default dtype for every fixture; --dtype bf16 for one dense model and
# --dtype f32 for one MoE model. Every logits check runs in one checker call (check_logits.py
# --list), which imports transformers and each model class once; its log names each model.
# shellcheck source=tests/interop/lib.sh
source "$(dirname "$0")/lib.sh"
GENERATIONS="$FIXTURES/generations"
arch_of() { # arch_of FAMILY
  case "$1" in
    llama3) echo LlamaForCausalLM ;;
    llama4) echo Llama4ForCausalLM ;;
    qwen3) [[ "$2" == *_moe ]] && echo Qwen3MoeForCausalLM || echo Qwen3ForCausalLM ;;
    deepseek_v3) echo DeepseekV3ForCausalLM ;;
    gpt_oss) echo GptOssForCausalLM ;;
  esac
}
LIST="$WORK/logits.list"
: >"$LIST"
# check DIR OUT [--dtype X]: to-hf of DIR's native checkpoint; its logits check goes on LIST.
check() {
  local dir="$1" out="$2"
  shift 2
  local generation name family json bf16=() # bf16: extra checker options
  name="$(basename "$dir")"
  generation="$(basename "$(dirname "$dir")")"
  json="$dir/flavor.json"
  family="$(sed -n 's/^ *"family": *"\([^"]*\)".*/\1/p' "$json")"
  # gpt_oss: transformers loads only its own expert layout.
  local layout=()
  [[ "$family" != gpt_oss ]] || layout=(--hf-expert-layout fused)
  if ! "$CKCONV" to-hf -q -m "$family" -f debugmodel --set-from "$json" "${layout[@]}" "$@" \
    -i "$dir/native.safetensors" -o "$out"; then
    fail "$generation/$name $*: to-hf"
    return
  fi
  [[ "$*" != *bf16* ]] || bf16=(--bf16)
  # v0.2's DeepSeek-V3 final norm has another eps than HF's single one (check_logits.py).
  [[ "$generation/$family" != v0.2/deepseek_v3 ]] || bf16+=(--norm-eps-gap)
  # The MTP block is HF layer n_layers, which DeepseekV3ForCausalLM does not model.
  [[ "$name" != *_mtp ]] || bf16+=(--mtp-layer "$(sed -n 's/^ *"n_layers": *\([0-9]*\).*/\1/p' "$json")")
  pass "$generation/$name ${*:-default dtype}: to-hf"
  local fields=("$IN/$out" "$(arch_of "$family" "$name")" "$IN/$out.logits.safetensors" "${bf16[@]}")
  (IFS=$'\t' && echo "${fields[*]}") >>"$LIST"
}
for dir in "$GENERATIONS"/*/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  generation="$(basename "$(dirname "$dir")")"
  # v0.1.0's llama4 routes with a softmax, which transformers' Llama4 cannot express: no
  # logits stored (its HF reference is v0.2.2's to_hf, see fixtures/generations/README.md).
  [[ -f "$dir/logits.safetensors" ]] || continue
  cp "$dir/logits.safetensors" "$generation-$name.hf.logits.safetensors"
  check "$dir" "$generation-$name.hf"
done
for model_dtype in v0.2/llama3_tiny:bf16 2026-08/qwen3_tiny_moe:f32; do
  model="${model_dtype%:*}" dtype="${model_dtype#*:}"
  out="${model/\//-}.$dtype.hf"
  cp "$GENERATIONS/$model/logits.safetensors" "$out.logits.safetensors"
  check "$GENERATIONS/$model" "$out" --dtype "$dtype"
done
reference "$(wc -l <"$LIST") models: transformers logits equal torchtitan's" check_logits.py --list "$IN/logits.list"
finish
