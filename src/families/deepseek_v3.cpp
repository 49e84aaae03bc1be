// deepseek_v3 (torchtitan models/deepseek_v3, transformers DeepseekV3ForCausalLM):
// multi-head latent attention (q_proj, or q_a_proj/q_a_layernorm/q_b_proj with a low-rank
// query), renames only (HF rope_interleave keeps torchtitan's interleaved RoPE layout), dense
// FFN on the first n_dense_layers layers, MoE with per-expert split of w1_EFD/w3_EFD/w2_EDF
// and shared experts on the rest; expert_bias_E <-> mlp.gate.e_score_correction_bias (it
// round-trips). The releases' multi-token-prediction layers model.layers.{n_layers + j}.*
// (config field hf_mtp_layers, set from the input's keys) are mapped as torchtitan's
// mtp_layers.{j}.* and, since this native scheme has no MTP layers, dropped by from_hf.
#include "core/error.h"
#include "families/hf_layout.h"
#include "families/rule_builder.h"

namespace ckconv {
namespace {

void derive_deepseek_v3_fields(ModelConfig& config) {
  for (const char* field :
       {"dim", "n_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
        "moe_hidden_dim", "num_experts", "top_k"})
    if (config.get_int(field) <= 0)
      fail(ErrorKind::kUsage, std::string("deepseek_v3: ") + field + " must be positive");
  for (const char* field :
       {"q_lora_rank", "n_dense_layers", "num_shared_experts", "num_mtp_layers"})
    if (config.get_int(field) < 0)
      fail(ErrorKind::kUsage, std::string("deepseek_v3: ") + field + " must not be negative");
  if (config.get_int("n_dense_layers") > 0 && config.get_int("dense_hidden_dim") <= 0)
    fail(ErrorKind::kUsage,
         "deepseek_v3: dense_hidden_dim must be positive when n_dense_layers > 0");
  const nlohmann::json score = config.fields().value("score_func", nlohmann::json());
  if (score != "softmax" && score != "sigmoid")
    fail(ErrorKind::kUsage,
         "deepseek_v3: score_func must be \"softmax\" or \"sigmoid\", found " + score.dump());
}

// {native}attention: wq (or wq_a, q_norm, wq_b), wkv_a, kv_norm, wkv_b, wo.
void deepseek_v3_attention_rules(const ModelConfig& config, const std::string& native,
                                 const std::string& hf, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t q_lora_rank = config.get_int("q_lora_rank");
  const int64_t kv_lora_rank = config.get_int("kv_lora_rank");
  const int64_t nope = config.get_int("qk_nope_head_dim");
  const int64_t rope = config.get_int("qk_rope_head_dim");
  const int64_t value = config.get_int("v_head_dim");
  const std::string attn = hf + "self_attn.";
  if (q_lora_rank == 0) {
    rules.rename({(native + "attention.wq.weight"), {n_heads * (nope + rope), dim}},
                 attn + "q_proj.weight");
  } else {
    rules.rename({(native + "attention.wq_a.weight"), {q_lora_rank, dim}},
                 attn + "q_a_proj.weight");
    rules.rename({(native + "attention.q_norm.weight"), {q_lora_rank}},
                 attn + "q_a_layernorm.weight");
    rules.rename({(native + "attention.wq_b.weight"), {n_heads * (nope + rope), q_lora_rank}},
                 attn + "q_b_proj.weight");
  }
  rules.rename({(native + "attention.wkv_a.weight"), {kv_lora_rank + rope, dim}},
               attn + "kv_a_proj_with_mqa.weight");
  rules.rename({(native + "attention.kv_norm.weight"), {kv_lora_rank}},
               attn + "kv_a_layernorm.weight");
  rules.rename({(native + "attention.wkv_b.weight"), {n_heads * (nope + value), kv_lora_rank}},
               attn + "kv_b_proj.weight");
  rules.rename({(native + "attention.wo.weight"), {dim, n_heads * value}}, attn + "o_proj.weight");
}

// The block under `native` ("layers.{i}." or "mtp_layers.{j}."): attention, attention_norm,
// ffn_norm, then an MoE or a dense FFN. MTP blocks register enorm, hnorm, eh_proj and
// mtp_norm between the norms and the FFN (torchtitan deepseek_v3/mtp.py).
void deepseek_v3_block_rules(const ModelConfig& config, const std::string& native,
                             const std::string& hf, bool moe, bool mtp, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t experts = config.get_int("num_experts");
  const int64_t expert_hidden = config.get_int("moe_hidden_dim");
  const int64_t shared_hidden = expert_hidden * config.get_int("num_shared_experts");
  deepseek_v3_attention_rules(config, native, hf, rules);
  rules.layer_norms(native, hf, dim);
  if (mtp) {
    rules.rename({native + "enorm.weight", {dim}}, hf + "enorm.weight");
    rules.rename({native + "hnorm.weight", {dim}}, hf + "hnorm.weight");
    rules.rename({native + "eh_proj.weight", {dim, 2 * dim}}, hf + "eh_proj.weight");
    rules.rename({native + "mtp_norm.weight", {dim}}, hf + "shared_head.norm.weight");
  }
  if (!moe) {
    rules.swiglu(native + "feed_forward.", hf + "mlp.", config.get_int("dense_hidden_dim"), dim);
    return;
  }
  if (config.get_optional_double("load_balance_coeff"))
    rules.rename({native + "moe.expert_bias_E", {experts}, true},
                 hf + "mlp.gate.e_score_correction_bias");
  rules.swiglu_experts(config, native, hf + "mlp.experts.", experts, expert_hidden, dim);
  rules.rename({native + "moe.router.gate.weight", {experts, dim}}, hf + "mlp.gate.weight");
  if (shared_hidden > 0)
    rules.swiglu(native + "moe.shared_experts.", hf + "mlp.shared_experts.", shared_hidden, dim);
}

// Multi-token-prediction block j (HF model.layers.{n_layers + j}), a copy of the last layer's
// block plus enorm, hnorm, eh_proj [D, 2D] and the head's norm, native keys mtp_layers.{j}.
std::vector<Rule> deepseek_v3_mtp_block(const ModelConfig& config, int64_t j) {
  const int64_t n_layers = config.get_int("n_layers");
  FamilyRules block;
  RuleBuilder rules(block);
  deepseek_v3_block_rules(config, "mtp_layers." + std::to_string(j) + ".",
                          hf_layer_prefix("model.", n_layers + j),
                          n_layers - 1 >= config.get_int("n_dense_layers"), true, rules);
  return block.rules;
}

// The release's stored copies of the embeddings and the output head in MTP layer j: neither
// torchtitan nor transformers keeps them, so from_hf drops them after checking they equal the
// main ones (never when they differ); to_hf writes none.
void deepseek_v3_mtp_copies(const ModelConfig& config, int64_t j, RuleBuilder& rules) {
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t dim = config.get_int("dim");
  const std::string hf = hf_layer_prefix("model.", config.get_int("n_layers") + j);
  rules.dropped_hf_copy(hf + "embed_tokens.weight", {vocab, dim}, "model.embed_tokens.weight",
                        "multi-token-prediction layer's copy of the embeddings, dropped");
  rules.dropped_hf_copy(hf + "shared_head.head.weight", {vocab, dim}, "lm_head.weight",
                        "multi-token-prediction layer's copy of the output head, dropped");
}

// Native order: tok_embeddings, layers, norm, lm_head, then the MTP blocks (num_mtp_layers,
// 0 in native schemes without MTP) as HF layers n_layers + j. MTP layers the HF input holds
// (hf_mtp_layers) that the native model has no place for are dropped by a named rule.
void deepseek_v3_rules(const ModelConfig& config, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t n_layers = config.get_int("n_layers");
  const int64_t n_dense = config.get_int("n_dense_layers");
  rules.embeddings("model.", vocab, dim);
  for (int64_t layer = 0; layer < n_layers; ++layer)
    deepseek_v3_block_rules(config, layer_key(layer, ""), hf_layer_prefix("model.", layer),
                            layer >= n_dense, false, rules);
  rules.final_norm_and_output("model.", "lm_head.weight", false, vocab, dim);
  const int64_t mtp_layers = config.get_int("num_mtp_layers");
  for (int64_t j = 0; j < mtp_layers; ++j) {
    for (Rule& rule : deepseek_v3_mtp_block(config, j)) rules.add(std::move(rule));
    deepseek_v3_mtp_copies(config, j, rules);
  }
  for (int64_t j = mtp_layers; j < hf_mtp_layers(config); ++j) {
    rules.dropped_hf(deepseek_v3_mtp_block(config, j),
                     "multi-token-prediction layer, dropped (the native model has no MTP layer " +
                         std::to_string(j) + ")");
    deepseek_v3_mtp_copies(config, j, rules);
  }
}

using enum FieldType;
using enum FieldEffect;

// num_nextn_predict_layers is written only for a model with MTP blocks (earlier outputs
// stay as they were).
bool deepseek_v3_has_mtp(const ModelConfig& config) {
  return config.get_int("num_mtp_layers") > 0;
}

// q_lora_rank 0 (a plain q_proj) is HF's null.
nlohmann::json q_lora_rank_to_hf(const nlohmann::json& value) {
  return value == 0 ? nlohmann::json(nullptr) : value;
}
nlohmann::json q_lora_rank_from_hf(const nlohmann::json& value) {
  return value.is_null() ? nlohmann::json(0) : value;
}

// The config fields config.json carries. first_k_dense_replace is the dense/MoE layer
// pattern; the MLA ranks and head dims shape every attention tensor.
const std::vector<HfBinding>& deepseek_v3_bindings() {
  static const std::vector<HfBinding> bindings = {
      {"vocab_size", "vocab_size"},
      {"dim", "hidden_size"},
      {"dense_hidden_dim", "intermediate_size"},
      {"moe_hidden_dim", "moe_intermediate_size"},
      {"n_layers", "num_hidden_layers"},
      {"n_heads", "num_attention_heads"},
      {"num_experts", "n_routed_experts"},
      {"num_shared_experts", "n_shared_experts"},
      {"n_dense_layers", "first_k_dense_replace"},
      {"q_lora_rank", "q_lora_rank", kInt, kBytes, nullptr, q_lora_rank_to_hf, q_lora_rank_from_hf},
      {"kv_lora_rank", "kv_lora_rank"},
      {"qk_nope_head_dim", "qk_nope_head_dim"},
      {"qk_rope_head_dim", "qk_rope_head_dim"},
      {"v_head_dim", "v_head_dim"},
      {"top_k", "num_experts_per_tok", kInt, kMetadata},
      {"norm_eps", "rms_norm_eps", kDouble, kMetadata},
      {"rope_theta", "rope_theta", kDouble, kMetadata},
      {"max_seq_len", "max_position_embeddings", kInt, kMetadata},
      {"score_func", "scoring_func", kString, kMetadata},
      {"route_norm", "norm_topk_prob", kBool, kMetadata},
      {"route_scale", "routed_scaling_factor", kDouble, kMetadata},
      // The HF side's MTP layers are read from its keys (hf_mtp_layers); this is how many the
      // native model keeps (0 in schemes without MTP, or with --drop-mtp), so a flavor without
      // MTP next to a config.json with it is no contradiction: config.json's count is used
      // unless --set says otherwise, and the layers are dropped where the scheme has none.
      {"num_mtp_layers", "num_nextn_predict_layers", kInt, kMetadata, deepseek_v3_has_mtp},
  };
  return bindings;
}

nlohmann::json deepseek_v3_hf_config(const ModelConfig& config) {
  const double mscale = config.get_double("mscale");
  const std::optional<int64_t> groups = config.get_optional_int("num_expert_groups");
  const std::optional<int64_t> limited_groups = config.get_optional_int("num_limited_groups");
  nlohmann::json hf_config = write_hf_bindings(deepseek_v3_bindings(), config);
  hf_config.update({
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"num_key_value_heads", config.get_int("n_heads")},
      {"head_dim", config.get_int("qk_rope_head_dim")},
      {"hidden_act", "silu"},
      {"rope_interleave", true},
      // YaRN with mscale = mscale_all_dim, as torchtitan computes its softmax scale.
      {"rope_scaling",
       {{"rope_type", "yarn"},
        {"factor", config.get_double("rope_factor")},
        {"beta_fast", config.get_double("rope_beta_fast")},
        {"beta_slow", config.get_double("rope_beta_slow")},
        {"mscale", mscale},
        {"mscale_all_dim", mscale},
        {"original_max_position_embeddings", config.get_int("rope_original_seq_len")}}},
      {"tie_word_embeddings", false},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"n_group", groups.value_or(1)},
      {"topk_group", limited_groups.value_or(1)},
  });
  return hf_config;
}

}  // namespace

Family deepseek_v3_family() {
  return {"deepseek_v3",
          derive_deepseek_v3_fields,
          deepseek_v3_rules,
          deepseek_v3_hf_config,
          deepseek_v3_bindings(),
          {"deepseek_v3"},
          {"DeepseekV3ForCausalLM"}};
}

}  // namespace ckconv
