#include "families/native_detection.h"

#include <algorithm>
#include <map>

namespace ckconv {
namespace {

bool has_suffix(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

using Names = std::vector<std::string>;

// One tensor's names (suffixes) in every native scheme (families/native_scheme.h): v0.1 and
// v0.2 without the dimension tag, 2026-06 with it (and a fused w13), 2026-08 under
// routed_experts.inner_experts (which the experts.* suffixes match too). Each extent read
// below is the same dimension under every name.
const Names kExpertBias = {"moe.expert_bias_E", "moe.expert_bias"};
// Expert w1 [E, F, D] or fused w13 [E, F, 2, D]: dimension 1 is the expert hidden size.
const Names kExpertW1 = {"experts.w1_EFD", "experts.w1", "experts.w13"};
// gpt_oss mlp1 bias [E, 2F].
const Names kExpertMlp1Bias = {"experts.mlp1_bias_EG", "experts.mlp1_bias"};
// Dense SwiGLU w1 [F, D] or fused w13 [F, 2, D]: dimension 0 is the hidden size.
const Names kDenseW1 = {"feed_forward.w1.weight", "feed_forward.w13.weight"};
const Names kSharedW1 = {"moe.shared_experts.w1.weight", "moe.shared_experts.w13.weight"};
// The output projection: lm_head (2026) or output (v0.2).
const Names kHead = {"lm_head.weight", "output.weight"};

// The catalog by transformer block ("layers.N."), for suffix lookups that do not depend on
// the exact prefix a torchtitan generation gives a module.
class CatalogKeys {
 public:
  explicit CatalogKeys(const Catalog& catalog) : catalog_(catalog) {
    for (const CatalogTensor& tensor : catalog.tensors) {
      if (tensor.name.rfind("layers.", 0) != 0) continue;
      const size_t end = tensor.name.find('.', 7);
      const std::string index = tensor.name.substr(7, end == std::string::npos ? 0 : end - 7);
      if (index.empty() || index.size() > 9 ||
          !std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      by_layer_[std::stoll(index)].push_back(&tensor);
    }
  }
  int64_t layers() const { return by_layer_.empty() ? 0 : by_layer_.rbegin()->first + 1; }
  // 1 + the highest j of the keys "mtp_layers.{j}.*" (torchtitan 2026-08's MTP blocks), or 0.
  int64_t mtp_layers() const {
    int64_t count = 0;
    const std::string prefix = "mtp_layers.";
    for (const CatalogTensor& tensor : catalog_.tensors) {
      if (tensor.name.rfind(prefix, 0) != 0) continue;
      const size_t end = tensor.name.find('.', prefix.size());
      const std::string index = tensor.name.substr(prefix.size(), end - prefix.size());
      if (end == std::string::npos || index.empty() || index.size() > 9 ||
          !std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; }))
        continue;
      count = std::max<int64_t>(count, std::stoll(index) + 1);
    }
    return count;
  }
  const CatalogTensor* find(const std::string& name) const { return catalog_.find(name); }
  const CatalogTensor* in_layer(int64_t layer, const std::string& suffix) const {
    auto found = by_layer_.find(layer);
    if (found == by_layer_.end()) return nullptr;
    for (const CatalogTensor* tensor : found->second)
      if (has_suffix(tensor->name, suffix)) return tensor;
    return nullptr;
  }
  // The first tensor of the layer ending in one of `suffixes` (the names torchtitan's
  // generations give one tensor), tried in order.
  const CatalogTensor* in_layer(int64_t layer, const Names& suffixes) const {
    for (const std::string& suffix : suffixes)
      if (const CatalogTensor* tensor = in_layer(layer, suffix)) return tensor;
    return nullptr;
  }
  bool any(const std::string& suffix) const { return first_layer_with(suffix).has_value(); }
  bool any(const Names& suffixes) const {
    return std::any_of(suffixes.begin(), suffixes.end(),
                       [&](const std::string& suffix) { return any(suffix); });
  }
  std::optional<int64_t> first_layer_with(const std::string& suffix) const {
    for (const auto& [layer, tensors] : by_layer_)
      if (in_layer(layer, suffix)) return layer;
    return std::nullopt;
  }
  std::optional<int64_t> first_layer_with(const Names& suffixes) const {
    for (const auto& [layer, tensors] : by_layer_)
      if (in_layer(layer, suffixes)) return layer;
    return std::nullopt;
  }

 private:
  const Catalog& catalog_;
  std::map<int64_t, std::vector<const CatalogTensor*>> by_layer_;
};

// Dimension `index` of `tensor`, or 0 when there is no such tensor or dimension.
int64_t extent(const CatalogTensor* tensor, size_t index) {
  return tensor && tensor->shape.size() > index ? tensor->shape[index] : 0;
}

std::string family_of_keys(const CatalogKeys& keys) {
  if (!keys.find("tok_embeddings.weight") && keys.layers() == 0) return "";
  if (keys.any("attention.sinks")) return "gpt_oss";
  if (keys.any("attention.wkv_a.weight")) return "deepseek_v3";
  if (keys.any("attention.q_norm.weight")) return "qwen3";
  if (keys.any("moe.router.gate.weight")) return "llama4";
  if (keys.any("wq.weight") || keys.any("wqkv.weight")) return "llama3";
  return "";
}

void set_if_positive(nlohmann::json& fields, const char* field, int64_t value) {
  if (value > 0) fields[field] = value;
}

void detect_common(const CatalogKeys& keys, DetectedModel& out) {
  const CatalogTensor* embeddings = keys.find("tok_embeddings.weight");
  set_if_positive(out.fields, "vocab_size", extent(embeddings, 0));
  set_if_positive(out.fields, "dim", extent(embeddings, 1));
  set_if_positive(out.fields, "n_layers", keys.layers());
}

// q and kv widths of layer 0 (separate wq/wk/wv or a fused wqkv) and fused_qkv.
void detect_attention_widths(const CatalogKeys& keys, DetectedModel& out) {
  const CatalogTensor* fused = keys.in_layer(0, "attention.qkv_linear.wqkv.weight");
  if (!fused) fused = keys.in_layer(0, ".wqkv.weight");
  const CatalogTensor* wq = keys.in_layer(0, ".wq.weight");
  const CatalogTensor* wk = keys.in_layer(0, ".wk.weight");
  out.q_width = wq ? extent(wq, 0) : extent(keys.in_layer(0, "attention.wo.weight"), 1);
  out.kv_width = wk ? extent(wk, 0) : (fused ? (extent(fused, 0) - out.q_width) / 2 : 0);
  if (fused || wq) out.fields["fused_qkv"] = fused != nullptr;
}

void detect_tying(const CatalogKeys& keys, const SameTensorData& same_data, DetectedModel& out) {
  const CatalogTensor* output = keys.find(kHead[0]);
  if (!output) output = keys.find(kHead[1]);
  const CatalogTensor* embeddings = keys.find("tok_embeddings.weight");
  if (!output || !embeddings) return;
  out.fields["enable_weight_tying"] = output->shape == embeddings->shape &&
                                      output->dtype == embeddings->dtype && same_data &&
                                      same_data(*output, *embeddings);
}

// Head counts read from a head_dim the shapes show (qwen3 q_norm) or an n_heads (gpt_oss).
void heads_from(DetectedModel& out, int64_t n_heads, int64_t head_dim) {
  if (n_heads <= 0 && head_dim > 0 && out.q_width % head_dim == 0) n_heads = out.q_width / head_dim;
  if (n_heads <= 0) return;
  if (std::optional<nlohmann::json> heads = head_fields(out, n_heads)) out.fields.update(*heads);
}

// The MoE fields of the first MoE layer; `expert_hidden_suffix` names the tensor whose
// dimension 1 is the expert hidden size.
std::optional<int64_t> detect_experts(const CatalogKeys& keys, DetectedModel& out) {
  const std::optional<int64_t> layer = keys.first_layer_with("moe.router.gate.weight");
  if (!layer) return std::nullopt;
  set_if_positive(out.fields, "num_experts",
                  extent(keys.in_layer(*layer, "moe.router.gate.weight"), 0));
  if (!keys.any(kExpertBias)) out.fields["load_balance_coeff"] = nullptr;
  return layer;
}

void detect_llama(const CatalogKeys& keys, const SameTensorData& same_data, DetectedModel& out) {
  detect_attention_widths(keys, out);
  for (int64_t n = 1; n <= out.q_width; ++n)
    if (head_fields(out, n)) out.head_candidates.push_back(n);
  if (out.family == "llama3") {
    set_if_positive(out.fields, "hidden_dim", extent(keys.in_layer(0, kDenseW1), 0));
    detect_tying(keys, same_data, out);
    return;
  }
  const std::optional<int64_t> moe = detect_experts(keys, out);
  if (!moe) return;
  out.fields["interleave_moe_layer_step"] = *moe + 1;
  // torchtitan v0.1.0 stores the experts x @ W (w1 [E, D, F]) and the shared expert as one
  // such expert (moe.shared_expert.w1 [1, D, F]); its persistent tokens_per_expert tells it too.
  const CatalogTensor* x_at_w_shared = keys.in_layer(*moe, "moe.shared_expert.w1");
  if (x_at_w_shared || keys.any("moe.tokens_per_expert")) {
    set_if_positive(out.fields, "moe_hidden_dim", extent(keys.in_layer(*moe, kExpertW1), 2));
    set_if_positive(out.fields, "shared_experts_hidden_dim", extent(x_at_w_shared, 2));
  } else {
    set_if_positive(out.fields, "moe_hidden_dim", extent(keys.in_layer(*moe, kExpertW1), 1));
    set_if_positive(out.fields, "shared_experts_hidden_dim",
                    extent(keys.in_layer(*moe, kSharedW1), 0));
  }
  if (const std::optional<int64_t> dense = keys.first_layer_with(kDenseW1))
    set_if_positive(out.fields, "hidden_dim", extent(keys.in_layer(*dense, kDenseW1), 0));
}

void detect_qwen3(const CatalogKeys& keys, const SameTensorData& same_data, DetectedModel& out) {
  detect_attention_widths(keys, out);
  heads_from(out, 0, extent(keys.in_layer(0, "attention.q_norm.weight"), 0));
  detect_tying(keys, same_data, out);
  if (const std::optional<int64_t> moe = detect_experts(keys, out)) {
    set_if_positive(out.fields, "moe_hidden_dim", extent(keys.in_layer(*moe, kExpertW1), 1));
  } else {
    out.fields["num_experts"] = 0;
    set_if_positive(out.fields, "hidden_dim", extent(keys.in_layer(0, kDenseW1), 0));
  }
}

void detect_gpt_oss(const CatalogKeys& keys, DetectedModel& out) {
  detect_attention_widths(keys, out);
  heads_from(out, extent(keys.in_layer(0, "attention.sinks"), 0), 0);
  if (const std::optional<int64_t> moe = detect_experts(keys, out))
    set_if_positive(out.fields, "moe_hidden_dim",
                    extent(keys.in_layer(*moe, kExpertMlp1Bias), 1) / 2);
}

// MLA: wq (or wq_b) has n x (nope + rope) rows, wkv_b n x (nope + v), wo n x v columns, and
// wkv_a kv_lora_rank + rope rows, which together give n, nope, rope and v.
void detect_deepseek_v3(const CatalogKeys& keys, DetectedModel& out) {
  const int64_t kv_lora_rank = extent(keys.in_layer(0, "attention.kv_norm.weight"), 0);
  const int64_t rope = extent(keys.in_layer(0, "attention.wkv_a.weight"), 0) - kv_lora_rank;
  const CatalogTensor* wq_a = keys.in_layer(0, "attention.wq_a.weight");
  const CatalogTensor* wq =
      keys.in_layer(0, wq_a ? "attention.wq_b.weight" : "attention.wq.weight");
  const int64_t q_rows = extent(wq, 0), kv_rows = extent(keys.in_layer(0, "wkv_b.weight"), 0);
  const int64_t value_columns = extent(keys.in_layer(0, "attention.wo.weight"), 1);
  out.fields["q_lora_rank"] = extent(wq_a, 0);
  set_if_positive(out.fields, "kv_lora_rank", kv_lora_rank);
  if (rope > 0 && (q_rows - kv_rows + value_columns) % rope == 0) {
    const int64_t n = (q_rows - kv_rows + value_columns) / rope;
    if (n > 0 && value_columns % n == 0 && kv_rows % n == 0) {
      out.fields["n_heads"] = n;
      out.fields["qk_rope_head_dim"] = rope;
      out.fields["v_head_dim"] = value_columns / n;
      out.fields["qk_nope_head_dim"] = kv_rows / n - value_columns / n;
    }
  }
  int64_t dense = 0;
  while (dense < keys.layers() && keys.in_layer(dense, kDenseW1)) ++dense;
  out.fields["n_dense_layers"] = dense;
  out.fields["num_mtp_layers"] = keys.mtp_layers();
  if (dense > 0)
    set_if_positive(out.fields, "dense_hidden_dim", extent(keys.in_layer(0, kDenseW1), 0));
  const std::optional<int64_t> moe = detect_experts(keys, out);
  if (!moe) return;
  const int64_t expert_hidden = extent(keys.in_layer(*moe, kExpertW1), 1);
  set_if_positive(out.fields, "moe_hidden_dim", expert_hidden);
  const int64_t shared = extent(keys.in_layer(*moe, kSharedW1), 0);
  if (expert_hidden > 0 && shared % expert_hidden == 0)
    out.fields["num_shared_experts"] = shared / expert_hidden;
}

}  // namespace

std::optional<DetectedModel> detect_native_model(const Catalog& catalog,
                                                 const SameTensorData& same_data) {
  const CatalogKeys keys(catalog);
  DetectedModel out;
  out.family = family_of_keys(keys);
  if (out.family.empty()) return std::nullopt;
  detect_common(keys, out);
  if (out.family == "llama3" || out.family == "llama4")
    detect_llama(keys, same_data, out);
  else if (out.family == "qwen3")
    detect_qwen3(keys, same_data, out);
  else if (out.family == "gpt_oss")
    detect_gpt_oss(keys, out);
  else
    detect_deepseek_v3(keys, out);
  return out;
}

bool looks_like_hf(const Catalog& catalog) {
  return std::any_of(catalog.tensors.begin(), catalog.tensors.end(), [](const CatalogTensor& t) {
    return t.name.rfind("model.layers.", 0) == 0 || t.name.rfind("model.embed_tokens.", 0) == 0 ||
           t.name.rfind("language_model.model.", 0) == 0;
  });
}

std::optional<nlohmann::json> head_fields(const DetectedModel& detected, int64_t n_heads) {
  if (n_heads <= 0 || detected.q_width <= 0 || detected.q_width % n_heads != 0) return std::nullopt;
  const int64_t head_dim = detected.q_width / n_heads;
  // RoPE rotates pairs of a head's dimensions, so a head is an even number wide.
  if (head_dim % 2 != 0 || detected.kv_width <= 0 || detected.kv_width % head_dim != 0)
    return std::nullopt;
  const int64_t kv_heads = detected.kv_width / head_dim;
  if (n_heads % kv_heads != 0) return std::nullopt;
  return nlohmann::json{{"n_heads", n_heads}, {"n_kv_heads", kv_heads}, {"head_dim", head_dim}};
}

std::string describe_detected(const DetectedModel& detected, const nlohmann::json& config_fields) {
  nlohmann::json fields = config_fields;
  fields.update(detected.fields);
  auto number = [&](const char* field) {
    return fields.contains(field) && fields[field].is_number_integer()
               ? std::to_string(fields[field].get<int64_t>())
               : std::string("?");
  };
  std::string text =
      detected.family + ": dim " + number("dim") + ", " + number("n_layers") + " layers, ";
  if (detected.fields.contains("n_heads") || config_fields.contains("n_heads")) {
    text += number("n_heads") + "x" + number("head_dim") + " attention";
    if (fields.contains("n_kv_heads") && fields["n_kv_heads"] != fields["n_heads"])
      text += " (" + number("n_kv_heads") + " kv heads)";
  } else if (detected.q_width > 0) {
    text += "attention " + std::to_string(detected.q_width) + " wide (kv " +
            std::to_string(detected.kv_width) + ")";
  } else {
    text += "MLA attention";
  }
  text += ", vocab " + number("vocab_size");
  if (fields.contains("hidden_dim")) text += ", hidden " + number("hidden_dim");
  if (fields.value("num_experts", nlohmann::json(0)) != 0)
    text += ", " + number("num_experts") + " experts (hidden " + number("moe_hidden_dim") + ")";
  if (fields.value("fused_qkv", false)) text += ", fused QKV";
  if (fields.value("enable_weight_tying", false)) text += ", tied embeddings";
  return text;
}

}  // namespace ckconv
