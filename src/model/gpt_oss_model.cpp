// gpt_oss native layout (spec/adapters.md §4.1-4.2): attention with sinks and q/k/v/o biases,
// then an MoE block on every layer (grouped experts with biases, router with bias, no
// shared experts).
#include "core/error.h"
#include "model/native_layout.h"

namespace ckconv {

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

std::vector<ExpectedTensor> gpt_oss_native_tensors(const ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t q_rows = n_heads * head_dim;
  const int64_t kv_rows = config.get_int("n_kv_heads") * head_dim;
  const int64_t experts = config.get_int("num_experts");
  const int64_t hidden = config.get_int("moe_hidden_dim");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  std::vector<ExpectedTensor> tensors = {{"tok_embeddings.weight", {vocab, dim}}};
  // Block order: attention (its own `sinks` parameter before its children), attention_norm,
  // ffn_norm, moe (the expert_bias_E buffer before its children).
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    tensors.push_back({layer_key(layer, "attention.sinks"), {n_heads}});
    if (config.get_bool("fused_qkv")) {
      tensors.push_back(
          {layer_key(layer, "attention.qkv_linear.wqkv.weight"), {q_rows + 2 * kv_rows, dim}});
      tensors.push_back(
          {layer_key(layer, "attention.qkv_linear.wqkv.bias"), {q_rows + 2 * kv_rows}});
    } else {
      tensors.push_back({layer_key(layer, "attention.qkv_linear.wq.weight"), {q_rows, dim}});
      tensors.push_back({layer_key(layer, "attention.qkv_linear.wq.bias"), {q_rows}});
      tensors.push_back({layer_key(layer, "attention.qkv_linear.wk.weight"), {kv_rows, dim}});
      tensors.push_back({layer_key(layer, "attention.qkv_linear.wk.bias"), {kv_rows}});
      tensors.push_back({layer_key(layer, "attention.qkv_linear.wv.weight"), {kv_rows, dim}});
      tensors.push_back({layer_key(layer, "attention.qkv_linear.wv.bias"), {kv_rows}});
    }
    tensors.push_back({layer_key(layer, "attention.wo.weight"), {dim, q_rows}});
    tensors.push_back({layer_key(layer, "attention.wo.bias"), {dim}});
    add_layer_norms(tensors, layer, dim);
    if (load_balance) tensors.push_back({layer_key(layer, "moe.expert_bias_E"), {experts}, true});
    tensors.push_back(
        {layer_key(layer, "moe.experts.mlp1_weight_EGD"), {experts, 2 * hidden, dim}});
    tensors.push_back({layer_key(layer, "moe.experts.mlp1_bias_EG"), {experts, 2 * hidden}});
    tensors.push_back({layer_key(layer, "moe.experts.mlp2_weight_EDF"), {experts, dim, hidden}});
    tensors.push_back({layer_key(layer, "moe.experts.mlp2_bias_ED"), {experts, dim}});
    tensors.push_back({layer_key(layer, "moe.router.gate.weight"), {experts, dim}});
    tensors.push_back({layer_key(layer, "moe.router.gate.bias"), {experts}});
  }
  tensors.push_back({"norm.weight", {dim}});
  tensors.push_back({"lm_head.weight", {vocab, dim}});
  return tensors;
}

}  // namespace ckconv
