// A model family's flavor, resolved: the family file's defaults, then the flavor's fields,
// then user overrides (`--set field=value`, named like torchtitan's config fields), then the
// family's derived fields (e.g. llama3 head_dim = dim / n_heads; load_model_config in
// families/family.h). Every later stage reads dimensions from here, so a checkpoint is always
// checked against one explicit config.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ckconv {

struct Override {
  std::string field;
  std::string value;  // JSON literal (number, true/false, null) or a bare string
};

// Parses "field=value"; kUsage on a malformed override.
Override parse_override(const std::string& text);
// Reads overrides from a JSON file: an object of field -> value, or a torchtitan fixture
// flavor.json, whose "overrides" object is used.
std::vector<Override> read_overrides_file(const std::filesystem::path& path);

class ModelConfig {
 public:
  const std::string& family() const { return family_; }
  const std::string& flavor() const { return flavor_; }
  const nlohmann::json& fields() const { return fields_; }

  // Typed accessors; a missing or mistyped field is a kUsage error naming it.
  int64_t get_int(const std::string& field) const;
  std::optional<int64_t> get_optional_int(const std::string& field) const;  // null -> nullopt
  double get_double(const std::string& field) const;
  std::optional<double> get_optional_double(const std::string& field) const;
  bool get_bool(const std::string& field) const;
  bool has(const std::string& field) const;

  void set(const std::string& field, nlohmann::json value) { fields_[field] = std::move(value); }

 private:
  friend ModelConfig resolve_flavor(const nlohmann::json&, const std::string&, const std::string&,
                                    const std::vector<Override>&);
  std::string family_;
  std::string flavor_;
  nlohmann::json fields_;
};

// The family document (flavors and defaults) of `family`: configs/<family>.json, compiled
// in, unless `config_file` is given, which must then define exactly the built-in file's fields
// with values of the same kinds. Unknown family or bad file is kUsage.
nlohmann::json load_family_document(const std::string& family,
                                    const std::optional<std::filesystem::path>& config_file = {});

// `flavor` of a family document (configs/<family>.json contents): the defaults, the flavor's
// fields, then `overrides`; without the family's derived fields (Family::derive_fields).
// Unknown flavor or override field is kUsage.
ModelConfig resolve_flavor(const nlohmann::json& document, const std::string& family,
                           const std::string& flavor, const std::vector<Override>& overrides);

std::vector<std::string> list_families();
std::vector<std::string> list_flavors(const std::string& family);

}  // namespace ckconv
