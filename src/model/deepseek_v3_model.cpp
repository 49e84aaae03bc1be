// deepseek_v3 native layout (spec/adapters.md §5.1-5.2): multi-head latent attention (with or
// without a low-rank query), dense FFN on the first n_dense_layers layers, MoE with shared
// experts on the rest.
#include "core/error.h"
#include "model/native_layout.h"

namespace ckconv {

void derive_deepseek_v3_fields(ModelConfig& config) {
  for (const char* field :
       {"dim", "n_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
        "moe_hidden_dim", "num_experts", "top_k"})
    if (config.get_int(field) <= 0)
      fail(ErrorKind::kUsage, std::string("deepseek_v3: ") + field + " must be positive");
  for (const char* field : {"q_lora_rank", "n_dense_layers", "num_shared_experts"})
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

std::vector<ExpectedTensor> deepseek_v3_native_tensors(const ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t n_heads = config.get_int("n_heads");
  const int64_t q_lora_rank = config.get_int("q_lora_rank");
  const int64_t kv_lora_rank = config.get_int("kv_lora_rank");
  const int64_t nope = config.get_int("qk_nope_head_dim");
  const int64_t rope = config.get_int("qk_rope_head_dim");
  const int64_t value = config.get_int("v_head_dim");
  const int64_t dense_hidden = config.get_int("dense_hidden_dim");
  const int64_t experts = config.get_int("num_experts");
  const int64_t expert_hidden = config.get_int("moe_hidden_dim");
  const int64_t shared_hidden = expert_hidden * config.get_int("num_shared_experts");
  const bool load_balance = config.get_optional_double("load_balance_coeff").has_value();
  std::vector<ExpectedTensor> tensors = {{"tok_embeddings.weight", {vocab, dim}}};
  // Block order: attention, attention_norm, ffn_norm, moe | feed_forward.
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    if (q_lora_rank == 0) {
      tensors.push_back({layer_key(layer, "attention.wq.weight"), {n_heads * (nope + rope), dim}});
    } else {
      tensors.push_back({layer_key(layer, "attention.wq_a.weight"), {q_lora_rank, dim}});
      tensors.push_back({layer_key(layer, "attention.q_norm.weight"), {q_lora_rank}});
      tensors.push_back(
          {layer_key(layer, "attention.wq_b.weight"), {n_heads * (nope + rope), q_lora_rank}});
    }
    tensors.push_back({layer_key(layer, "attention.wkv_a.weight"), {kv_lora_rank + rope, dim}});
    tensors.push_back({layer_key(layer, "attention.kv_norm.weight"), {kv_lora_rank}});
    tensors.push_back(
        {layer_key(layer, "attention.wkv_b.weight"), {n_heads * (nope + value), kv_lora_rank}});
    tensors.push_back({layer_key(layer, "attention.wo.weight"), {dim, n_heads * value}});
    add_layer_norms(tensors, layer, dim);
    if (layer < config.get_int("n_dense_layers")) {
      add_swiglu(tensors, layer_key(layer, "feed_forward."), dense_hidden, dim);
      continue;
    }
    if (load_balance) tensors.push_back({layer_key(layer, "moe.expert_bias_E"), {experts}, true});
    add_grouped_experts(tensors, layer, experts, expert_hidden, dim);
    tensors.push_back({layer_key(layer, "moe.router.gate.weight"), {experts, dim}});
    if (shared_hidden > 0) {
      add_swiglu(tensors, layer_key(layer, "moe.shared_experts."), shared_hidden, dim);
    }
  }
  tensors.push_back({"norm.weight", {dim}});
  tensors.push_back({"lm_head.weight", {vocab, dim}});
  return tensors;
}

}  // namespace ckconv
