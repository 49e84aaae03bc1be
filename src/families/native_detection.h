// What a native (torchtitan) checkpoint shows about its model: the family, from its key set,
// and every config field its tensor shapes determine (layers, dim, hidden dims, vocab,
// experts, attention widths, fused QKV, the expert-bias buffers, tying). The head count is
// read from shapes where a family's tensors show it (qwen3 q_norm, gpt_oss sinks, the
// deepseek_v3 MLA widths); llama3 and llama4 store q/k as [heads x head_dim, dim], which any
// split fits, so there detection lists the head counts the shapes allow.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "formats/catalog.h"

namespace ckconv {

struct DetectedModel {
  std::string family;
  // Config fields read from shapes, torchtitan names (e.g. {"dim": 256, "n_layers": 6}).
  nlohmann::json fields = nlohmann::json::object();
  // When `fields` lacks n_heads: the query and key/value widths (heads x head_dim) and the
  // n_heads values they allow (even head_dim, whole kv heads, n_heads a multiple of them).
  int64_t q_width = 0;
  int64_t kv_width = 0;
  std::vector<int64_t> head_candidates;
};

// Whether two tensors of the catalog hold the same bytes (used to tell a tied lm_head).
using SameTensorData = std::function<bool(const CatalogTensor&, const CatalogTensor&)>;

// The family the catalog's keys name and the fields its shapes show; nullopt when the keys
// are of no built-in family (e.g. an HF checkpoint). Missing tensors leave their fields out;
// the conversion's plan check names them.
std::optional<DetectedModel> detect_native_model(const Catalog& catalog,
                                                 const SameTensorData& same_data);

// Whether the catalog's keys are those of an HF (transformers) checkpoint.
bool looks_like_hf(const Catalog& catalog);

// n_heads, n_kv_heads and head_dim for `n_heads` given the widths of `detected`; nullopt when
// the widths do not split into that many heads.
std::optional<nlohmann::json> head_fields(const DetectedModel& detected, int64_t n_heads);

// "llama3: dim 256, 6 layers, 16x16 attention (8 kv heads), vocab 2048, hidden 768": what
// the checkpoint looks like, for messages. `config_fields` fills fields shapes cannot show.
std::string describe_detected(const DetectedModel& detected,
                              const nlohmann::json& config_fields = nlohmann::json::object());

}  // namespace ckconv
