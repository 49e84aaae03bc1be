# shellcheck shell=bash
# ckconv's to-hf of every torchtitan generation fixture (fixtures/generations) is loaded by
# transformers strictly and gives the logits torchtitan's own model gave on the same native
# weights (logits.safetensors, written by the fixture generator; tolerances in
# check_logits.py). Default dtype for every fixture; --dtype bf16 and --dtype f32 for one dense
# and one MoE model. Models whose HF classes transformers lacks, or whose conversion ckconv
# refuses (cli.generations' known gaps), are listed as skipped.
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
# check DIR OUT [--dtype X]: to-hf of DIR's native checkpoint, then the logits check.
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
  reference "$generation/$name ${*:-default dtype}: transformers $(arch_of "$family" "$name") logits equal torchtitan's" \
    check_logits.py "$IN/$out" "$(arch_of "$family" "$name")" "$IN/$out.logits.safetensors" "${bf16[@]}"
}
for dir in "$GENERATIONS"/*/*/; do
  dir="${dir%/}"
  name="$(basename "$dir")"
  generation="$(basename "$(dirname "$dir")")"
  case "$generation/$name" in
    v0.2/gpt_oss_tiny)
      echo "skip $generation/$name: ckconv refuses v0.2 gpt_oss's bf16 expert_bias (cli.generations)"
      continue
      ;;
  esac
  cp "$dir/logits.safetensors" "$generation-$name.hf.logits.safetensors"
  check "$dir" "$generation-$name.hf"
done
for model in v0.2/llama3_tiny 2026-08/qwen3_tiny_moe; do
  for dtype in bf16 f32; do
    out="${model/\//-}.$dtype.hf"
    cp "$GENERATIONS/$model/logits.safetensors" "$out.logits.safetensors"
    check "$GENERATIONS/$model" "$out" --dtype "$dtype"
  done
done
finish
