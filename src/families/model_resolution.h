// Which model a conversion is about, resolved from what the user and the input say: the
// family and flavor named on the command line (--model, --flavor, --set, --set-from) and a
// transformers config.json (the HF input's own, or --hf-config FILE). Every field config.json
// binds (families/hf_config_bindings.h) that changes the converted bytes must agree with what
// the flags imply; fields that only change config.json's metadata may disagree with a warning.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "families/family.h"
#include "model/model_config.h"

namespace ckconv {

struct ModelRequest {
  std::string family;  // empty: from config.json
  std::string flavor;  // empty: config.json's fields on the family's defaults
  std::vector<Override> overrides;
  std::optional<std::filesystem::path> config_file;  // --config
};

// A byte-changing field the input could not confirm, with the value used and where it came
// from ("flavor debugmodel", "--set", "config.json").
struct FieldSource {
  std::string field;
  nlohmann::json value;
  std::string source;
};

struct ResolvedModel {
  ModelConfig config;
  std::string source;                 // "flags" or the config.json path that drove it
  std::optional<std::string> equals;  // "llama3/8B": the built-in flavor config.json equals
  std::vector<std::string> warnings;  // metadata fields that disagree
  std::vector<FieldSource> unconfirmed;
};

// The config the flags name; kUsage when the family or flavor is missing.
ResolvedModel resolve_from_flags(const ModelRequest& request);

// The config driven by a config.json document (`where` names it in messages): its family
// (model_type / architectures) and bound fields, on the flavor when one is named (else the
// family's defaults), then the overrides. A byte-changing field the flags imply differently
// from config.json, or a family other than config.json's, is kBadInput listing each field
// with both names and values.
ResolvedModel resolve_with_hf_config(const ModelRequest& request, const nlohmann::json& hf,
                                     const std::string& where);

// The built-in flavor of config.family() whose byte-changing bound fields all equal config's.
std::optional<std::string> equal_builtin_flavor(const ModelConfig& config);

// The byte-changing fields a native checkpoint's shapes cannot confirm for `rules` (the head
// counts of the RoPE permutation and of the fused-QKV split), with their sources.
std::vector<FieldSource> fields_not_in_shapes(const ResolvedModel& model, const FamilyRules& rules,
                                              const ModelRequest& request);

}  // namespace ckconv
