#include "families/train_config.h"

#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"
#include "core/file.h"
#include "formats/safetensors/strict_json.h"
#include "formats/toml/toml_subset.h"

namespace ckconv {
namespace {

[[noreturn]] void refuse_python(const std::filesystem::path& path) {
  fail(ErrorKind::kUsage,
       path.string() +
           " is a Python training config (torchtitan's config_registry.py), which ckconv cannot "
           "execute. Give the model instead: --model NAME --flavor FLAVOR (the name and flavor "
           "its model_registry(...) call uses), or the JSON config a run saved with "
           "--debug.save_config_file");
}

// Whether text that is no TOML reads as Python source (a config_registry.py renamed).
bool looks_like_python(const std::string& text) {
  static const std::regex kPython(R"((^|\n)(def |import |from \S+ import |class )\S)");
  return std::regex_search(text, kPython);
}

// The string at `field` (dotted) of `document`; empty when absent, kBadInput when not a string.
std::string string_field(const nlohmann::json& document, const std::string& field,
                         const std::string& where) {
  const nlohmann::json* node = &document;
  size_t start = 0;
  while (true) {
    const size_t dot = field.find('.', start);
    const std::string part = field.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!node->is_object() || !node->contains(part)) return "";
    node = &(*node)[part];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (!node->is_string())
    fail_input(where + ": " + field + " must be a string, found " + node->dump());
  return node->get<std::string>();
}

}  // namespace

TrainConfig read_train_config(const std::filesystem::path& path) {
  if (path.extension() == ".py") refuse_python(path);
  const std::string text = read_small_file(path, kMaxTomlBytes);
  const std::string where = path.string();
  TrainConfig config;
  config.path = path;
  nlohmann::json document;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    config.kind = "json";
    document = parse_strict_json_document(text, where, {kMaxTomlBytes, 64});
    config.family_field = "model_spec.name";
    config.flavor_field = "model_spec.flavor";
    config.hf_assets_path = string_field(document, "hf_assets_path", where);
  } else {
    config.kind = "toml";
    try {
      document = parse_toml_subset(text, where);
    } catch (const Error&) {
      if (looks_like_python(text)) refuse_python(path);
      throw;
    }
    config.family_field = "model.name";
    config.flavor_field = "model.flavor";
    config.hf_assets_path = string_field(document, "model.hf_assets_path", where);
  }
  config.family = string_field(document, config.family_field, where);
  config.flavor = string_field(document, config.flavor_field, where);
  if (config.family.empty() || config.flavor.empty())
    fail_input(where + " names no model: a torchtitan training config states " +
               config.family_field + " and " + config.flavor_field);
  const std::string dtype = string_field(document, "checkpoint.export_dtype", where);
  if (!dtype.empty()) {
    if (dtype != "float16" && dtype != "bfloat16" && dtype != "float32")
      fail_input(where + ": checkpoint.export_dtype \"" + dtype +
                 "\" is none of float16, bfloat16, float32");
    config.export_dtype = dtype;
  }
  return config;
}

std::optional<DType> export_cast(const std::string& export_dtype) {
  if (export_dtype == "bfloat16") return DType::kBF16;
  if (export_dtype == "float16") return DType::kF16;
  return std::nullopt;
}

}  // namespace ckconv
