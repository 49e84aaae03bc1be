// llama4 text model (torchtitan models/llama4, transformers Llama4ForConditionalGeneration
// hub layout): GQA attention as llama3 without RoPE permutation (both sides use interleaved
// complex RoPE), then per layer either a dense FFN or, every interleave_moe_layer_step-th
// layer, an MoE block with grouped experts, a router and one shared expert. HF keys take one
// of two layouts (families/hf_layout.h): the multimodal hub repository's, every key under
// `language_model.` (default), or `model.*` / `lm_head.weight` as Llama4ForCausalLM's
// save_pretrained writes them; transformers' Llama4ForCausalLM loads both (its
// base_model_prefix is `language_model`). MoE experts: gate_up_proj [E, D, 2F] =
// cat(w1_EFD^T, w3_EFD^T) and down_proj [E, F, D] = w2_EDF^T; expert_bias_E has no HF
// counterpart.
#include "core/error.h"
#include "families/hf_layout.h"
#include "families/rule_builder.h"

namespace ckconv {
namespace {

// torchtitan llama4 compute_moe_hidden_dim: unlike compute_ffn_hidden_dim it divides by
// (top_k + num_shared_experts) before rounding up to multiple_of.
int64_t compute_moe_hidden_dim(int64_t dim, int64_t multiple_of, std::optional<double> multiplier,
                               int64_t top_k, int64_t num_shared_experts) {
  int64_t hidden = static_cast<int64_t>(2.0 * 4.0 * static_cast<double>(dim) / 3.0);
  if (multiplier) hidden = static_cast<int64_t>(*multiplier * static_cast<double>(hidden));
  hidden = static_cast<int64_t>(static_cast<double>(hidden) /
                                static_cast<double>(top_k + num_shared_experts));
  return multiple_of * ((hidden + multiple_of - 1) / multiple_of);
}

bool llama4_is_moe_layer(const ModelConfig& config, int64_t layer) {
  return (layer + 1) % config.get_int("interleave_moe_layer_step") == 0;
}

void derive_llama4_fields(ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t n_heads = config.get_int("n_heads");
  if (n_heads <= 0 || dim <= 0) fail(ErrorKind::kUsage, "llama4: dim and n_heads must be positive");
  if (config.get_int("interleave_moe_layer_step") < 1)
    fail(ErrorKind::kUsage, "llama4: interleave_moe_layer_step must be at least 1");
  if (config.get_int("every_n_layers_nope") <= 1)
    fail(ErrorKind::kUsage,
         "llama4: every_n_layers_nope must be greater than 1 (torchtitan refuses it)");
  if (config.get_int("num_experts") <= 0 || config.get_int("top_k") <= 0)
    fail(ErrorKind::kUsage, "llama4: num_experts and top_k must be positive");
  const nlohmann::json scaling = config.fields().value("rope_scaling", nlohmann::json());
  if (scaling != "llama" && scaling != "none")
    fail(ErrorKind::kUsage,
         "llama4: rope_scaling must be \"llama\" or \"none\", found " + scaling.dump());
  if (!config.get_optional_int("n_kv_heads")) config.set("n_kv_heads", n_heads);
  if (!config.get_optional_int("head_dim")) config.set("head_dim", dim / n_heads);
  const int64_t multiple_of = config.get_int("multiple_of");
  const std::optional<double> multiplier = config.get_optional_double("ffn_dim_multiplier");
  if (!config.get_optional_int("hidden_dim"))
    config.set("hidden_dim", compute_ffn_hidden_dim(dim, multiple_of, multiplier));
  if (!config.get_optional_int("moe_hidden_dim"))
    config.set("moe_hidden_dim",
               compute_moe_hidden_dim(dim, multiple_of, multiplier, config.get_int("top_k"),
                                      config.get_int("num_shared_experts")));
  if (!config.get_optional_int("shared_experts_hidden_dim"))
    config.set("shared_experts_hidden_dim", config.get_int("moe_hidden_dim"));
  if (n_heads % config.get_int("n_kv_heads") != 0)
    fail(ErrorKind::kUsage, "llama4: n_heads must be a multiple of n_kv_heads");
}

// layers.{i}.moe: expert_bias_E, experts (w1_EFD, w2_EDF, w3_EFD), router, shared_experts.
void llama4_moe_rules(const ModelConfig& config, int64_t layer, const std::string& hf,
                      RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t experts = config.get_int("num_experts");
  const int64_t hidden = config.get_int("moe_hidden_dim");
  if (config.get_optional_double("load_balance_coeff"))
    rules.dropped_zeros({layer_key(layer, "moe.expert_bias_E"), {experts}, true},
                        "HF Llama4 routers have no expert bias buffer");
  const NativeTensor w1{layer_key(layer, "moe.experts.w1_EFD"), {experts, hidden, dim}};
  const NativeTensor w2{layer_key(layer, "moe.experts.w2_EDF"), {experts, dim, hidden}};
  const NativeTensor w3{layer_key(layer, "moe.experts.w3_EFD"), {experts, hidden, dim}};
  // torchtitan registers w1, w2, w3; gate_up_proj takes w1 and w3 together.
  rules.declare_native_order({w1.name, w2.name, w3.name});
  rules.add({RuleOp::kConcatTransposed, {w1, w3}, {hf + "feed_forward.experts.gate_up_proj"}});
  rules.add({RuleOp::kTransposeLast2, {w2}, {hf + "feed_forward.experts.down_proj"}});
  rules.rename({layer_key(layer, "moe.router.gate.weight"), {experts, dim}},
               hf + "feed_forward.router.weight");
  rules.swiglu(layer_key(layer, "moe.shared_experts."), hf + "feed_forward.shared_expert.",
               config.get_int("shared_experts_hidden_dim"), dim);
}

// Native block order: attention (qkv, wo), moe | feed_forward, attention_norm, ffn_norm.
void llama4_rules(const ModelConfig& config, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const bool multimodal = hf_key_layout(config) == kMultimodalLayout;
  const std::string hf_root = multimodal ? "language_model." : "";
  const std::string hf_model = hf_root + "model.";
  const RuleBuilder::Attention attention{n_heads, config.get_int("n_kv_heads"), head_dim,
                                         dim,     config.get_bool("fused_qkv"), false};
  rules.embeddings(hf_model, vocab, dim);
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix(hf_model, layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename({layer_key(layer, "attention.wo.weight"), {dim, n_heads * head_dim}},
                 hf + "self_attn.o_proj.weight");
    if (llama4_is_moe_layer(config, layer))
      llama4_moe_rules(config, layer, hf, rules);
    else
      rules.swiglu(layer_key(layer, "feed_forward."), hf + "feed_forward.",
                   config.get_int("hidden_dim"), dim);
    rules.layer_norms(layer, hf, dim);
  }
  rules.final_norm_and_output(hf_model, hf_root + "lm_head.weight", false, vocab, dim);
  // Hub checkpoints of Llama4ForConditionalGeneration also hold the vision tower and the
  // projector, which the text model neither has nor needs.
  rules.ignore_hf(R"(vision_model\..*)");
  rules.ignore_hf(R"(multi_modal_projector\..*)");
}

using enum FieldType;
using enum FieldEffect;

// The config fields config.json carries (text_config of a Llama4ForConditionalGeneration
// repository). interleave_moe_layer_step decides which layers hold experts.
const std::vector<HfBinding>& llama4_bindings() {
  static const std::vector<HfBinding> bindings = {
      {"vocab_size", "vocab_size"},
      {"dim", "hidden_size"},
      {"moe_hidden_dim", "intermediate_size"},
      {"hidden_dim", "intermediate_size_mlp"},
      {"n_layers", "num_hidden_layers"},
      {"n_heads", "num_attention_heads"},
      {"n_kv_heads", "num_key_value_heads"},
      {"head_dim", "head_dim"},
      {"num_experts", "num_local_experts"},
      {"interleave_moe_layer_step", "interleave_moe_layer_step"},
      {"top_k", "num_experts_per_tok", kInt, kMetadata},
      {"norm_eps", "rms_norm_eps", kDouble, kMetadata},
      {"rope_theta", "rope_theta", kDouble, kMetadata},
      {"max_seq_len", "max_position_embeddings", kInt, kMetadata},
      {"fixed_attn_block_size", "attention_chunk_size", kInt, kMetadata},
  };
  return bindings;
}

// The text-only Llama4ForCausalLM config, in both key layouts: transformers loads either
// strictly into Llama4ForCausalLM, whereas a Llama4ForConditionalGeneration config would
// require the vision tower the text model does not have; torchtitan models neither the L2 qk norm
// nor attention temperature tuning, so both are off.
nlohmann::json llama4_hf_config(const ModelConfig& config) {
  const int64_t n_layers = config.get_int("n_layers");
  nlohmann::json moe_layers = nlohmann::json::array();
  nlohmann::json no_rope_layers = nlohmann::json::array();
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    if (llama4_is_moe_layer(config, layer)) moe_layers.push_back(layer);
    // HF's no_rope_layers holds 1 where RoPE is used; torchtitan drops RoPE on i % n == 0
    // (HF's own default would be (i + 1) % n == 0), so the list is written out explicitly.
    no_rope_layers.push_back(layer % config.get_int("every_n_layers_nope") == 0 ? 0 : 1);
  }
  nlohmann::json hf_config = write_hf_bindings(llama4_bindings(), config);
  hf_config.update({
      {"architectures", {"Llama4ForCausalLM"}},
      {"model_type", "llama4_text"},
      {"hidden_act", "silu"},
      {"rope_scaling", hf_llama3_rope_scaling(config)},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"moe_layers", moe_layers},
      {"no_rope_layers", no_rope_layers},
      {"use_qk_norm", false},
      {"attn_temperature_tuning", false},
      {"floor_scale", 8192},
      {"attn_scale", 0.1},
      {"router_aux_loss_coef", 0.001},
      {"router_jitter_noise", 0.0},
      {"output_router_logits", false},
  });
  return hf_config;
}

}  // namespace

Family llama4_family() {
  return {"llama4",
          derive_llama4_fields,
          llama4_rules,
          llama4_hf_config,
          llama4_bindings(),
          {"llama4", "llama4_text"},
          {"Llama4ForConditionalGeneration", "Llama4ForCausalLM"}};
}

}  // namespace ckconv
