// llama3 (torchtitan models/llama3, transformers LlamaForCausalLM): GQA attention
// with RoPE q/k row permutation (q with n_heads, k with n_kv_heads; interleaved in
// torchtitan, rotate-half in HF), optional fused wqkv split+permute, SwiGLU feed-forward, and
// a tied lm_head on 1B/3B.
#include "core/error.h"
#include "families/rule_builder.h"

namespace ckconv {
namespace {

void derive_llama3_fields(ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t n_heads = config.get_int("n_heads");
  if (n_heads <= 0 || dim <= 0) fail(ErrorKind::kUsage, "llama3: dim and n_heads must be positive");
  if (!config.get_optional_int("n_kv_heads")) config.set("n_kv_heads", n_heads);
  if (!config.get_optional_int("head_dim")) config.set("head_dim", dim / n_heads);
  if (!config.get_optional_int("hidden_dim"))
    config.set("hidden_dim",
               compute_ffn_hidden_dim(dim, config.get_int("multiple_of"),
                                      config.get_optional_double("ffn_dim_multiplier")));
  if (n_heads % config.get_int("n_kv_heads") != 0)
    fail(ErrorKind::kUsage, "llama3: n_heads must be a multiple of n_kv_heads");
}

// Native block order: attention (qkv, wo), feed_forward, attention_norm, ffn_norm.
void llama3_rules(const ModelConfig& config, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t n_heads = config.get_int("n_heads");
  const RuleBuilder::Attention attention{n_heads, config.get_int("n_kv_heads"), head_dim,
                                         dim,     config.get_bool("fused_qkv"), true};
  rules.embeddings("model.", vocab, dim);
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename({layer_key(layer, "attention.wo.weight"), {dim, n_heads * head_dim}},
                 hf + "self_attn.o_proj.weight");
    rules.swiglu(layer_key(layer, "feed_forward."), hf + "mlp.", config.get_int("hidden_dim"), dim);
    rules.layer_norms(layer, hf, dim);
  }
  rules.final_norm_and_output("model.", "lm_head.weight", config.get_bool("enable_weight_tying"),
                              vocab, dim);
  rules.ignore_hf(R"(model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq)");
}

nlohmann::json llama3_hf_config(const ModelConfig& config) {
  return {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", config.get_int("vocab_size")},
      {"hidden_size", config.get_int("dim")},
      {"intermediate_size", config.get_int("hidden_dim")},
      {"num_hidden_layers", config.get_int("n_layers")},
      {"num_attention_heads", config.get_int("n_heads")},
      {"num_key_value_heads", config.get_int("n_kv_heads")},
      {"head_dim", config.get_int("head_dim")},
      {"hidden_act", "silu"},
      {"rms_norm_eps", config.get_double("norm_eps")},
      {"rope_theta", config.get_double("rope_theta")},
      {"rope_scaling", hf_llama3_rope_scaling(config)},
      {"max_position_embeddings", config.get_int("max_seq_len")},
      {"tie_word_embeddings", config.get_bool("enable_weight_tying")},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"pretraining_tp", 1},
      {"use_cache", true},
  };
}

}  // namespace

Family llama3_family() {
  return {"llama3", derive_llama3_fields, llama3_rules, llama3_hf_config};
}

}  // namespace ckconv
