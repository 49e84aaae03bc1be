// llama4 rule table (spec/adapters.md §3.3-3.6, PR #3554 fixes): every HF key carries the
// `language_model.` prefix of the Llama4ForConditionalGeneration hub layout; no RoPE
// permutation (both sides use interleaved complex RoPE); dense FFN layers map to
// feed_forward.{gate,up,down}_proj; MoE experts: gate_up_proj [E, D, 2F] = cat(w1_EFD^T,
// w3_EFD^T) and down_proj [E, F, D] = w2_EDF^T; expert_bias_E has no HF counterpart.
#include "adapters/adapter.h"
#include "adapters/rule_builder.h"
#include "model/native_layout.h"

namespace ckconv {

Adapter build_llama4_adapter(const ModelConfig& config) {
  const int64_t n_layers = config.get_int("n_layers");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  const std::string prefix = "language_model.";
  Adapter adapter;
  RuleBuilder rules(adapter.rules);
  const RuleBuilder::Attention attention{n_heads, n_kv_heads, head_dim, config.get_bool("fused_qkv"), false};
  rules.embeddings(prefix + "model.");
  nlohmann::json moe_layers = nlohmann::json::array();
  nlohmann::json no_rope_layers = nlohmann::json::array();
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    const std::string hf = hf_layer_prefix(prefix + "model.", layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename(layer_key(layer, "attention.wo.weight"), hf + "self_attn.o_proj.weight");
    if (llama4_is_moe_layer(config, layer)) {
      moe_layers.push_back(layer);
      if (load_balance) rules.add({RuleOp::kDroppedZeros, {layer_key(layer, "moe.expert_bias_E")}, {}});
      rules.add(
          {RuleOp::kConcatTransposed,
           {layer_key(layer, "moe.experts.w1_EFD"), layer_key(layer, "moe.experts.w3_EFD")},
           {hf + "feed_forward.experts.gate_up_proj"}});
      rules.add({RuleOp::kTransposeLast2,
                 {layer_key(layer, "moe.experts.w2_EDF")},
                 {hf + "feed_forward.experts.down_proj"}});
      rules.rename(layer_key(layer, "moe.router.gate.weight"), hf + "feed_forward.router.weight");
      rules.swiglu(layer_key(layer, "moe.shared_experts."), hf + "feed_forward.shared_expert.");
    } else {
      rules.swiglu(layer_key(layer, "feed_forward."), hf + "feed_forward.");
    }
    rules.layer_norms(layer, hf);
    // HF's no_rope_layers holds 1 where RoPE is used; torchtitan drops RoPE on i % n == 0
    // (HF's own default would be (i + 1) % n == 0), so the list is written out explicitly.
    no_rope_layers.push_back(layer % config.get_int("every_n_layers_nope") == 0 ? 0 : 1);
  }
  rules.head(prefix + "model.", prefix + "lm_head.weight", false);
  // Hub checkpoints of Llama4ForConditionalGeneration also hold the vision tower and the
  // projector, which the text model neither has nor needs.
  adapter.hf_ignored_patterns = {R"(vision_model\..*)", R"(multi_modal_projector\..*)"};
  if (load_balance && !moe_layers.empty())
    adapter.verify_exclusions.push_back(
        {R"(.*\.moe\.expert_bias_E)",
         "HF Llama4 routers have no expert bias buffer: to_hf drops it, from_hf re-creates zeros"});

  const nlohmann::json rope_scaling = hf_llama3_rope_scaling(config);
  // The text-only Llama4ForCausalLM config (transformers loads the `language_model.` keys
  // into it strictly, spec §11); torchtitan models neither the L2 qk norm nor attention
  // temperature tuning, so both are off.
  adapter.hf_config = {
      {"architectures", {"Llama4ForCausalLM"}},
      {"model_type", "llama4_text"},
      {"vocab_size", config.get_int("vocab_size")},
      {"hidden_size", config.get_int("dim")},
      {"intermediate_size", config.get_int("moe_hidden_dim")},
      {"intermediate_size_mlp", config.get_int("hidden_dim")},
      {"num_hidden_layers", n_layers},
      {"num_attention_heads", n_heads},
      {"num_key_value_heads", n_kv_heads},
      {"head_dim", head_dim},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.get_double("norm_eps")},
      {"rope_theta", config.get_double("rope_theta")},
      {"rope_scaling", rope_scaling},
      {"max_position_embeddings", config.get_int("max_seq_len")},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"num_local_experts", config.get_int("num_experts")},
      {"num_experts_per_tok", config.get_int("top_k")},
      {"interleave_moe_layer_step", config.get_int("interleave_moe_layer_step")},
      {"moe_layers", moe_layers},
      {"no_rope_layers", no_rope_layers},
      {"attention_chunk_size", config.get_int("fixed_attn_block_size")},
      {"use_qk_norm", false},
      {"attn_temperature_tuning", false},
      {"floor_scale", 8192},
      {"attn_scale", 0.1},
      {"router_aux_loss_coef", 0.001},
      {"router_jitter_noise", 0.0},
      {"output_router_logits", false},
  };
  return adapter;
}

}  // namespace ckconv
