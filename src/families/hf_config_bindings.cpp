#include "families/hf_config_bindings.h"

#include <algorithm>

#include "core/error.h"
#include "families/family.h"

namespace ckconv {
namespace {

bool has_type(const nlohmann::json& value, FieldType type) {
  switch (type) {
    case FieldType::kInt:
      return value.is_number_integer() ||
             (value.is_number_float() &&
              value.get<double>() == static_cast<double>(value.get<int64_t>()));
    case FieldType::kDouble:
      return value.is_number();
    case FieldType::kBool:
      return value.is_boolean();
    case FieldType::kString:
      return value.is_string();
  }
  return false;
}

nlohmann::json typed(const nlohmann::json& value, FieldType type) {
  if (value.is_null()) return value;
  if (type == FieldType::kInt) return value.get<int64_t>();
  if (type == FieldType::kDouble) return value.get<double>();
  return value;
}

bool names_family(const nlohmann::json& config, const Family& family) {
  if (!config.is_object()) return false;
  const nlohmann::json type = config.value("model_type", nlohmann::json());
  if (type.is_string() && std::count(family.hf_model_types.begin(), family.hf_model_types.end(),
                                     type.get<std::string>()))
    return true;
  const nlohmann::json architectures = config.value("architectures", nlohmann::json());
  if (!architectures.is_array()) return false;
  for (const auto& name : architectures)
    if (name.is_string() && std::count(family.hf_architectures.begin(),
                                       family.hf_architectures.end(), name.get<std::string>()))
      return true;
  return false;
}

}  // namespace

nlohmann::json bound_value(const HfBinding& binding, const ModelConfig& config) {
  switch (binding.type) {
    case FieldType::kInt: {
      const std::optional<int64_t> value = config.get_optional_int(binding.field);
      return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
    }
    case FieldType::kDouble: {
      const std::optional<double> value = config.get_optional_double(binding.field);
      return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
    }
    case FieldType::kBool:
      return config.get_bool(binding.field);
    case FieldType::kString:
      return config.fields().value(binding.field, nlohmann::json());
  }
  return nullptr;
}

std::vector<HfBinding> dense_decoder_bindings(HfBinding intermediate) {
  using enum FieldType;
  using enum FieldEffect;
  return {
      {"vocab_size", "vocab_size"},
      {"dim", "hidden_size"},
      std::move(intermediate),
      {"n_layers", "num_hidden_layers"},
      {"n_heads", "num_attention_heads"},
      {"n_kv_heads", "num_key_value_heads"},
      {"head_dim", "head_dim"},
      {"enable_weight_tying", "tie_word_embeddings", kBool},
      {"norm_eps", "rms_norm_eps", kDouble, kMetadata},
      {"rope_theta", "rope_theta", kDouble, kMetadata},
      {"max_seq_len", "max_position_embeddings", kInt, kMetadata},
  };
}

FieldEffect binding_effect(const HfBinding& binding, const ModelConfig& config) {
  if (binding.metadata_when && binding.metadata_when(config)) return FieldEffect::kMetadata;
  return binding.effect;
}

nlohmann::json write_hf_bindings(const std::vector<HfBinding>& bindings,
                                 const ModelConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const HfBinding& binding : bindings) {
    if (binding.present && !binding.present(config)) continue;
    const nlohmann::json value = bound_value(binding, config);
    out[binding.hf_field] = binding.to_hf ? binding.to_hf(value) : value;
  }
  return out;
}

std::vector<HfFieldValue> read_hf_bindings(const std::vector<HfBinding>& bindings,
                                           const nlohmann::json& text_config,
                                           const std::string& where) {
  std::vector<HfFieldValue> values;
  for (const HfBinding& binding : bindings) {
    if (!text_config.contains(binding.hf_field)) continue;
    nlohmann::json value = text_config[binding.hf_field];
    if (binding.from_hf) value = binding.from_hf(value);
    if (!value.is_null() && !has_type(value, binding.type))
      fail_input(where + ": " + binding.hf_field + " is " + text_config[binding.hf_field].dump() +
                 ", not a value " + binding.field + " can take");
    values.push_back({&binding, typed(value, binding.type)});
  }
  return values;
}

nlohmann::json hf_text_config(const nlohmann::json& document) {
  if (document.is_object() && document.contains("text_config") &&
      document["text_config"].is_object())
    return document["text_config"];
  return document;
}

const Family* family_for_hf_config(const nlohmann::json& document) {
  for (const std::string& name : builtin_family_names()) {
    const Family& family = find_family(name);
    if (names_family(document, family) || names_family(hf_text_config(document), family))
      return &family;
  }
  return nullptr;
}

std::string hf_model_description(const nlohmann::json& document) {
  const nlohmann::json text = hf_text_config(document);
  std::string out = "model_type " + document.value("model_type", nlohmann::json()).dump();
  if (document.contains("text_config") && text.contains("model_type"))
    out += " (text_config " + text["model_type"].dump() + ")";
  if (document.contains("architectures"))
    out += ", architectures " + document["architectures"].dump();
  return out;
}

bool same_field_value(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

}  // namespace ckconv
