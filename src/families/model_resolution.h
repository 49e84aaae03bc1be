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
#include "families/native_detection.h"
#include "families/train_config.h"
#include "model/model_config.h"

namespace ckconv {

struct ModelRequest {
  std::string family;  // empty: from config.json
  std::string flavor;  // empty: config.json's fields on the family's defaults
  std::vector<Override> overrides;
  std::optional<std::filesystem::path> config_file;  // --config
  // Where family and flavor came from when not the flags: "train-config" (with_train_config).
  std::string flavor_origin;
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
  // Every config field -> where its value came from: "flavor F", "config.json", "--set",
  // "detected" (the checkpoint's shapes), "derived" (from other fields) or "defaults".
  nlohmann::json field_sources = nlohmann::json::object();
  std::vector<std::string> notes;  // what resolution chose, for the log ("using llama3/8B")
  bool heads_confirmed = false;    // n_heads and n_kv_heads were read from the checkpoint
  std::optional<TrainConfig> train_config;  // --train-config, when given
};

// `request` with the model the training config `train` names: its family must be one this
// build converts and equal --model, its flavor --flavor (both already resolved from aliases),
// and a --set of a field of that flavor must keep the flavor's value: else kBadInput naming
// the field and both values. A --set of a field that only changes config.json's metadata
// (eps, rope_theta, ...) goes to `warnings` instead. Fields taken from the flavor are then
// recorded as coming from "train-config".
ModelRequest with_train_config(ModelRequest request, const TrainConfig& train,
                               std::vector<std::string>& warnings);

// The config the flags name; kUsage when the family or flavor is missing.
ResolvedModel resolve_from_flags(const ModelRequest& request);

// The config driven by a config.json document (`where` names it in messages): its family
// (model_type / architectures) and bound fields, on the flavor when one is named (else the
// family's defaults), then the overrides. A byte-changing field the flags imply differently
// from config.json, or a family other than config.json's, is kBadInput listing each field
// with both names and values.
ResolvedModel resolve_with_hf_config(const ModelRequest& request, const nlohmann::json& hf,
                                     const std::string& where);

// The config of a native checkpoint from what its shapes show (`detected`), for a request
// that names no flavor: the one built-in flavor whose fields all equal the detected ones,
// else the family's defaults with the detected fields. The head count, when shapes do not
// show it, comes from --set n_heads, else from the only split the widths allow; more than
// one split possible is kUsage naming n_heads and the candidates. A --model other than the
// detected family is kBadInput.
ResolvedModel resolve_detected(const ModelRequest& request, const DetectedModel& detected);

// The built-in flavors of detected.family whose fields (with `overrides`) equal every
// detected field.
std::vector<std::string> flavors_matching(const DetectedModel& detected,
                                          const std::vector<Override>& overrides = {});

// Why `config` does not fit the checkpoint `detected` describes, and what would: the
// differing fields, the flavor that matches or the nearest one, the --set that fixes it.
// Empty when no detected field differs.
std::string mismatch_guidance(const DetectedModel& detected, const ModelConfig& config);

// Fills model.field_sources: `document` is the family document the config was resolved
// from, `flavor` the built-in flavor used (empty: none), `json_fields` the fields config.json
// gave and `detected_fields` those read from shapes.
void record_field_sources(ResolvedModel& model, const ModelRequest& request,
                          const nlohmann::json& document, const std::string& flavor,
                          const nlohmann::json& json_fields, const nlohmann::json& detected_fields);

// The built-in flavor of config.family() whose byte-changing bound fields all equal config's.
std::optional<std::string> equal_builtin_flavor(const ModelConfig& config);

// The byte-changing fields a native checkpoint's shapes cannot confirm for `rules` (the head
// counts of the RoPE permutation and of the fused-QKV split), with their sources.
std::vector<FieldSource> fields_not_in_shapes(const ResolvedModel& model, const FamilyRules& rules,
                                              const ModelRequest& request);

}  // namespace ckconv
