// gpt_oss rule table (spec/adapters.md §4.3-4.6, PR #3555 fixes): renames only (no RoPE
// permutation: both sides use rotate-half), attention sinks and q/k/v/o biases, router bias,
// expert weights and biases; expert_bias_E has no HF counterpart. The expert weights take
// one of two HF layouts (config field hf_expert_layout): torchtitan's to_hf output, dense
// [E, out, in] tensors under the MXFP4 checkpoint names *_blocks, or transformers' own
// unquantized layout, gate_up_proj [E, D, 2F] / down_proj [E, F, D] (the last two dims
// transposed), which GptOssForCausalLM loads.
#include "adapters/adapter.h"
#include "adapters/rule_builder.h"
#include "model/native_layout.h"

namespace ckconv {

Adapter build_gpt_oss_adapter(const ModelConfig& config) {
  const int64_t n_layers = config.get_int("n_layers");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  const bool transformers_layout = config.fields().value("hf_expert_layout", "") == "transformers";
  Adapter adapter;
  RuleBuilder rules(adapter.rules);
  auto rename = [&](std::string native, std::string hf) { rules.rename(std::move(native), std::move(hf)); };
  const RuleBuilder::Attention attention{n_heads, n_kv_heads, head_dim, config.get_bool("fused_qkv"), false};
  rules.embeddings("model.");
  nlohmann::json layer_types = nlohmann::json::array();
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rename(layer_key(layer, "attention.sinks"), hf + "self_attn.sinks");
    rules.attention_qkv(layer, hf, attention, "weight");
    rules.attention_qkv(layer, hf, attention, "bias");
    rename(layer_key(layer, "attention.wo.weight"), hf + "self_attn.o_proj.weight");
    rename(layer_key(layer, "attention.wo.bias"), hf + "self_attn.o_proj.bias");
    rules.layer_norms(layer, hf);
    if (load_balance) rules.add({RuleOp::kDroppedZeros, {layer_key(layer, "moe.expert_bias_E")}, {}});
    if (transformers_layout) {
      rules.add({RuleOp::kTransposeLast2,
                 {layer_key(layer, "moe.experts.mlp1_weight_EGD")},
                 {hf + "mlp.experts.gate_up_proj"}});
      rules.add({RuleOp::kTransposeLast2,
                 {layer_key(layer, "moe.experts.mlp2_weight_EDF")},
                 {hf + "mlp.experts.down_proj"}});
    } else {
      rename(layer_key(layer, "moe.experts.mlp1_weight_EGD"),
             hf + "mlp.experts.gate_up_proj_blocks");
      rename(layer_key(layer, "moe.experts.mlp2_weight_EDF"), hf + "mlp.experts.down_proj_blocks");
    }
    rename(layer_key(layer, "moe.experts.mlp1_bias_EG"), hf + "mlp.experts.gate_up_proj_bias");
    rename(layer_key(layer, "moe.experts.mlp2_bias_ED"), hf + "mlp.experts.down_proj_bias");
    rename(layer_key(layer, "moe.router.gate.weight"), hf + "mlp.router.weight");
    rename(layer_key(layer, "moe.router.gate.bias"), hf + "mlp.router.bias");
    layer_types.push_back(layer % 2 == 0 ? "sliding_attention" : "full_attention");
  }
  rules.head("model.", "lm_head.weight", false);
  if (load_balance)
    adapter.verify_exclusions.push_back({R"(.*\.moe\.expert_bias_E)",
                                         "HF GPT-OSS routers have no expert bias buffer: to_hf "
                                         "drops it, from_hf re-creates zeros"});

  // torchtitan's YaRN beta_fast/beta_slow are named the other way round from HF's (spec §11).
  adapter.hf_config = {
      {"architectures", {"GptOssForCausalLM"}},
      {"model_type", "gpt_oss"},
      {"vocab_size", config.get_int("vocab_size")},
      {"hidden_size", config.get_int("dim")},
      {"intermediate_size", config.get_int("moe_hidden_dim")},
      {"num_hidden_layers", n_layers},
      {"num_attention_heads", n_heads},
      {"num_key_value_heads", n_kv_heads},
      {"head_dim", head_dim},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.get_double("norm_eps")},
      {"rope_theta", config.get_double("rope_theta")},
      {"rope_scaling",
       {{"rope_type", "yarn"},
        {"factor", config.get_double("rope_factor")},
        {"beta_fast", config.get_double("rope_beta_slow")},
        {"beta_slow", config.get_double("rope_beta_fast")},
        {"truncate", false},
        {"original_max_position_embeddings", config.get_int("rope_original_seq_len")}}},
      {"max_position_embeddings", config.get_int("max_seq_len")},
      {"initial_context_length", config.get_int("rope_original_seq_len")},
      {"tie_word_embeddings", false},
      {"attention_bias", true},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"num_local_experts", config.get_int("num_experts")},
      {"num_experts_per_tok", config.get_int("top_k")},
      {"sliding_window", config.get_int("sliding_window_size")},
      {"layer_types", layer_types},
      {"swiglu_limit", config.get_double("swiglu_limit")},
      {"router_aux_loss_coef", 0.9},
      {"output_router_logits", false},
  };
  return adapter;
}

}  // namespace ckconv
