// gpt_oss (torchtitan models/gpt_oss, transformers GptOssForCausalLM): attention with sinks
// and q/k/v/o biases, then an MoE block on every layer (grouped experts with biases, router
// with bias, no shared experts). Renames only (both sides use rotate-half RoPE);
// expert_bias_E has no HF counterpart. The expert weights take one of two HF layouts (config
// field hf_expert_layout): torchtitan's to_hf output, dense [E, out, in] tensors under the
// MXFP4 checkpoint names *_blocks, or transformers' own unquantized layout, gate_up_proj
// [E, D, 2F] / down_proj [E, F, D] (the last two dims transposed), which GptOssForCausalLM
// loads.
#include "core/error.h"
#include "families/rule_builder.h"

namespace ckconv {
namespace {

void derive_gpt_oss_fields(ModelConfig& config) {
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    fail(ErrorKind::kUsage, "gpt_oss: n_heads must be a positive multiple of n_kv_heads");
  for (const char* field : {"dim", "head_dim", "moe_hidden_dim", "num_experts", "top_k"})
    if (config.get_int(field) <= 0)
      fail(ErrorKind::kUsage, std::string("gpt_oss: ") + field + " must be positive");
  const nlohmann::json layout = config.fields().value("hf_expert_layout", nlohmann::json());
  if (layout != "torchtitan" && layout != "transformers")
    fail(ErrorKind::kUsage,
         "gpt_oss: hf_expert_layout must be \"torchtitan\" or \"transformers\", found " +
             layout.dump());
}

// layers.{i}.moe: the expert_bias_E buffer, then experts (mlp1 weight and bias, mlp2 weight
// and bias), router.
void gpt_oss_moe_rules(const ModelConfig& config, int64_t layer, const std::string& hf,
                       RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t experts = config.get_int("num_experts");
  const int64_t hidden = config.get_int("moe_hidden_dim");
  if (config.get_optional_double("load_balance_coeff"))
    rules.dropped_zeros({layer_key(layer, "moe.expert_bias_E"), {experts}, true},
                        "HF GPT-OSS routers have no expert bias buffer");
  const NativeTensor mlp1_weight{layer_key(layer, "moe.experts.mlp1_weight_EGD"),
                                 {experts, 2 * hidden, dim}};
  const NativeTensor mlp1_bias{layer_key(layer, "moe.experts.mlp1_bias_EG"), {experts, 2 * hidden}};
  const NativeTensor mlp2_weight{layer_key(layer, "moe.experts.mlp2_weight_EDF"),
                                 {experts, dim, hidden}};
  const NativeTensor mlp2_bias{layer_key(layer, "moe.experts.mlp2_bias_ED"), {experts, dim}};
  // torchtitan registers each weight before its bias; the rules take both weights first.
  rules.declare_native_order({mlp1_weight.name, mlp1_bias.name, mlp2_weight.name, mlp2_bias.name});
  if (config.fields().value("hf_expert_layout", "") == "transformers") {
    rules.add({RuleOp::kTransposeLast2, {mlp1_weight}, {hf + "mlp.experts.gate_up_proj"}});
    rules.add({RuleOp::kTransposeLast2, {mlp2_weight}, {hf + "mlp.experts.down_proj"}});
  } else {
    rules.rename(mlp1_weight, hf + "mlp.experts.gate_up_proj_blocks");
    rules.rename(mlp2_weight, hf + "mlp.experts.down_proj_blocks");
  }
  rules.rename(mlp1_bias, hf + "mlp.experts.gate_up_proj_bias");
  rules.rename(mlp2_bias, hf + "mlp.experts.down_proj_bias");
  rules.rename({layer_key(layer, "moe.router.gate.weight"), {experts, dim}},
               hf + "mlp.router.weight");
  rules.rename({layer_key(layer, "moe.router.gate.bias"), {experts}}, hf + "mlp.router.bias");
}

// Native block order: attention (its own `sinks` parameter before its children),
// attention_norm, ffn_norm, moe.
void gpt_oss_rules(const ModelConfig& config, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const RuleBuilder::Attention attention{n_heads, config.get_int("n_kv_heads"), head_dim,
                                         dim,     config.get_bool("fused_qkv"), false,
                                         true};
  rules.embeddings("model.", vocab, dim);
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rules.rename({layer_key(layer, "attention.sinks"), {n_heads}}, hf + "self_attn.sinks");
    rules.attention_qkv(layer, hf, attention);
    rules.rename({layer_key(layer, "attention.wo.weight"), {dim, n_heads * head_dim}},
                 hf + "self_attn.o_proj.weight");
    rules.rename({layer_key(layer, "attention.wo.bias"), {dim}}, hf + "self_attn.o_proj.bias");
    rules.layer_norms(layer, hf, dim);
    gpt_oss_moe_rules(config, layer, hf, rules);
  }
  rules.final_norm_and_output("model.", "lm_head.weight", false, vocab, dim);
}

using enum FieldType;
using enum FieldEffect;

// The config fields config.json carries.
const std::vector<HfBinding>& gpt_oss_bindings() {
  static const std::vector<HfBinding> bindings = {
      {"vocab_size", "vocab_size"},
      {"dim", "hidden_size"},
      {"moe_hidden_dim", "intermediate_size"},
      {"n_layers", "num_hidden_layers"},
      {"n_heads", "num_attention_heads"},
      {"n_kv_heads", "num_key_value_heads"},
      {"head_dim", "head_dim"},
      {"num_experts", "num_local_experts"},
      {"top_k", "num_experts_per_tok", kInt, kMetadata},
      {"norm_eps", "rms_norm_eps", kDouble, kMetadata},
      {"rope_theta", "rope_theta", kDouble, kMetadata},
      {"max_seq_len", "max_position_embeddings", kInt, kMetadata},
      {"sliding_window_size", "sliding_window", kInt, kMetadata},
      {"swiglu_limit", "swiglu_limit", kDouble, kMetadata},
  };
  return bindings;
}

// torchtitan's YaRN beta_fast/beta_slow are named the other way round from HF's.
nlohmann::json gpt_oss_hf_config(const ModelConfig& config) {
  nlohmann::json layer_types = nlohmann::json::array();
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer)
    layer_types.push_back(layer % 2 == 0 ? "sliding_attention" : "full_attention");
  nlohmann::json hf_config = write_hf_bindings(gpt_oss_bindings(), config);
  hf_config.update({
      {"architectures", {"GptOssForCausalLM"}},
      {"model_type", "gpt_oss"},
      {"hidden_act", "silu"},
      {"rope_scaling",
       {{"rope_type", "yarn"},
        {"factor", config.get_double("rope_factor")},
        {"beta_fast", config.get_double("rope_beta_slow")},
        {"beta_slow", config.get_double("rope_beta_fast")},
        {"truncate", false},
        {"original_max_position_embeddings", config.get_int("rope_original_seq_len")}}},
      {"initial_context_length", config.get_int("rope_original_seq_len")},
      {"tie_word_embeddings", false},
      {"attention_bias", true},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"layer_types", layer_types},
      {"router_aux_loss_coef", 0.9},
      {"output_router_logits", false},
  });
  return hf_config;
}

}  // namespace

Family gpt_oss_family() {
  return {"gpt_oss",          derive_gpt_oss_fields, gpt_oss_rules,        gpt_oss_hf_config,
          gpt_oss_bindings(), {"gpt_oss"},           {"GptOssForCausalLM"}};
}

}  // namespace ckconv
