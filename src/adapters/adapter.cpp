#include "adapters/adapter.h"

#include <map>

#include "core/error.h"

namespace ckconv {

Adapter build_adapter(const ModelConfig& config) {
  static const std::map<std::string, Adapter (*)(const ModelConfig&)> builders = {
      {"llama3", build_llama3_adapter},
      {"qwen3", build_qwen3_adapter},
      {"llama4", build_llama4_adapter},
      {"gpt_oss", build_gpt_oss_adapter},
      {"deepseek_v3", build_deepseek_v3_adapter},
  };
  auto found = builders.find(config.family());
  if (found == builders.end())
    fail(ErrorKind::kUsage, "model family '" + config.family() + "' has no adapter in this build");
  return found->second(config);
}

nlohmann::json hf_llama3_rope_scaling(const ModelConfig& config) {
  if (config.fields().value("rope_scaling", "") != "llama") return nullptr;
  return {{"rope_type", "llama3"},
          {"factor", config.get_double("rope_scaling_factor")},
          {"low_freq_factor", config.get_double("rope_low_freq_factor")},
          {"high_freq_factor", config.get_double("rope_high_freq_factor")},
          {"original_max_position_embeddings", config.get_int("rope_original_max_position_embeddings")}};
}

std::string rule_op_name(RuleOp op) {
  switch (op) {
    case RuleOp::kRename: return "rename";
    case RuleOp::kRopePermute: return "rope-permute";
    case RuleOp::kFusedQkv: return "fused-qkv";
    case RuleOp::kExperts: return "experts";
    case RuleOp::kTransposeLast2: return "transpose";
    case RuleOp::kConcatTransposed: return "concat-transposed";
    case RuleOp::kDroppedZeros: return "dropped-zeros";
    case RuleOp::kTied: return "tied";
  }
  return "?";
}

}  // namespace ckconv
