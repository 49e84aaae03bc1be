// The HF layouts a family can be written in and read from, beyond its rule table's defaults:
// llama4's key prefix (the multimodal hub repository's `language_model.model.*`, or
// `model.*` as transformers' text-only Llama4ForCausalLM saves it) and the MoE expert
// tensors (per expert, as the hub releases store them, or transformers' fused 3-D tensors).
// The choice travels in two config fields that the rule files read; to-hf takes it from the
// command line, from-hf from the input's key names.
#pragma once

#include <string>
#include <vector>

#include "model/model_config.h"

namespace ckconv {

// Config field: llama4's HF key layout, kMultimodalLayout (default) or kCausalLmLayout.
inline constexpr const char* kHfLayoutField = "hf_layout";
inline constexpr const char* kMultimodalLayout = "multimodal";
inline constexpr const char* kCausalLmLayout = "causal-lm";

// Config field: the HF expert layout. qwen3 MoE and deepseek_v3: kPerExpertExperts (default)
// or kFusedExperts. llama4: always kFusedExperts (its only layout). gpt_oss (configs/gpt_oss.json
// field): "torchtitan" (default) or "transformers", which is its fused layout.
inline constexpr const char* kHfExpertLayoutField = "hf_expert_layout";
inline constexpr const char* kPerExpertExperts = "per-expert";
inline constexpr const char* kFusedExperts = "fused";

// Config field: how many multi-token-prediction layers the HF side holds (deepseek_v3
// model.layers.{n_layers + j}.*); set by from-hf from the keys, 0 when absent.
inline constexpr const char* kHfMtpLayersField = "hf_mtp_layers";
int64_t hf_mtp_layers(const ModelConfig& config);

// The expert layout the rules of `config` use ("per-expert", "fused", or gpt_oss's own
// "torchtitan" / "transformers").
std::string hf_expert_layout(const ModelConfig& config);
// llama4's key layout: "multimodal" or "causal-lm".
std::string hf_key_layout(const ModelConfig& config);

// to-hf's --hf-layout and --hf-expert-layout ("" = the family's default) applied to
// `config`. kUsage for a value the family has no such layout for (llama4 experts per expert,
// gpt_oss per expert, --hf-layout for a family other than llama4, experts for a dense flavor).
void choose_hf_layouts(ModelConfig& config, const std::string& key_layout,
                       const std::string& expert_layout);

// from-hf: the layouts the input's HF `keys` use, set on `config`; returns one line per
// detected layout for the report. kBadInput when the keys mix two layouts, naming a key of each.
std::vector<std::string> detect_hf_layouts(ModelConfig& config,
                                           const std::vector<std::string>& keys);

// What a to-hf output in `config`'s layouts must say about itself (gpt_oss's default expert
// layout cannot be loaded by transformers); empty when nothing.
std::vector<std::string> hf_layout_warnings(const ModelConfig& config);

}  // namespace ckconv
