// llama4 native layout (spec/adapters.md §3.1-3.2): GQA attention as llama3, then per layer
// either a dense FFN or (every interleave_moe_layer_step-th layer) an MoE block with grouped
// experts, a router and one shared expert.
#include "core/error.h"
#include "model/native_layout.h"

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

}  // namespace

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

std::vector<ExpectedTensor> llama4_native_tensors(const ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t q_rows = config.get_int("n_heads") * head_dim;
  const int64_t kv_rows = config.get_int("n_kv_heads") * head_dim;
  const int64_t dense_hidden = config.get_int("hidden_dim");
  const int64_t experts = config.get_int("num_experts");
  const int64_t expert_hidden = config.get_int("moe_hidden_dim");
  const int64_t shared_hidden = config.get_int("shared_experts_hidden_dim");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  std::vector<ExpectedTensor> tensors = {{"tok_embeddings.weight", {vocab, dim}}};
  // Block registration order: attention, moe | feed_forward, attention_norm, ffn_norm.
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    add_gqa_attention(tensors, layer, config.get_bool("fused_qkv"), q_rows, kv_rows, dim);
    if (llama4_is_moe_layer(config, layer)) {
      if (load_balance) tensors.push_back({layer_key(layer, "moe.expert_bias_E"), {experts}, true});
      add_grouped_experts(tensors, layer, experts, expert_hidden, dim);
      tensors.push_back({layer_key(layer, "moe.router.gate.weight"), {experts, dim}});
      add_swiglu(tensors, layer_key(layer, "moe.shared_experts."), shared_hidden, dim);
    } else {
      add_swiglu(tensors, layer_key(layer, "feed_forward."), dense_hidden, dim);
    }
    add_layer_norms(tensors, layer, dim);
  }
  tensors.push_back({"norm.weight", {dim}});
  tensors.push_back({"lm_head.weight", {vocab, dim}});
  return tensors;
}

}  // namespace ckconv
