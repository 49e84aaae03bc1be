#include "families/model_resolution.h"

#include <algorithm>

#include "core/error.h"

namespace ckconv {
namespace {

bool overridden(const ModelRequest& request, const std::string& field) {
  return std::any_of(request.overrides.begin(), request.overrides.end(),
                     [&](const Override& item) { return item.field == field; });
}

std::string source_of(const ModelRequest& request, const std::string& field) {
  if (overridden(request, field)) return "--set";
  if (!request.flavor.empty() && !request.flavor_origin.empty())
    return request.flavor_origin + " (flavor " + request.flavor + ")";
  if (!request.flavor.empty()) return "flavor " + request.flavor;
  return "the family's defaults";
}

const Family& family_of(const ModelRequest& request, const nlohmann::json& hf,
                        const std::string& where) {
  const Family* named = family_for_hf_config(hf);
  const nlohmann::json text = hf_text_config(hf);
  const bool says_model =
      hf.contains("model_type") || hf.contains("architectures") || text.contains("model_type");
  if (!named && says_model)
    fail_input(where + " names " + hf_model_description(hf) +
               ", which no family of this build converts (families: llama3, llama4, qwen3, "
               "gpt_oss, deepseek_v3)");
  if (!named) {
    if (request.family.empty())
      fail(ErrorKind::kUsage, where + " names no model_type; give --model");
    return find_family(request.family);
  }
  if (!request.family.empty() && request.family != named->name)
    fail_input(where + " names " + hf_model_description(hf) + ", family " + named->name +
               ", but --model is " + request.family);
  return *named;
}

// Compares what the flags imply with config.json; byte-changing disagreements are returned,
// metadata ones go to `warnings`.
std::vector<std::string> disagreements(const Family& family, const ModelConfig& implied,
                                       const std::vector<HfFieldValue>& values,
                                       const nlohmann::json& text, const ModelRequest& request,
                                       std::vector<std::string>& warnings) {
  std::vector<std::string> errors;
  for (const HfFieldValue& item : values) {
    const nlohmann::json mine = bound_value(*item.binding, implied);
    if (same_field_value(mine, item.value)) continue;
    const std::string line = item.binding->hf_field + " " + item.value.dump() +
                             " in config.json, but " + item.binding->field + " " + mine.dump() +
                             " from " + source_of(request, item.binding->field);
    (binding_effect(*item.binding, implied) == FieldEffect::kBytes ? errors : warnings)
        .push_back(line);
  }
  // A field config.json leaves out because the model lacks the feature (a dense qwen3 has
  // no num_experts) must be absent from the implied config too.
  for (const HfBinding& binding : family.hf_bindings)
    if (binding.present && binding.effect == FieldEffect::kBytes &&
        !text.contains(binding.hf_field) && binding.present(implied))
      errors.push_back("config.json has no " + binding.hf_field + ", but " + binding.field + " " +
                       bound_value(binding, implied).dump() + " from " +
                       source_of(request, binding.field));
  return errors;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += "\n  " + line;
  return out;
}

// The binding of `field` in `family`, or nullptr for a field config.json does not show.
const HfBinding* binding_of(const Family& family, const std::string& field) {
  for (const HfBinding& binding : family.hf_bindings)
    if (binding.field == field) return &binding;
  return nullptr;
}

}  // namespace

ModelRequest with_train_config(ModelRequest request, const TrainConfig& train,
                               std::vector<std::string>& warnings) {
  const std::string where = train.path.string();
  const std::vector<std::string> families = list_families();
  if (std::find(families.begin(), families.end(), train.family) == families.end())
    fail_input(where + ": " + train.family_field + " " + nlohmann::json(train.family).dump() +
               " is no family this build converts (llama3, llama4, qwen3, gpt_oss, deepseek_v3)");
  if (!request.family.empty() && request.family != train.family)
    fail_input(train.family_field + " " + nlohmann::json(train.family).dump() + " in " + where +
               ", but --model " + request.family);
  if (!request.flavor.empty() && request.flavor != train.flavor)
    fail_input(train.flavor_field + " " + nlohmann::json(train.flavor).dump() + " in " + where +
               ", but --flavor " + request.flavor);
  const Family& family = find_family(train.family);
  const ModelConfig named = load_model_config(train.family, train.flavor, {}, request.config_file);
  std::vector<std::string> errors;
  for (const Override& item : request.overrides) {
    if (!named.has(item.field)) continue;  // not a field of the model (an output choice)
    const ModelConfig set =
        load_model_config(train.family, train.flavor, {item}, request.config_file);
    const nlohmann::json mine = set.fields()[item.field], theirs = named.fields()[item.field];
    if (same_field_value(mine, theirs)) continue;
    const std::string line = item.field + " " + mine.dump() + " from --set, but " + theirs.dump() +
                             " in flavor " + train.flavor + ", which " + where + " names (" +
                             train.flavor_field + ")";
    const HfBinding* binding = binding_of(family, item.field);
    (binding && binding_effect(*binding, set) == FieldEffect::kMetadata ? warnings : errors)
        .push_back(line);
  }
  if (!errors.empty())
    fail_input("the options disagree with the training config " + where + ":" + join_lines(errors));
  request.family = train.family;
  request.flavor = train.flavor;
  request.flavor_origin = "train-config";
  return request;
}

ResolvedModel resolve_from_flags(const ModelRequest& request) {
  if (request.family.empty() || request.flavor.empty())
    fail(ErrorKind::kUsage,
         "name the model: --model FAMILY --flavor FLAVOR, or --hf-config config.json");
  ResolvedModel model;
  model.config =
      load_model_config(request.family, request.flavor, request.overrides, request.config_file);
  model.source = "flags";
  record_field_sources(model, request, load_family_document(request.family, request.config_file),
                       request.flavor, nlohmann::json::object(), nlohmann::json::object());
  return model;
}

ResolvedModel resolve_with_hf_config(const ModelRequest& request, const nlohmann::json& hf,
                                     const std::string& where) {
  if (!hf.is_object()) fail_input(where + ": not a JSON object");
  const Family& family = family_of(request, hf, where);
  const nlohmann::json text = hf_text_config(hf);
  const std::vector<HfFieldValue> values = read_hf_bindings(family.hf_bindings, text, where);
  nlohmann::json document = load_family_document(family.name, request.config_file);
  std::string flavor = request.flavor;
  if (flavor.empty()) {
    flavor = "config.json";
    nlohmann::json fields = nlohmann::json::object();
    for (const HfFieldValue& item : values) fields[item.binding->field] = item.value;
    document["flavors"][flavor] = fields;
  }
  ResolvedModel model;
  model.source = where;
  model.config = load_family_config(family, document, flavor, request.overrides);
  const std::vector<std::string> errors =
      disagreements(family, model.config, values, text, request, model.warnings);
  if (!errors.empty())
    fail_input(where + " disagrees with the model the options name (" + family.name +
               (request.flavor.empty() ? "" : "/" + request.flavor) + "):" + join_lines(errors));
  // Metadata fields: config.json's value unless the user set the field.
  for (const HfFieldValue& item : values)
    if (binding_effect(*item.binding, model.config) == FieldEffect::kMetadata &&
        !overridden(request, item.binding->field))
      model.config.set(item.binding->field, item.value);
  model.equals = equal_builtin_flavor(model.config);
  nlohmann::json json_fields = nlohmann::json::object();
  for (const HfFieldValue& item : values) json_fields[item.binding->field] = item.value;
  record_field_sources(model, request, document, request.flavor, json_fields,
                       nlohmann::json::object());
  return model;
}

std::optional<std::string> equal_builtin_flavor(const ModelConfig& config) {
  const Family& family = find_family(config.family());
  const nlohmann::json document = load_family_document(family.name);
  for (const std::string& flavor : list_flavors(family.name)) {
    const ModelConfig candidate = load_family_config(family, document, flavor, {});
    bool same = true;
    for (const HfBinding& binding : family.hf_bindings)
      if (binding_effect(binding, config) == FieldEffect::kBytes &&
          !same_field_value(bound_value(binding, candidate), bound_value(binding, config)))
        same = false;
    // Native-only fields config.json cannot show: the fused wqkv and the expert_bias_E buffers.
    if (config.has("load_balance_coeff") && config.fields()["load_balance_coeff"].is_null() !=
                                                candidate.fields()["load_balance_coeff"].is_null())
      same = false;
    if (config.has("fused_qkv") && config.get_bool("fused_qkv") != candidate.get_bool("fused_qkv"))
      same = false;
    if (same) return family.name + "/" + flavor;
  }
  return std::nullopt;
}

std::vector<FieldSource> fields_not_in_shapes(const ResolvedModel& model, const FamilyRules& rules,
                                              const ModelRequest& request) {
  const bool heads_change_bytes =
      std::any_of(rules.rules.begin(), rules.rules.end(), [](const Rule& rule) {
        return rule.op == RuleOp::kRopePermute || rule.op == RuleOp::kFusedQkv;
      });
  std::vector<FieldSource> out;
  if (!heads_change_bytes || model.heads_confirmed) return out;
  for (const char* field : {"n_heads", "n_kv_heads"}) {
    std::string source = model.source == "flags" ? source_of(request, field)
                         : model.source == "detected"
                             ? model.field_sources.value(field, std::string("defaults"))
                             : (overridden(request, field) ? "--set" : model.source);
    out.push_back({field, model.config.fields()[field], source});
  }
  return out;
}

}  // namespace ckconv
