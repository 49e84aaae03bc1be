#include "model/model_config.h"

#include "core/error.h"
#include "core/file.h"
#include "model/embedded_configs.h"

namespace ckconv {
namespace {

constexpr uint64_t kMaxConfigFileBytes = 16 << 20;

nlohmann::json parse_json(const std::string& text, const std::string& where, ErrorKind kind) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    fail(kind, where + ": invalid JSON: " + error.what());
  }
}

std::string join_keys(const nlohmann::json& object) {
  std::string out;
  for (const auto& item : object.items()) out += (out.empty() ? "" : ", ") + item.key();
  return out;
}

nlohmann::json family_document(const std::string& family,
                               const std::optional<std::filesystem::path>& config_file) {
  if (config_file) {
    nlohmann::json document = parse_json(read_small_file(*config_file, kMaxConfigFileBytes),
                                         config_file->string(), ErrorKind::kUsage);
    if (!document.is_object() || !document.contains("flavors") || !document["flavors"].is_object())
      fail(ErrorKind::kUsage, config_file->string() + ": a config file needs a \"flavors\" object");
    return document;
  }
  const auto& configs = embedded_configs();
  auto found = configs.find(family);
  if (found == configs.end()) {
    std::string names;
    for (const auto& [name, text] : configs) names += (names.empty() ? "" : ", ") + name;
    fail(ErrorKind::kUsage, "unknown model '" + family + "' (known: " + names + ")");
  }
  return parse_json(found->second, "configs/" + family + ".json", ErrorKind::kInternal);
}

// Values keep the type of the field they replace: an integer field takes only integers, so
// a typo such as n_layers=2.5 is refused instead of silently truncated.
bool same_kind(const nlohmann::json& old_value, const nlohmann::json& new_value) {
  if (old_value.is_null() || new_value.is_null()) return true;
  if (old_value.is_number_integer()) return new_value.is_number_integer();
  if (old_value.is_number()) return new_value.is_number();
  return old_value.type() == new_value.type();
}

[[noreturn]] void field_error(const std::string& field, const std::string& expected) {
  fail(ErrorKind::kUsage, "config field '" + field + "': expected " + expected);
}

// A --config file stands in for the built-in family file, so it must define every field the
// built-in one does, with values of the same kind, and set no other; checked when it is
// loaded (not when a field is first used, which for `init` may be never), and all problems
// are reported together, naming the file.
void check_config_file(const nlohmann::json& document, const std::string& family,
                       const std::filesystem::path& path) {
  const nlohmann::json builtin = family_document(family, std::nullopt);
  const nlohmann::json& fields = builtin["defaults"];
  if (!document.contains("defaults") || !document["defaults"].is_object())
    fail(ErrorKind::kUsage, path.string() + ": a config file needs a \"defaults\" object");
  std::vector<std::string> problems;
  auto check = [&](const std::string& where, const std::string& key, const nlohmann::json& value) {
    if (!fields.contains(key))
      problems.push_back(where + key + " is not a field of " + family);
    else if (!same_kind(fields[key], value))
      problems.push_back(where + key + " is " + value.dump() + ", expected a value like " +
                         fields[key].dump());
  };
  const nlohmann::json& defaults = document["defaults"];
  for (const auto& item : fields.items())
    if (!defaults.contains(item.key()))
      problems.push_back("defaults." + item.key() + " is missing");
  for (const auto& item : defaults.items()) check("defaults.", item.key(), item.value());
  for (const auto& flavor : document["flavors"].items()) {
    if (!flavor.value().is_object()) {
      problems.push_back("flavors." + flavor.key() + " is not an object");
      continue;
    }
    for (const auto& item : flavor.value().items())
      check("flavors." + flavor.key() + ".", item.key(), item.value());
  }
  if (problems.empty()) return;
  std::string message = path.string() + ": ";
  for (size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  fail(ErrorKind::kUsage, message);
}

}  // namespace

Override parse_override(const std::string& text) {
  const size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0)
    fail(ErrorKind::kUsage, "override '" + text + "' is not of the form field=value");
  return Override{text.substr(0, equals), text.substr(equals + 1)};
}

std::vector<Override> read_overrides_file(const std::filesystem::path& path) {
  nlohmann::json document =
      parse_json(read_small_file(path, kMaxConfigFileBytes), path.string(), ErrorKind::kUsage);
  if (document.is_object() && document.contains("overrides")) document = document["overrides"];
  if (!document.is_object())
    fail(ErrorKind::kUsage, path.string() + ": expected a JSON object of overrides");
  std::vector<Override> overrides;
  for (const auto& item : document.items()) overrides.push_back({item.key(), item.value().dump()});
  return overrides;
}

int64_t ModelConfig::get_int(const std::string& field) const {
  auto value = get_optional_int(field);
  if (!value) field_error(field, "an integer, found null");
  return *value;
}

std::optional<int64_t> ModelConfig::get_optional_int(const std::string& field) const {
  if (!fields_.contains(field)) field_error(field, "a value, but the field is missing");
  const auto& value = fields_[field];
  if (value.is_null()) return std::nullopt;
  if (!value.is_number_integer()) field_error(field, "an integer, found " + value.dump());
  return value.get<int64_t>();
}

double ModelConfig::get_double(const std::string& field) const {
  auto value = get_optional_double(field);
  if (!value) field_error(field, "a number, found null");
  return *value;
}

std::optional<double> ModelConfig::get_optional_double(const std::string& field) const {
  if (!fields_.contains(field)) field_error(field, "a value, but the field is missing");
  const auto& value = fields_[field];
  if (value.is_null()) return std::nullopt;
  if (!value.is_number()) field_error(field, "a number, found " + value.dump());
  return value.get<double>();
}

bool ModelConfig::get_bool(const std::string& field) const {
  if (!fields_.contains(field)) field_error(field, "a value, but the field is missing");
  const auto& value = fields_[field];
  if (!value.is_boolean()) field_error(field, "true or false, found " + value.dump());
  return value.get<bool>();
}

bool ModelConfig::has(const std::string& field) const {
  return fields_.contains(field);
}

nlohmann::json load_family_document(const std::string& family,
                                    const std::optional<std::filesystem::path>& config_file) {
  nlohmann::json document = family_document(family, config_file);
  if (config_file) check_config_file(document, family, *config_file);
  return document;
}

ModelConfig resolve_flavor(const nlohmann::json& document, const std::string& family,
                           const std::string& flavor, const std::vector<Override>& overrides) {
  if (!document.is_object() || !document.contains("flavors") || !document["flavors"].is_object())
    fail(ErrorKind::kUsage, "model '" + family + "': a config needs a \"flavors\" object");
  const nlohmann::json& flavors = document["flavors"];
  if (!flavors.contains(flavor))
    fail(ErrorKind::kUsage, "unknown flavor '" + flavor + "' of model '" + family +
                                "' (known: " + join_keys(flavors) + ")");
  ModelConfig config;
  config.family_ = document.value("family", family);
  config.flavor_ = flavor;
  config.fields_ = document.value("defaults", nlohmann::json::object());
  for (const auto& item : flavors[flavor].items()) config.fields_[item.key()] = item.value();
  for (const Override& override_ : overrides) {
    if (!config.fields_.contains(override_.field))
      fail(ErrorKind::kUsage, "unknown config field '" + override_.field + "' for model '" +
                                  family + "' (known: " + join_keys(config.fields_) + ")");
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(override_.value);
    } catch (const nlohmann::json::exception&) {
      value = override_.value;  // a bare word is a string
    }
    if (!same_kind(config.fields_[override_.field], value))
      fail(ErrorKind::kUsage, "override " + override_.field + "=" + override_.value +
                                  ": expected a value like " +
                                  config.fields_[override_.field].dump());
    config.fields_[override_.field] = value;
  }
  return config;
}

std::vector<std::string> list_families() {
  std::vector<std::string> names;
  for (const auto& [name, text] : embedded_configs()) names.push_back(name);
  return names;
}

std::vector<std::string> list_flavors(const std::string& family) {
  nlohmann::json document = family_document(family, std::nullopt);
  std::vector<std::string> names;
  for (const auto& item : document["flavors"].items()) names.push_back(item.key());
  return names;
}

}  // namespace ckconv
