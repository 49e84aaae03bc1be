// Model families. A family is three things: configs/<family>.json (flavors and defaults), one
// rule file src/families/<family>.cpp, and one row of the registry (families/registry.cpp).
// The rule table is the one place a family's tensors are spelled: each rule ties native
// (torchtitan) tensors, with their shapes, to HF keys through one operation of the layout
// algebra. The native key list, the HF key list, both conversion directions, the report lines
// and the verify exclusions are all derived from it (pipeline/plan, pipeline/rule_ops), so
// every rule is invertible by construction and the asymmetric cases are named rules too
// ("dropped on to_hf, zeros on from_hf", "tied", "ignored on from_hf").
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/shape.h"
#include "families/hf_config_bindings.h"
#include "model/model_config.h"

namespace ckconv {

// One tensor of torchtitan's `model.state_dict()`.
struct NativeTensor {
  std::string name;
  Shape shape;
  // Buffers torchtitan always keeps in float32 (MoE expert_bias_E); otherwise any float dtype.
  bool float32_only = false;
};

enum class RuleOp {
  kRename,            // native[0] <-> hf[0], bytes unchanged
  kRopePermute,       // native[0] <-> hf[0], RoPE rows interleaved <-> rotate-half, `heads` heads
  kFusedQkv,          // native[0] (fused wqkv) <-> hf q, k, v; RoPE-permuted when `permute`
  kUnstackExperts,    // native[0] [E, ...] <-> hf[e] [...] per expert, ascending integer e
  kTransposeLast2,    // native[0] [..., a, b] <-> hf[0] [..., b, a]; with `hf_shape` set, HF
                      // holds that reshape of it (same elements: a leading singleton dropped)
  kConcatTransposed,  // native[0..k] [..., a_k, b] <-> hf[0] = cat(native[k]^T, dim=-1)
  kConcatRows,        // native[0..k] [..., a_k, b] <-> hf[0] = cat(native[k], dim=-2)
  kConcatColumns,     // native[0..k] [..., b, a_k] <-> hf[0] = cat(native[k], dim=-1)
  kDroppedZeros,      // native[0] -> dropped on to_hf; from_hf re-creates it as float32 zeros
  kTied,              // native[0] (lm_head) -> omitted on to_hf (must equal the native tensor
                      // written as hf[0]); from_hf copies hf[0] (the embeddings)
  kFusedSwiglu,       // native[0] [batch..., F, 2, D] (w13) <-> hf = the batch's [F, D] part-0
                      // tensors (w1, gate), then their part-1 tensors (w3, up)
  kDroppedHf,         // hf[0] (`hf_shape`) -> consumed and dropped by from_hf when the input has
                      // it (must then equal HF tensor `equal_to` when set); nothing on to_hf.
                      // An HF-only tensor the native scheme has no place for (an MTP layer).
};

struct Rule {
  RuleOp op = RuleOp::kRename;
  std::vector<NativeTensor> native;
  std::vector<std::string> hf;
  int64_t heads = 0;       // kRopePermute: heads of this tensor; kFusedQkv: query heads
  int64_t kv_heads = 0;    // kFusedQkv
  int64_t head_dim = 0;    // kRopePermute, kFusedQkv
  bool permute = false;    // kFusedQkv
  std::string reason{};    // kDroppedZeros: why HF has no such tensor; kDroppedHf: why dropped
  Shape hf_shape{};        // kDroppedHf; kTransposeLast2 when HF reshapes the transpose
  std::string equal_to{};  // kDroppedHf: the HF tensor this one is a stored copy of
};

// A flavor's rule table, resolved from its config.
struct FamilyRules {
  std::string family;
  std::vector<Rule> rules;  // in HF output order
  // Every rule's native key once, in torchtitan's state_dict order (the order of native
  // outputs and of native input checks). RuleBuilder fills it in rule order unless a family
  // declares tensors ahead of the rules that consume them.
  std::vector<std::string> native_order;
  // HF keys that from_hf skips by name (e.g. rotary_emb.inv_freq): ECMAScript regexes.
  std::vector<std::string> hf_ignored_patterns;
  nlohmann::json hf_config;  // config.json for transformers, without torch_dtype
};

class RuleBuilder;

// One registry row.
struct Family {
  std::string name;
  // Fills fields derived from others (head_dim, hidden_dim, ...) when not set and checks the
  // values the rules rely on (kUsage).
  void (*derive_fields)(ModelConfig& config) = nullptr;
  void (*rules)(const ModelConfig& config, RuleBuilder& rules) = nullptr;
  // config.json: write_hf_bindings(hf_bindings) plus the family's constant and computed extras.
  nlohmann::json (*hf_config)(const ModelConfig& config) = nullptr;
  // The config fields config.json carries, both directions (families/hf_config_bindings.h).
  std::vector<HfBinding> hf_bindings{};
  // transformers model_type and architectures values that name this family.
  std::vector<std::string> hf_model_types{};
  std::vector<std::string> hf_architectures{};
};

// The built-in family named `name`; kUsage when this build has none.
const Family& find_family(const std::string& name);
std::vector<std::string> builtin_family_names();

// The rule table of `config`'s flavor: by the built-in family of config.family(), or `family`.
FamilyRules build_family_rules(const ModelConfig& config);
FamilyRules build_family_rules(const Family& family, const ModelConfig& config);

// `flavor` of the built-in family `family` (configs/<family>.json, or `config_file` in its
// place) with `overrides` and the derived fields. Unknown family, flavor or override field,
// or a bad value, is kUsage, listing what exists.
ModelConfig load_model_config(const std::string& family, const std::string& flavor,
                              const std::vector<Override>& overrides,
                              const std::optional<std::filesystem::path>& config_file = {});

// Resolves `flavor` of a family document (the contents of a configs/<family>.json file),
// with `overrides`, then the family's derived fields: what load_model_config does for a
// built-in family, for any family.
ModelConfig load_family_config(const Family& family, const nlohmann::json& document,
                               const std::string& flavor, const std::vector<Override>& overrides);

// The flavor's native tensors in torchtitan's state_dict order (`native_order`).
std::vector<NativeTensor> expected_native_tensors(const FamilyRules& rules);

std::string rule_op_name(RuleOp op);

}  // namespace ckconv
