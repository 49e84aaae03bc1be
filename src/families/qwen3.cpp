// qwen3 dense, fused-QKV and MoE (torchtitan models/qwen3, transformers Qwen3ForCausalLM /
// Qwen3MoeForCausalLM). A flavor is MoE when num_experts > 0; then every layer is MoE, with no
// shared experts. Renames only (both sides use rotate-half RoPE), fused wqkv split without
// permutation, q_norm/k_norm, tied embeddings on the small flavors; MoE flavors split the
// stacked w1_EFD/w3_EFD/w2_EDF per expert, and expert_bias_E is dropped on to_hf and
// re-created as zeros on from_hf.
#include "core/error.h"
#include "families/rule_builder.h"

namespace ckconv {
namespace {

void derive_qwen3_fields(ModelConfig& config) {
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    fail(ErrorKind::kUsage, "qwen3: n_heads must be a positive multiple of n_kv_heads");
}

// Native block order: attention (qkv, wo, q_norm, k_norm), moe | feed_forward,
// attention_norm, ffn_norm.
void qwen3_rules(const ModelConfig& config, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t experts = config.get_int("num_experts");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  const RuleBuilder::Attention attention{n_heads, config.get_int("n_kv_heads"), head_dim,
                                         dim,     config.get_bool("fused_qkv"), false};
  rules.embeddings("model.", vocab, dim);
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename({layer_key(layer, "attention.wo.weight"), {dim, n_heads * head_dim}},
                 hf + "self_attn.o_proj.weight");
    rules.rename({layer_key(layer, "attention.q_norm.weight"), {head_dim}},
                 hf + "self_attn.q_norm.weight");
    rules.rename({layer_key(layer, "attention.k_norm.weight"), {head_dim}},
                 hf + "self_attn.k_norm.weight");
    if (experts > 0) {
      if (load_balance)
        rules.dropped_zeros({layer_key(layer, "moe.expert_bias_E"), {experts}, true},
                            "HF Qwen3-MoE has no expert bias buffer");
      rules.swiglu_experts(config, layer, hf + "mlp.experts.", experts,
                           config.get_int("moe_hidden_dim"), dim);
      rules.rename({layer_key(layer, "moe.router.gate.weight"), {experts, dim}},
                   hf + "mlp.gate.weight");
    } else {
      rules.swiglu(layer_key(layer, "feed_forward."), hf + "mlp.", config.get_int("hidden_dim"),
                   dim);
    }
    rules.layer_norms(layer, hf, dim);
  }
  rules.final_norm_and_output("model.", "lm_head.weight", config.get_bool("enable_weight_tying"),
                              vocab, dim);
  rules.ignore_hf(R"(model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq)");
}

using enum FieldType;
using enum FieldEffect;

bool qwen3_is_moe(const ModelConfig& config) {
  return config.get_int("num_experts") > 0;
}

// The config fields config.json carries. MoE fields exist only on MoE flavors; a dense
// config.json lacks them and keeps num_experts 0. On MoE flavors intermediate_size
// (hidden_dim) names no tensor, so there it is metadata.
const std::vector<HfBinding>& qwen3_bindings() {
  static const std::vector<HfBinding> bindings = [] {
    std::vector<HfBinding> rows = dense_decoder_bindings(
        {"hidden_dim", "intermediate_size", kInt, kBytes, nullptr, nullptr, nullptr, qwen3_is_moe});
    rows.insert(rows.end(),
                {
                    {"moe_hidden_dim", "moe_intermediate_size", kInt, kBytes, qwen3_is_moe},
                    {"num_experts", "num_experts", kInt, kBytes, qwen3_is_moe},
                    {"top_k", "num_experts_per_tok", kInt, kMetadata, qwen3_is_moe},
                    {"route_norm", "norm_topk_prob", kBool, kMetadata, qwen3_is_moe},
                });
    return rows;
  }();
  return bindings;
}

nlohmann::json qwen3_hf_config(const ModelConfig& config) {
  const bool moe = qwen3_is_moe(config);
  nlohmann::json hf_config = write_hf_bindings(qwen3_bindings(), config);
  hf_config.update({
      {"architectures", {moe ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM"}},
      {"model_type", moe ? "qwen3_moe" : "qwen3"},
      {"hidden_act", "silu"},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"use_sliding_window", false},
      {"sliding_window", nullptr},
      {"max_window_layers", config.get_int("n_layers")},
  });
  if (moe) {
    hf_config["decoder_sparse_step"] = 1;
    hf_config["mlp_only_layers"] = nlohmann::json::array();
  }
  return hf_config;
}

}  // namespace

Family qwen3_family() {
  return {"qwen3",
          derive_qwen3_fields,
          qwen3_rules,
          qwen3_hf_config,
          qwen3_bindings(),
          {"qwen3", "qwen3_moe"},
          {"Qwen3ForCausalLM", "Qwen3MoeForCausalLM"}};
}

}  // namespace ckconv
