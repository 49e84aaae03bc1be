#include "families/rule_builder.h"

#include "core/error.h"
#include "families/hf_layout.h"

namespace ckconv {

std::string layer_key(int64_t layer, const std::string& suffix) {
  return "layers." + std::to_string(layer) + "." + suffix;
}

std::string hf_layer_prefix(const std::string& hf_model, int64_t layer) {
  return hf_model + "layers." + std::to_string(layer) + ".";
}

int64_t compute_ffn_hidden_dim(int64_t dim, int64_t multiple_of, std::optional<double> multiplier) {
  // Python: int(2 * 4 * dim / 3); int(multiplier * h); multiple_of * ceil(h / multiple_of).
  int64_t hidden = static_cast<int64_t>(2.0 * 4.0 * static_cast<double>(dim) / 3.0);
  if (multiplier) hidden = static_cast<int64_t>(*multiplier * static_cast<double>(hidden));
  return multiple_of * ((hidden + multiple_of - 1) / multiple_of);
}

nlohmann::json hf_llama3_rope_scaling(const ModelConfig& config) {
  if (config.fields().value("rope_scaling", "") != "llama") return nullptr;
  return {{"rope_type", "llama3"},
          {"factor", config.get_double("rope_scaling_factor")},
          {"low_freq_factor", config.get_double("rope_low_freq_factor")},
          {"high_freq_factor", config.get_double("rope_high_freq_factor")},
          {"original_max_position_embeddings",
           config.get_int("rope_original_max_position_embeddings")}};
}

void RuleBuilder::add_to_native_order(const std::string& name) {
  if (ordered_.insert(name).second) table_.native_order.push_back(name);
}

void RuleBuilder::add(Rule rule) {
  for (const NativeTensor& tensor : rule.native) add_to_native_order(tensor.name);
  table_.rules.push_back(std::move(rule));
}

void RuleBuilder::rename(NativeTensor native, std::string hf) {
  add({RuleOp::kRename, {std::move(native)}, {std::move(hf)}});
}

void RuleBuilder::dropped_zeros(NativeTensor native, std::string reason) {
  Rule rule{RuleOp::kDroppedZeros, {std::move(native)}, {}};
  rule.reason = std::move(reason);
  add(std::move(rule));
}

void RuleBuilder::declare_native_order(const std::vector<std::string>& names) {
  for (const auto& name : names) add_to_native_order(name);
}

void RuleBuilder::ignore_hf(std::string pattern) {
  table_.hf_ignored_patterns.push_back(std::move(pattern));
}

void RuleBuilder::embeddings(const std::string& hf_model, int64_t vocab, int64_t dim) {
  rename({"tok_embeddings.weight", {vocab, dim}}, hf_model + "embed_tokens.weight");
}

void RuleBuilder::final_norm_and_output(const std::string& hf_model, const std::string& hf_lm_head,
                                        bool tied, int64_t vocab, int64_t dim) {
  rename({"norm.weight", {dim}}, hf_model + "norm.weight");
  const NativeTensor output{"lm_head.weight", {vocab, dim}};
  if (tied)
    add({RuleOp::kTied, {output}, {hf_model + "embed_tokens.weight"}});
  else
    rename(output, hf_lm_head);
}

void RuleBuilder::attention_qkv(int64_t layer, const std::string& hf_layer,
                                const Attention& attention) {
  const std::string native = layer_key(layer, "attention.qkv_linear.");
  const std::string hf = hf_layer + "self_attn.";
  const int64_t q_rows = attention.heads * attention.head_dim;
  const int64_t kv_rows = attention.kv_heads * attention.head_dim;
  std::vector<std::string> suffixes = {"weight"};
  if (attention.bias) suffixes.push_back("bias");
  auto shape = [&](int64_t rows, const std::string& suffix) {
    return suffix == "weight" ? Shape{rows, attention.dim} : Shape{rows};
  };
  // torchtitan registers each projection's weight, then its bias; the rules (and so the HF
  // output) take all weights first.
  if (attention.bias && !attention.fused)
    for (const char* projection : {"wq.", "wk.", "wv."})
      declare_native_order({native + projection + "weight", native + projection + "bias"});
  for (const std::string& suffix : suffixes) {
    const std::string q = hf + "q_proj." + suffix;
    const std::string k = hf + "k_proj." + suffix;
    const std::string v = hf + "v_proj." + suffix;
    if (attention.fused) {
      add({RuleOp::kFusedQkv,
           {{native + "wqkv." + suffix, shape(q_rows + 2 * kv_rows, suffix)}},
           {q, k, v},
           attention.heads,
           attention.kv_heads,
           attention.head_dim,
           attention.rope_permute});
      continue;
    }
    const NativeTensor wq{native + "wq." + suffix, shape(q_rows, suffix)};
    const NativeTensor wk{native + "wk." + suffix, shape(kv_rows, suffix)};
    if (attention.rope_permute) {
      add({RuleOp::kRopePermute, {wq}, {q}, attention.heads, 0, attention.head_dim});
      add({RuleOp::kRopePermute, {wk}, {k}, attention.kv_heads, 0, attention.head_dim});
    } else {
      rename(wq, q);
      rename(wk, k);
    }
    rename({native + "wv." + suffix, shape(kv_rows, suffix)}, v);
  }
}

void RuleBuilder::layer_norms(int64_t layer, const std::string& hf_layer, int64_t dim) {
  layer_norms(layer_key(layer, ""), hf_layer, dim);
}

void RuleBuilder::layer_norms(const std::string& native_layer, const std::string& hf_layer,
                              int64_t dim) {
  rename({native_layer + "attention_norm.weight", {dim}}, hf_layer + "input_layernorm.weight");
  rename({native_layer + "ffn_norm.weight", {dim}}, hf_layer + "post_attention_layernorm.weight");
}

void RuleBuilder::swiglu(const std::string& native, const std::string& hf, int64_t hidden,
                         int64_t dim) {
  rename({native + "w1.weight", {hidden, dim}}, hf + "gate_proj.weight");
  rename({native + "w2.weight", {dim, hidden}}, hf + "down_proj.weight");
  rename({native + "w3.weight", {hidden, dim}}, hf + "up_proj.weight");
}

void RuleBuilder::per_expert_swiglu(int64_t layer, const std::string& hf_experts, int64_t experts,
                                    int64_t hidden, int64_t dim) {
  per_expert_swiglu(layer_key(layer, ""), hf_experts, experts, hidden, dim);
}

void RuleBuilder::per_expert_swiglu(const std::string& native_layer, const std::string& hf_experts,
                                    int64_t experts, int64_t hidden, int64_t dim) {
  struct Projection {
    const char* native;
    const char* hf;
    Shape shape;
  };
  const Projection projections[] = {{"moe.experts.w1_EFD", "gate_proj", {experts, hidden, dim}},
                                    {"moe.experts.w2_EDF", "down_proj", {experts, dim, hidden}},
                                    {"moe.experts.w3_EFD", "up_proj", {experts, hidden, dim}}};
  for (const Projection& projection : projections) {
    Rule rule{RuleOp::kUnstackExperts, {{native_layer + projection.native, projection.shape}}, {}};
    for (int64_t e = 0; e < experts; ++e)
      rule.hf.push_back(hf_experts + std::to_string(e) + "." + projection.hf + ".weight");
    add(std::move(rule));
  }
}

void RuleBuilder::fused_swiglu_experts(const std::string& native_layer,
                                       const std::string& hf_experts, int64_t experts,
                                       int64_t hidden, int64_t dim) {
  const NativeTensor w1{native_layer + "moe.experts.w1_EFD", {experts, hidden, dim}};
  const NativeTensor w2{native_layer + "moe.experts.w2_EDF", {experts, dim, hidden}};
  const NativeTensor w3{native_layer + "moe.experts.w3_EFD", {experts, hidden, dim}};
  // Same native order as per_expert_swiglu; gate_up_proj takes w1 and w3 together.
  declare_native_order({w1.name, w2.name, w3.name});
  add({RuleOp::kConcatRows, {w1, w3}, {hf_experts + "gate_up_proj"}});
  rename(w2, hf_experts + "down_proj");
}

void RuleBuilder::swiglu_experts(const ModelConfig& config, int64_t layer,
                                 const std::string& hf_experts, int64_t experts, int64_t hidden,
                                 int64_t dim) {
  swiglu_experts(config, layer_key(layer, ""), hf_experts, experts, hidden, dim);
}

void RuleBuilder::swiglu_experts(const ModelConfig& config, const std::string& native_layer,
                                 const std::string& hf_experts, int64_t experts, int64_t hidden,
                                 int64_t dim) {
  if (hf_expert_layout(config) == kFusedExperts)
    fused_swiglu_experts(native_layer, hf_experts, experts, hidden, dim);
  else
    per_expert_swiglu(native_layer, hf_experts, experts, hidden, dim);
}

void RuleBuilder::dropped_hf(const std::vector<Rule>& rules, const std::string& reason) {
  for (const Rule& rule : rules) {
    std::vector<Shape> shapes;  // of each HF key, as the rule's to_hf writes it
    const Shape& first = rule.native.at(0).shape;
    if (rule.op == RuleOp::kRename) {
      shapes.push_back(first);
    } else if (rule.op == RuleOp::kUnstackExperts) {
      shapes.assign(rule.hf.size(), Shape(first.begin() + 1, first.end()));
    } else if (rule.op == RuleOp::kConcatRows) {
      Shape shape = first;
      shape[shape.size() - 2] = 0;
      for (const NativeTensor& part : rule.native)
        shape[shape.size() - 2] += part.shape[part.shape.size() - 2];
      shapes.push_back(shape);
    } else {
      fail(ErrorKind::kInternal, rule_op_name(rule.op) + " rules cannot be dropped on from_hf");
    }
    std::string natives;
    for (const NativeTensor& tensor : rule.native)
      natives += (natives.empty() ? "" : " + ") + tensor.name;
    for (size_t k = 0; k < rule.hf.size(); ++k) {
      Rule dropped{RuleOp::kDroppedHf, {}, {rule.hf[k]}};
      dropped.reason = reason + " (native " + natives + ")";
      dropped.hf_shape = shapes[k];
      add(std::move(dropped));
    }
  }
}

void RuleBuilder::dropped_hf_copy(const std::string& hf, Shape shape, const std::string& copy_of,
                                  const std::string& reason) {
  Rule rule{RuleOp::kDroppedHf, {}, {hf}};
  rule.reason = reason + " (equal to " + copy_of + ")";
  rule.hf_shape = std::move(shape);
  rule.equal_to = copy_of;
  add(std::move(rule));
}

}  // namespace ckconv
