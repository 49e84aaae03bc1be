// qwen3 rule table (spec/adapters.md §6.3-6.6): renames (no RoPE permutation: both sides use
// rotate-half), fused wqkv split without permutation, q_norm/k_norm, tied embeddings on the
// small flavors; MoE flavors: per-expert split of w1_EFD/w3_EFD/w2_EDF and expert_bias_E
// dropped on to_hf, re-created as zeros on from_hf.
#include "adapters/adapter.h"
#include "adapters/rule_builder.h"
#include "model/native_layout.h"

namespace ckconv {

Adapter build_qwen3_adapter(const ModelConfig& config) {
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t experts = config.get_int("num_experts");
  const bool tied = config.get_bool("enable_weight_tying");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  Adapter adapter;
  RuleBuilder rules(adapter.rules);
  const RuleBuilder::Attention attention{n_heads, n_kv_heads, head_dim, config.get_bool("fused_qkv"), false};
  rules.embeddings("model.");
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename(layer_key(layer, "attention.wo.weight"), hf + "self_attn.o_proj.weight");
    rules.rename(layer_key(layer, "attention.q_norm.weight"), hf + "self_attn.q_norm.weight");
    rules.rename(layer_key(layer, "attention.k_norm.weight"), hf + "self_attn.k_norm.weight");
    if (experts > 0) {
      if (load_balance) rules.add({RuleOp::kDroppedZeros, {layer_key(layer, "moe.expert_bias_E")}, {}});
      rules.per_expert_swiglu(layer, hf + "mlp.experts.", experts);
      rules.rename(layer_key(layer, "moe.router.gate.weight"), hf + "mlp.gate.weight");
    } else {
      rules.swiglu(layer_key(layer, "feed_forward."), hf + "mlp.");
    }
    rules.layer_norms(layer, hf);
  }
  rules.head("model.", "lm_head.weight", tied);
  adapter.hf_ignored_patterns = {R"(model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq)"};
  if (experts > 0 && load_balance)
    adapter.verify_exclusions.push_back(
        {R"(.*\.moe\.expert_bias_E)",
         "HF Qwen3-MoE has no expert bias buffer: to_hf drops it, from_hf re-creates zeros"});

  const int64_t n_layers = config.get_int("n_layers");
  adapter.hf_config = {
      {"architectures", {experts > 0 ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM"}},
      {"model_type", experts > 0 ? "qwen3_moe" : "qwen3"},
      {"vocab_size", config.get_int("vocab_size")},
      {"hidden_size", config.get_int("dim")},
      {"intermediate_size", config.get_int("hidden_dim")},
      {"num_hidden_layers", n_layers},
      {"num_attention_heads", n_heads},
      {"num_key_value_heads", n_kv_heads},
      {"head_dim", head_dim},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.get_double("norm_eps")},
      {"rope_theta", config.get_double("rope_theta")},
      {"rope_scaling", nullptr},
      {"max_position_embeddings", config.get_int("max_seq_len")},
      {"tie_word_embeddings", tied},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"use_sliding_window", false},
      {"sliding_window", nullptr},
      {"max_window_layers", n_layers},
  };
  if (experts > 0) {
    adapter.hf_config["moe_intermediate_size"] = config.get_int("moe_hidden_dim");
    adapter.hf_config["num_experts"] = experts;
    adapter.hf_config["num_experts_per_tok"] = config.get_int("top_k");
    adapter.hf_config["norm_topk_prob"] = config.get_bool("route_norm");
    adapter.hf_config["decoder_sparse_step"] = 1;
    adapter.hf_config["mlp_only_layers"] = nlohmann::json::array();
  }
  return adapter;
}

}  // namespace ckconv
