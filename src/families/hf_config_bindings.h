// How a family's torchtitan config fields appear in transformers' config.json. Each family
// declares its bindings once (Family::hf_bindings); the same list writes config.json
// (hf_config = the bound fields plus the family's constant and computed extras) and reads it
// (from-hf, --hf-config), so the two directions cannot drift apart.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace ckconv {

struct Family;

// Whether a field changes the converted tensors (their keys, shapes or bytes) or only the
// metadata of config.json (RoPE scaling, eps, rope_theta, max positions, routing knobs).
enum class FieldEffect { kBytes, kMetadata };

// The JSON type of the torchtitan field; config.json is written with the typed accessor so a
// value keeps its spelling (500000.0 stays a float).
enum class FieldType { kInt, kDouble, kBool, kString };

struct HfBinding {
  std::string field;     // torchtitan config field (configs/<family>.json "defaults")
  std::string hf_field;  // transformers config.json field
  FieldType type = FieldType::kInt;
  FieldEffect effect = FieldEffect::kBytes;
  // Only for flavors where this returns true is the field written (and, when config.json
  // lacks it, the field keeps its default). Null: always.
  bool (*present)(const ModelConfig& config) = nullptr;
  // Value conversions when the two sides spell a value differently (deepseek q_lora_rank 0 is
  // HF null). Null: the same value.
  nlohmann::json (*to_hf)(const nlohmann::json& value) = nullptr;
  nlohmann::json (*from_hf)(const nlohmann::json& value) = nullptr;
  // A kBytes field that names no tensor of some flavors (qwen3 MoE's dense intermediate_size):
  // where this returns true it is compared as metadata.
  bool (*metadata_when)(const ModelConfig& config) = nullptr;
};

// The rows every GQA decoder with a dense-FFN size binds alike (llama3, qwen3): vocabulary,
// width, `intermediate` (the dense FFN's row, whose presence or effect the family decides),
// layers, heads, kv heads, head_dim, tying, norm eps, rope_theta and max positions.
std::vector<HfBinding> dense_decoder_bindings(HfBinding intermediate);

// The field's effect for `config`'s flavor.
FieldEffect binding_effect(const HfBinding& binding, const ModelConfig& config);

// The bound fields of `config` as config.json spells them (each family's hf_config adds its
// extras to this object).
nlohmann::json write_hf_bindings(const std::vector<HfBinding>& bindings, const ModelConfig& config);

// The value of one binding's field in `config`, typed as the binding says.
nlohmann::json bound_value(const HfBinding& binding, const ModelConfig& config);

// One field read from config.json, in torchtitan's spelling.
struct HfFieldValue {
  const HfBinding* binding;
  nlohmann::json value;
};

// The bound fields config.json (its text part) holds, converted to torchtitan values; a value
// of the wrong JSON type is kBadInput naming the HF field.
std::vector<HfFieldValue> read_hf_bindings(const std::vector<HfBinding>& bindings,
                                           const nlohmann::json& text_config,
                                           const std::string& where);

// The text model's part of config.json: `text_config` of a multimodal repository (llama4's
// Llama4ForConditionalGeneration), otherwise the document itself.
nlohmann::json hf_text_config(const nlohmann::json& document);

// The built-in family whose HF model_type or architectures config.json names (top level or
// text_config); nullptr when none does.
const Family* family_for_hf_config(const nlohmann::json& document);

// "model_type 'x'" / "architectures [..]": what config.json calls the model, for messages.
std::string hf_model_description(const nlohmann::json& document);

// Numeric values compare by value (1 == 1.0); others by JSON equality.
bool same_field_value(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace ckconv
