# The MoE and remaining families checked by the real libraries: transformers loads ckconv's
# HF output strictly (Qwen3MoeForCausalLM, DeepseekV3ForCausalLM, Llama4ForCausalLM,
# GptOssForCausalLM in its transformers layout) and the files equal save_file's bytes.
source "$(dirname "$0")/lib.sh"
check() {  # check NAME ARCH ckconv-model-args...
  local name="$1" arch="$2"
  shift 2
  "$CKCONV" init -q "$@" --seed 3 -o "$name.native"
  "$CKCONV" to-hf -q "$@" -i "$name.native" -o "$name.hf" --verify-roundtrip
  reference "$name: save_file byte identity" check_savefile_identity.py --expect-metadata '{"format":"pt"}' "$IN/$name.hf/model.safetensors"
  reference "$name: transformers $arch loads strictly" check_transformers_load.py "$IN/$name.hf" "$arch"
}
check qwen3_moe Qwen3MoeForCausalLM -m qwen3 -f debugmodel_moe --set n_layers=2 --set num_experts=12
check deepseek_v3 DeepseekV3ForCausalLM -m deepseek_v3 -f debugmodel --set n_layers=3
check deepseek_v3_qlora DeepseekV3ForCausalLM -m deepseek_v3 -f debugmodel --set n_layers=2 --set q_lora_rank=32
check llama4 Llama4ForCausalLM -m llama4 -f debugmodel --set n_layers=4
check gpt_oss GptOssForCausalLM -m gpt_oss -f debugmodel --set n_layers=2 --set hf_expert_layout=transformers
# Sharded output loads too (transformers reads the index).
"$CKCONV" to-hf -q -m qwen3 -f debugmodel_moe --set n_layers=2 --set num_experts=12 -i qwen3_moe.native -o qwen3_moe.sharded --max-shard-size 2MB
reference "qwen3_moe sharded: transformers loads strictly" check_transformers_load.py "$IN/qwen3_moe.sharded" Qwen3MoeForCausalLM
finish
