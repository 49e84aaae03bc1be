#include "adapters/rule_builder.h"

#include "model/native_layout.h"

namespace ckconv {

std::string hf_layer_prefix(const std::string& hf_model, int64_t layer) {
  return hf_model + "layers." + std::to_string(layer) + ".";
}

void RuleBuilder::rename(std::string native, std::string hf) {
  rules_.push_back({RuleOp::kRename, {std::move(native)}, {std::move(hf)}});
}

void RuleBuilder::embeddings(const std::string& hf_model) {
  rename("tok_embeddings.weight", hf_model + "embed_tokens.weight");
}

void RuleBuilder::head(const std::string& hf_model, const std::string& hf_lm_head, bool tied) {
  rename("norm.weight", hf_model + "norm.weight");
  if (tied)
    rules_.push_back({RuleOp::kTied, {"lm_head.weight"}, {hf_model + "embed_tokens.weight"}});
  else
    rename("lm_head.weight", hf_lm_head);
}

void RuleBuilder::attention_qkv(int64_t layer, const std::string& hf_layer,
                                const Attention& attention, const std::string& suffix) {
  const std::string native = layer_key(layer, "attention.qkv_linear.");
  const std::string hf = hf_layer + "self_attn.";
  if (attention.fused) {
    rules_.push_back({RuleOp::kFusedQkv,
                      {native + "wqkv." + suffix},
                      {hf + "q_proj." + suffix, hf + "k_proj." + suffix, hf + "v_proj." + suffix},
                      attention.heads,
                      attention.kv_heads,
                      attention.head_dim,
                      attention.rope_permute});
    return;
  }
  if (attention.rope_permute) {
    rules_.push_back({RuleOp::kRopePermute, {native + "wq." + suffix}, {hf + "q_proj." + suffix},
                      attention.heads, 0, attention.head_dim});
    rules_.push_back({RuleOp::kRopePermute, {native + "wk." + suffix}, {hf + "k_proj." + suffix},
                      attention.kv_heads, 0, attention.head_dim});
  } else {
    rename(native + "wq." + suffix, hf + "q_proj." + suffix);
    rename(native + "wk." + suffix, hf + "k_proj." + suffix);
  }
  rename(native + "wv." + suffix, hf + "v_proj." + suffix);
}

void RuleBuilder::layer_norms(int64_t layer, const std::string& hf_layer) {
  rename(layer_key(layer, "attention_norm.weight"), hf_layer + "input_layernorm.weight");
  rename(layer_key(layer, "ffn_norm.weight"), hf_layer + "post_attention_layernorm.weight");
}

void RuleBuilder::swiglu(const std::string& native, const std::string& hf) {
  rename(native + "w1.weight", hf + "gate_proj.weight");
  rename(native + "w2.weight", hf + "down_proj.weight");
  rename(native + "w3.weight", hf + "up_proj.weight");
}

void RuleBuilder::per_expert_swiglu(int64_t layer, const std::string& hf_experts, int64_t experts) {
  const std::pair<const char*, const char*> projections[] = {
      {"moe.experts.w1_EFD", "gate_proj"}, {"moe.experts.w2_EDF", "down_proj"}, {"moe.experts.w3_EFD", "up_proj"}};
  for (const auto& [native, projection] : projections) {
    Rule rule{RuleOp::kExperts, {layer_key(layer, native)}, {}};
    for (int64_t e = 0; e < experts; ++e)
      rule.hf.push_back(hf_experts + std::to_string(e) + "." + projection + ".weight");
    rules_.push_back(std::move(rule));
  }
}

}  // namespace ckconv
