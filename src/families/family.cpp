#include "families/family.h"

#include <map>

#include "core/error.h"
#include "families/rule_builder.h"

namespace ckconv {

FamilyRules build_family_rules(const ModelConfig& config) {
  return build_family_rules(find_family(config.family()), config);
}

FamilyRules build_family_rules(const Family& family, const ModelConfig& config) {
  FamilyRules table;
  table.family = family.name;
  RuleBuilder builder(table);
  family.rules(config, builder);
  table.hf_config = family.hf_config(config);
  return table;
}

ModelConfig load_model_config(const std::string& family, const std::string& flavor,
                              const std::vector<Override>& overrides,
                              const std::optional<std::filesystem::path>& config_file) {
  const nlohmann::json document = load_family_document(family, config_file);
  ModelConfig config = resolve_flavor(document, family, flavor, overrides);
  find_family(config.family()).derive_fields(config);
  return config;
}

ModelConfig load_family_config(const Family& family, const nlohmann::json& document,
                               const std::string& flavor, const std::vector<Override>& overrides) {
  ModelConfig config = resolve_flavor(document, family.name, flavor, overrides);
  family.derive_fields(config);
  return config;
}

std::vector<NativeTensor> expected_native_tensors(const FamilyRules& rules) {
  std::map<std::string, const NativeTensor*> by_name;
  for (const Rule& rule : rules.rules)
    for (const NativeTensor& tensor : rule.native) by_name.emplace(tensor.name, &tensor);
  std::vector<NativeTensor> out;
  out.reserve(rules.native_order.size());
  for (const std::string& name : rules.native_order) {
    auto found = by_name.find(name);
    if (found == by_name.end())
      fail(ErrorKind::kInternal, rules.family + ": native key '" + name +
                                     "' is in the native order but no rule consumes it");
    out.push_back(*found->second);
  }
  return out;
}

std::string rule_op_name(RuleOp op) {
  switch (op) {
    case RuleOp::kRename:
      return "rename";
    case RuleOp::kRopePermute:
      return "rope-permute";
    case RuleOp::kFusedQkv:
      return "fused-qkv";
    case RuleOp::kUnstackExperts:
      return "unstack-experts";
    case RuleOp::kTransposeLast2:
      return "transpose";
    case RuleOp::kConcatTransposed:
      return "concat-transposed";
    case RuleOp::kConcatRows:
      return "concat-rows";
    case RuleOp::kConcatColumns:
      return "concat-columns";
    case RuleOp::kDroppedZeros:
      return "dropped-zeros";
    case RuleOp::kTied:
      return "tied";
    case RuleOp::kFusedSwiglu:
      return "fused-swiglu";
    case RuleOp::kDroppedHf:
      return "dropped-hf";
  }
  return "?";
}

}  // namespace ckconv
