// deepseek_v3 rule table (spec/adapters.md §5.3-5.6, PR #3556 fix): renames for multi-head
// latent attention (q_proj, or q_a_proj/q_a_layernorm/q_b_proj with a low-rank query), no
// RoPE permutation (HF rope_interleave keeps torchtitan's interleaved layout), dense FFN on
// the first n_dense_layers layers, per-expert split of w1_EFD/w3_EFD/w2_EDF, shared experts,
// and expert_bias_E <-> mlp.gate.e_score_correction_bias (it round-trips: no exclusion).
#include "adapters/adapter.h"
#include "adapters/rule_builder.h"
#include "model/native_layout.h"

namespace ckconv {

Adapter build_deepseek_v3_adapter(const ModelConfig& config) {
  const int64_t n_layers = config.get_int("n_layers");
  const int64_t n_dense_layers = config.get_int("n_dense_layers");
  const int64_t q_lora_rank = config.get_int("q_lora_rank");
  const int64_t experts = config.get_int("num_experts");
  const int64_t num_shared_experts = config.get_int("num_shared_experts");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  Adapter adapter;
  RuleBuilder rules(adapter.rules);
  auto rename = [&](std::string native, std::string hf) { rules.rename(std::move(native), std::move(hf)); };
  rules.embeddings("model.");
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    if (q_lora_rank == 0) {
      rename(layer_key(layer, "attention.wq.weight"), hf + "self_attn.q_proj.weight");
    } else {
      rename(layer_key(layer, "attention.wq_a.weight"), hf + "self_attn.q_a_proj.weight");
      rename(layer_key(layer, "attention.q_norm.weight"), hf + "self_attn.q_a_layernorm.weight");
      rename(layer_key(layer, "attention.wq_b.weight"), hf + "self_attn.q_b_proj.weight");
    }
    rename(layer_key(layer, "attention.wkv_a.weight"), hf + "self_attn.kv_a_proj_with_mqa.weight");
    rename(layer_key(layer, "attention.kv_norm.weight"), hf + "self_attn.kv_a_layernorm.weight");
    rename(layer_key(layer, "attention.wkv_b.weight"), hf + "self_attn.kv_b_proj.weight");
    rename(layer_key(layer, "attention.wo.weight"), hf + "self_attn.o_proj.weight");
    rules.layer_norms(layer, hf);
    if (layer < n_dense_layers) {
      rules.swiglu(layer_key(layer, "feed_forward."), hf + "mlp.");
      continue;
    }
    if (load_balance)
      rename(layer_key(layer, "moe.expert_bias_E"), hf + "mlp.gate.e_score_correction_bias");
    rules.per_expert_swiglu(layer, hf + "mlp.experts.", experts);
    rename(layer_key(layer, "moe.router.gate.weight"), hf + "mlp.gate.weight");
    if (num_shared_experts > 0) rules.swiglu(layer_key(layer, "moe.shared_experts."), hf + "mlp.shared_experts.");
  }
  rules.head("model.", "lm_head.weight", false);

  const double mscale = config.get_double("mscale");
  const std::optional<int64_t> groups = config.get_optional_int("num_expert_groups");
  const std::optional<int64_t> limited_groups = config.get_optional_int("num_limited_groups");
  adapter.hf_config = {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"vocab_size", config.get_int("vocab_size")},
      {"hidden_size", config.get_int("dim")},
      {"intermediate_size", config.get_int("dense_hidden_dim")},
      {"moe_intermediate_size", config.get_int("moe_hidden_dim")},
      {"num_hidden_layers", n_layers},
      {"num_attention_heads", config.get_int("n_heads")},
      {"num_key_value_heads", config.get_int("n_heads")},
      {"head_dim", config.get_int("qk_rope_head_dim")},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.get_double("norm_eps")},
      {"rope_theta", config.get_double("rope_theta")},
      {"rope_interleave", true},
      // YaRN with mscale = mscale_all_dim, as torchtitan computes its softmax scale (spec §11).
      {"rope_scaling",
       {{"rope_type", "yarn"},
        {"factor", config.get_double("rope_factor")},
        {"beta_fast", config.get_double("rope_beta_fast")},
        {"beta_slow", config.get_double("rope_beta_slow")},
        {"mscale", mscale},
        {"mscale_all_dim", mscale},
        {"original_max_position_embeddings", config.get_int("rope_original_seq_len")}}},
      {"max_position_embeddings", config.get_int("max_seq_len")},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"n_routed_experts", experts},
      {"n_shared_experts", num_shared_experts},
      {"num_experts_per_tok", config.get_int("top_k")},
      {"first_k_dense_replace", n_dense_layers},
      {"n_group", groups.value_or(1)},
      {"topk_group", limited_groups.value_or(1)},
      {"scoring_func", config.fields().value("score_func", "")},
      {"norm_topk_prob", config.get_bool("route_norm")},
      {"routed_scaling_factor", config.get_double("route_scale")},
      {"q_lora_rank", q_lora_rank == 0 ? nlohmann::json(nullptr) : nlohmann::json(q_lora_rank)},
      {"kv_lora_rank", config.get_int("kv_lora_rank")},
      {"qk_nope_head_dim", config.get_int("qk_nope_head_dim")},
      {"qk_rope_head_dim", config.get_int("qk_rope_head_dim")},
      {"v_head_dim", config.get_int("v_head_dim")},
  };
  return adapter;
}

}  // namespace ckconv
