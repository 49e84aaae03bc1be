# The MoE and remaining families checked by the real libraries: transformers loads ckconv's
# HF output strictly (Qwen3MoeForCausalLM, DeepseekV3ForCausalLM, Llama4ForCausalLM,
# GptOssForCausalLM in its transformers layout) and the files equal save_file's bytes. The
# other HF layouts (--hf-layout causal-lm, --hf-expert-layout fused) load strictly too and
# hold the same model as the default layout (save_pretrained of the loaded model gives back
# the default layout's tensors).
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
# layout NAME BASE ARCH OPTION VALUE ckconv-model-args...: BASE.native in another HF layout.
layout() {
  local name="$1" base="$2" arch="$3" option="$4" value="$5"
  shift 5
  "$CKCONV" to-hf -q "$@" "$option" "$value" -i "$base.native" -o "$name.hf" --verify-roundtrip
  reference "$name: save_file byte identity" check_savefile_identity.py --expect-metadata '{"format":"pt"}' "$IN/$name.hf/model.safetensors"
  reference "$name: transformers $arch loads strictly, same model as $base" \
    check_transformers_load.py "$IN/$name.hf" "$arch" "$IN/$base.hf"
}
layout qwen3_moe_fused qwen3_moe Qwen3MoeForCausalLM --hf-expert-layout fused -m qwen3 -f debugmodel_moe --set n_layers=2 --set num_experts=12
layout deepseek_v3_fused deepseek_v3 DeepseekV3ForCausalLM --hf-expert-layout fused -m deepseek_v3 -f debugmodel --set n_layers=3
layout llama4_causal_lm llama4 Llama4ForCausalLM --hf-layout causal-lm -m llama4 -f debugmodel --set n_layers=4
layout gpt_oss_fused gpt_oss GptOssForCausalLM --hf-expert-layout fused -m gpt_oss -f debugmodel --set n_layers=2
# Sharded output loads too (transformers reads the index).
"$CKCONV" to-hf -q -m qwen3 -f debugmodel_moe --set n_layers=2 --set num_experts=12 -i qwen3_moe.native -o qwen3_moe.sharded --max-shard-size 2MB
reference "qwen3_moe sharded: transformers loads strictly" check_transformers_load.py "$IN/qwen3_moe.sharded" Qwen3MoeForCausalLM
finish
