#include "model/native_layout.h"

#include <cmath>
#include <map>

#include "core/error.h"

namespace ckconv {
namespace {

struct FamilyModel {
  void (*derive)(ModelConfig&);
  std::vector<ExpectedTensor> (*native_tensors)(const ModelConfig&);
};

const std::map<std::string, FamilyModel>& families() {
  static const std::map<std::string, FamilyModel> table = {
      {"llama3", {derive_llama3_fields, llama3_native_tensors}},
      {"qwen3", {derive_qwen3_fields, qwen3_native_tensors}},
      {"llama4", {derive_llama4_fields, llama4_native_tensors}},
      {"gpt_oss", {derive_gpt_oss_fields, gpt_oss_native_tensors}},
      {"deepseek_v3", {derive_deepseek_v3_fields, deepseek_v3_native_tensors}},
  };
  return table;
}

const FamilyModel& family_model(const std::string& family) {
  auto found = families().find(family);
  if (found == families().end())
    fail(ErrorKind::kUsage, "model family '" + family + "' has no native layout in this build");
  return found->second;
}

}  // namespace

void derive_config_fields(ModelConfig& config) { family_model(config.family()).derive(config); }

std::vector<ExpectedTensor> expected_native_tensors(const ModelConfig& config) {
  return family_model(config.family()).native_tensors(config);
}

std::string layer_key(int64_t layer, const std::string& suffix) {
  return "layers." + std::to_string(layer) + "." + suffix;
}

void add_gqa_attention(std::vector<ExpectedTensor>& tensors, int64_t layer, bool fused,
                       int64_t q_rows, int64_t kv_rows, int64_t dim) {
  if (fused) {
    tensors.push_back({layer_key(layer, "attention.qkv_linear.wqkv.weight"), {q_rows + 2 * kv_rows, dim}});
  } else {
    tensors.push_back({layer_key(layer, "attention.qkv_linear.wq.weight"), {q_rows, dim}});
    tensors.push_back({layer_key(layer, "attention.qkv_linear.wk.weight"), {kv_rows, dim}});
    tensors.push_back({layer_key(layer, "attention.qkv_linear.wv.weight"), {kv_rows, dim}});
  }
  tensors.push_back({layer_key(layer, "attention.wo.weight"), {dim, q_rows}});
}

void add_swiglu(std::vector<ExpectedTensor>& tensors, const std::string& prefix, int64_t hidden,
                int64_t dim) {
  tensors.push_back({prefix + "w1.weight", {hidden, dim}});
  tensors.push_back({prefix + "w2.weight", {dim, hidden}});
  tensors.push_back({prefix + "w3.weight", {hidden, dim}});
}

void add_grouped_experts(std::vector<ExpectedTensor>& tensors, int64_t layer, int64_t experts,
                         int64_t hidden, int64_t dim) {
  tensors.push_back({layer_key(layer, "moe.experts.w1_EFD"), {experts, hidden, dim}});
  tensors.push_back({layer_key(layer, "moe.experts.w2_EDF"), {experts, dim, hidden}});
  tensors.push_back({layer_key(layer, "moe.experts.w3_EFD"), {experts, hidden, dim}});
}

void add_layer_norms(std::vector<ExpectedTensor>& tensors, int64_t layer, int64_t dim) {
  tensors.push_back({layer_key(layer, "attention_norm.weight"), {dim}});
  tensors.push_back({layer_key(layer, "ffn_norm.weight"), {dim}});
}

int64_t compute_ffn_hidden_dim(int64_t dim, int64_t multiple_of, std::optional<double> multiplier) {
  // Python: int(2 * 4 * dim / 3); int(multiplier * h); multiple_of * ceil(h / multiple_of).
  int64_t hidden = static_cast<int64_t>(2.0 * 4.0 * static_cast<double>(dim) / 3.0);
  if (multiplier) hidden = static_cast<int64_t>(*multiplier * static_cast<double>(hidden));
  return multiple_of * ((hidden + multiple_of - 1) / multiple_of);
}

}  // namespace ckconv
