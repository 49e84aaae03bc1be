// llama3 rule table (spec/adapters.md §2.3-2.5): renames, RoPE q/k row permutation (q with
// n_heads, k with n_kv_heads), fused wqkv split+permute, tied lm_head on 1B/3B.
#include "adapters/adapter.h"
#include "adapters/rule_builder.h"
#include "model/native_layout.h"

namespace ckconv {

Adapter build_llama3_adapter(const ModelConfig& config) {
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const bool tied = config.get_bool("enable_weight_tying");
  Adapter adapter;
  RuleBuilder rules(adapter.rules);
  const RuleBuilder::Attention attention{n_heads, n_kv_heads, head_dim, config.get_bool("fused_qkv"), true};
  rules.embeddings("model.");
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename(layer_key(layer, "attention.wo.weight"), hf + "self_attn.o_proj.weight");
    rules.swiglu(layer_key(layer, "feed_forward."), hf + "mlp.");
    rules.layer_norms(layer, hf);
  }
  rules.head("model.", "lm_head.weight", tied);
  adapter.hf_ignored_patterns = {R"(model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq)"};

  const int64_t dim = config.get_int("dim");
  const nlohmann::json rope_scaling = hf_llama3_rope_scaling(config);
  adapter.hf_config = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", config.get_int("vocab_size")},
      {"hidden_size", dim},
      {"intermediate_size", config.get_int("hidden_dim")},
      {"num_hidden_layers", config.get_int("n_layers")},
      {"num_attention_heads", n_heads},
      {"num_key_value_heads", n_kv_heads},
      {"head_dim", head_dim},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.get_double("norm_eps")},
      {"rope_theta", config.get_double("rope_theta")},
      {"rope_scaling", rope_scaling},
      {"max_position_embeddings", config.get_int("max_seq_len")},
      {"tie_word_embeddings", tied},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"pretraining_tp", 1},
      {"use_cache", true},
  };
  return adapter;
}

}  // namespace ckconv
