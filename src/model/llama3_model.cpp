// llama3 native layout (spec/adapters.md §2.1-2.2).
#include "core/error.h"
#include "model/native_layout.h"

namespace ckconv {

void derive_llama3_fields(ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t n_heads = config.get_int("n_heads");
  if (n_heads <= 0 || dim <= 0) fail(ErrorKind::kUsage, "llama3: dim and n_heads must be positive");
  if (!config.get_optional_int("n_kv_heads")) config.set("n_kv_heads", n_heads);
  if (!config.get_optional_int("head_dim")) config.set("head_dim", dim / n_heads);
  if (!config.get_optional_int("hidden_dim"))
    config.set("hidden_dim", compute_ffn_hidden_dim(dim, config.get_int("multiple_of"),
                                                    config.get_optional_double("ffn_dim_multiplier")));
  if (n_heads % config.get_int("n_kv_heads") != 0)
    fail(ErrorKind::kUsage, "llama3: n_heads must be a multiple of n_kv_heads");
}

std::vector<ExpectedTensor> llama3_native_tensors(const ModelConfig& config) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const int64_t head_dim = config.get_int("head_dim");
  const int64_t q_rows = config.get_int("n_heads") * head_dim;
  const int64_t kv_rows = config.get_int("n_kv_heads") * head_dim;
  const int64_t hidden = config.get_int("hidden_dim");
  std::vector<ExpectedTensor> tensors = {{"tok_embeddings.weight", {vocab, dim}}};
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    add_gqa_attention(tensors, layer, config.get_bool("fused_qkv"), q_rows, kv_rows, dim);
    add_swiglu(tensors, layer_key(layer, "feed_forward."), hidden, dim);
    add_layer_norms(tensors, layer, dim);
  }
  tensors.push_back({"norm.weight", {dim}});
  tensors.push_back({"lm_head.weight", {vocab, dim}});
  return tensors;
}

}  // namespace ckconv
