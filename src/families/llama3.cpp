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

// The config fields config.json carries; the llama3 RoPE permutation of q and k depends on
// n_heads and n_kv_heads.
const std::vector<HfBinding>& llama3_bindings() {
  static const std::vector<HfBinding> bindings =
      dense_decoder_bindings({"hidden_dim", "intermediate_size"});
  return bindings;
}

nlohmann::json llama3_hf_config(const ModelConfig& config) {
  nlohmann::json hf_config = write_hf_bindings(llama3_bindings(), config);
  hf_config.update({
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_act", "silu"},
      {"rope_scaling", hf_llama3_rope_scaling(config)},
      {"attention_bias", false},
      {"mlp_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"pretraining_tp", 1},
      {"use_cache", true},
  });
  return hf_config;
}

}  // namespace

Family llama3_family() {
  return {"llama3",  derive_llama3_fields, llama3_rules, llama3_hf_config, llama3_bindings(),
          {"llama"}, {"LlamaForCausalLM"}};
}

}  // namespace ckconv
