// Adapters: one rule table per model family ties native keys to HF keys through an operation
// of the layout algebra. Both directions (to_hf, from_hf) are derived from the same rules by
// pipeline/plan, so every rule is invertible by construction, and asymmetric cases are named
// rules too ("dropped on to_hf, zeros on from_hf", "tied", "ignored on from_hf").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.h"

namespace ckconv {

enum class RuleOp {
  kRename,            // native[0] <-> hf[0], bytes unchanged
  kRopePermute,       // native[0] <-> hf[0], RoPE rows interleaved <-> rotate-half, `heads` heads
  kFusedQkv,          // native[0] (fused wqkv) <-> hf q, k, v; RoPE-permuted when `permute`
  kExperts,           // native[0] [E, ...] <-> hf[e] per expert, ascending integer e
  kTransposeLast2,    // native[0] [..., a, b] <-> hf[0] [..., b, a]
  kConcatTransposed,  // native[0..k] [..., a_k, b] <-> hf[0] = cat(native[k]^T, dim=-1)
  kDroppedZeros,      // native[0] -> dropped on to_hf; from_hf re-creates it as float32 zeros
  kTied,              // native[0] (lm_head) -> omitted on to_hf; from_hf copies hf[0] (embeddings)
};

struct Rule {
  RuleOp op = RuleOp::kRename;
  std::vector<std::string> native;
  std::vector<std::string> hf;
  int64_t heads = 0;     // kRopePermute: heads of this tensor; kFusedQkv: query heads
  int64_t kv_heads = 0;  // kFusedQkv
  int64_t head_dim = 0;  // kRopePermute, kFusedQkv
  bool permute = false;  // kFusedQkv
};

struct Adapter {
  std::vector<Rule> rules;
  // HF keys that from_hf drops by name (e.g. rotary_emb.inv_freq): ECMAScript regexes.
  std::vector<std::string> hf_ignored_patterns;
  // Native keys whose values do not survive a round trip (verify compares key, shape and
  // dtype only, and checks they come back as zeros): regexes, each with its reason.
  std::vector<std::pair<std::string, std::string>> verify_exclusions;
  nlohmann::json hf_config;  // config.json for transformers, without torch_dtype
};

// Builds the adapter of `config`'s family; kUsage when the family has none.
Adapter build_adapter(const ModelConfig& config);

// Per-family builders (adapters/<family>_adapter.cpp).
Adapter build_llama3_adapter(const ModelConfig& config);
Adapter build_qwen3_adapter(const ModelConfig& config);
Adapter build_llama4_adapter(const ModelConfig& config);
Adapter build_gpt_oss_adapter(const ModelConfig& config);
Adapter build_deepseek_v3_adapter(const ModelConfig& config);

std::string rule_op_name(RuleOp op);

// HF rope_scaling of torchtitan's "llama" RoPE scaling (llama3, llama4), null without it.
nlohmann::json hf_llama3_rope_scaling(const ModelConfig& config);

}  // namespace ckconv
