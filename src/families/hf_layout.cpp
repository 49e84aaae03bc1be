#include "families/hf_layout.h"

#include <regex>

#include "core/error.h"

namespace ckconv {
namespace {

bool is_moe(const ModelConfig& config) {
  if (config.family() == "qwen3") return config.get_int("num_experts") > 0;
  return config.family() == "deepseek_v3" || config.family() == "llama4" ||
         config.family() == "gpt_oss";
}

// The first key matching `pattern`, or "".
std::string first_match(const std::vector<std::string>& keys, const std::regex& pattern) {
  for (const std::string& key : keys)
    if (std::regex_search(key, pattern)) return key;
  return "";
}

// Which of two layouts `keys` use: `a_name` when some key matches `a`, `b_name` for `b`, ""
// for neither; kBadInput naming a key of each when both.
std::string one_of_two(const std::vector<std::string>& keys, const std::string& what,
                       const std::regex& a, const std::string& a_name, const std::regex& b,
                       const std::string& b_name) {
  const std::string a_key = first_match(keys, a);
  const std::string b_key = first_match(keys, b);
  if (!a_key.empty() && !b_key.empty())
    fail_input("the HF checkpoint mixes two " + what + " layouts: '" + a_key + "' (" + a_name +
               ") and '" + b_key + "' (" + b_name + "); a checkpoint uses one");
  if (!a_key.empty()) return a_name;
  if (!b_key.empty()) return b_name;
  return "";
}

}  // namespace

std::string hf_expert_layout(const ModelConfig& config) {
  if (config.family() == "llama4") return kFusedExperts;
  const std::string fallback = config.family() == "gpt_oss" ? "torchtitan" : kPerExpertExperts;
  const nlohmann::json& fields = config.fields();
  auto found = fields.find(kHfExpertLayoutField);
  return found != fields.end() && found->is_string() ? found->get<std::string>() : fallback;
}

int64_t hf_mtp_layers(const ModelConfig& config) {
  const nlohmann::json& fields = config.fields();
  auto found = fields.find(kHfMtpLayersField);
  return found != fields.end() && found->is_number_integer() ? found->get<int64_t>() : 0;
}

std::string hf_key_layout(const ModelConfig& config) {
  const nlohmann::json& fields = config.fields();
  auto found = fields.find(kHfLayoutField);
  return found != fields.end() && found->is_string() ? found->get<std::string>()
                                                     : kMultimodalLayout;
}

void choose_hf_layouts(ModelConfig& config, const std::string& key_layout,
                       const std::string& expert_layout) {
  const std::string& family = config.family();
  if (!key_layout.empty()) {
    if (family != "llama4")
      fail(ErrorKind::kUsage,
           "--hf-layout applies to llama4 only; " + family + " has one HF key layout");
    if (key_layout != kMultimodalLayout && key_layout != kCausalLmLayout)
      fail(ErrorKind::kUsage,
           "--hf-layout must be multimodal or causal-lm, found '" + key_layout + "'");
    config.set(kHfLayoutField, key_layout);
  }
  if (expert_layout.empty()) return;
  if (expert_layout != kPerExpertExperts && expert_layout != kFusedExperts)
    fail(ErrorKind::kUsage,
         "--hf-expert-layout must be per-expert or fused, found '" + expert_layout + "'");
  if (!is_moe(config))
    fail(ErrorKind::kUsage,
         "--hf-expert-layout: " + family + "/" + config.flavor() + " has no MoE experts");
  const bool fused = expert_layout == kFusedExperts;
  if (family == "llama4") {
    if (!fused)
      fail(ErrorKind::kUsage,
           "--hf-expert-layout per-expert: llama4's HF experts are always fused "
           "(feed_forward.experts.gate_up_proj [E, D, 2F]); transformers has no per-expert llama4 "
           "layout");
    return;
  }
  if (family == "gpt_oss") {
    if (!fused)
      fail(ErrorKind::kUsage,
           "--hf-expert-layout per-expert: gpt_oss has no per-expert HF layout; choose fused "
           "(transformers' GptOssForCausalLM) or leave the default (torchtitan's)");
    config.set(kHfExpertLayoutField, "transformers");
    return;
  }
  config.set(kHfExpertLayoutField, expert_layout);
}

std::vector<std::string> detect_hf_layouts(ModelConfig& config,
                                           const std::vector<std::string>& keys) {
  std::vector<std::string> lines;
  const std::string& family = config.family();
  if (family == "llama4") {
    const std::string layout =
        one_of_two(keys, "llama4 key", std::regex(R"(^language_model\.)"), kMultimodalLayout,
                   std::regex(R"(^(model\.|lm_head\.weight$))"), kCausalLmLayout);
    if (!layout.empty()) {
      config.set(kHfLayoutField, layout);
      lines.push_back("llama4 key layout: " + layout + " (from the key names)");
    }
    return lines;
  }
  std::string layout;
  // gpt_oss: a layout named with --set hf_expert_layout=transformers (not the default) is
  // kept, and the plan checks the keys against it.
  if (family == "gpt_oss" && hf_expert_layout(config) == "torchtitan")
    layout = one_of_two(keys, "expert",
                        std::regex(R"(\.mlp\.experts\.(gate_up|down)_proj_blocks$)"), "torchtitan",
                        std::regex(R"(\.mlp\.experts\.(gate_up|down)_proj$)"), "transformers");
  else if (family == "qwen3" || family == "deepseek_v3")
    layout =
        one_of_two(keys, "expert", std::regex(R"(\.mlp\.experts\.[0-9]+\.)"), kPerExpertExperts,
                   std::regex(R"(\.mlp\.experts\.(gate_up|down)_proj$)"), kFusedExperts);
  if (!layout.empty()) {
    config.set(kHfExpertLayoutField, layout);
    lines.push_back("expert layout: " + layout + " (from the key names)");
  }
  if (family == "deepseek_v3") {
    // Multi-token-prediction layers follow the main ones, each with an eh_proj.
    const int64_t n_layers = config.get_int("n_layers");
    int64_t mtp = 0;
    auto has_key = [&](const std::string& name) {
      for (const std::string& key : keys)
        if (key == name) return true;
      return false;
    };
    while (has_key("model.layers." + std::to_string(n_layers + mtp) + ".eh_proj.weight")) ++mtp;
    if (mtp > 0) {
      config.set(kHfMtpLayersField, mtp);
      lines.push_back("multi-token-prediction layers: " + std::to_string(mtp) + " (model.layers." +
                      std::to_string(n_layers) + ".*" + (mtp > 1 ? " on" : "") + ")");
    }
  }
  return lines;
}

std::vector<std::string> hf_layout_warnings(const ModelConfig& config) {
  if (config.family() == "gpt_oss" && hf_expert_layout(config) == "torchtitan")
    return {
        "gpt_oss experts are written in torchtitan's layout (dense mlp.experts.*_proj_blocks "
        "under the MXFP4 names), which transformers cannot load; --hf-expert-layout fused "
        "writes GptOssForCausalLM's layout"};
  return {};
}

}  // namespace ckconv
