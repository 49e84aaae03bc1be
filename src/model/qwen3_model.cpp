// qwen3 dense, fused-QKV and MoE native layout (spec/adapters.md §6.1-6.2). A flavor is MoE
// when num_experts > 0; then every layer is MoE, with no shared experts.
#include "core/error.h"
#include "model/native_layout.h"

namespace ckconv {

void derive_qwen3_fields(ModelConfig& config) {
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t n_kv_heads = config.get_int("n_kv_heads");
  if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    fail(ErrorKind::kUsage, "qwen3: n_heads must be a positive multiple of n_kv_heads");
}

std::vector<ExpectedTensor> qwen3_native_tensors(const ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t q_rows = config.get_int("n_heads") * head_dim;
  const int64_t kv_rows = config.get_int("n_kv_heads") * head_dim;
  const int64_t experts = config.get_int("num_experts");
  std::vector<ExpectedTensor> tensors = {{"tok_embeddings.weight", {vocab, dim}}};
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    add_gqa_attention(tensors, layer, config.get_bool("fused_qkv"), q_rows, kv_rows, dim);
    tensors.push_back({layer_key(layer, "attention.q_norm.weight"), {head_dim}});
    tensors.push_back({layer_key(layer, "attention.k_norm.weight"), {head_dim}});
    if (experts > 0) {
      const int64_t hidden = config.get_int("moe_hidden_dim");
      if (config.get_optional_double("load_balance_coeff"))
        tensors.push_back({layer_key(layer, "moe.expert_bias_E"), {experts}, true});
      add_grouped_experts(tensors, layer, experts, hidden, dim);
      tensors.push_back({layer_key(layer, "moe.router.gate.weight"), {experts, dim}});
    } else {
      add_swiglu(tensors, layer_key(layer, "feed_forward."), config.get_int("hidden_dim"), dim);
    }
    add_layer_norms(tensors, layer, dim);
  }
  tensors.push_back({"norm.weight", {dim}});
  tensors.push_back({"lm_head.weight", {vocab, dim}});
  return tensors;
}

}  // namespace ckconv
