// Names users give a model besides ckconv's own family/flavor pair: HF repository names
// ("Qwen3-30B-A3B", "Llama-3.1-8B", "deepseek-v3"), transformers model types ("qwen3_moe",
// "llama") and spellings with other case or separators ("gpt-oss-20b"). Matching ignores
// case and the characters '-', '_', '.' and '/'.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ckconv {

struct ModelName {
  std::string family;
  std::string flavor;  // empty: the alias names only the family
};

// The family (and flavor) `text` names, or nullopt.
std::optional<ModelName> resolve_model_alias(const std::string& text);

// The aliases of family/flavor (HF repository names and model types), for `ckconv list`.
std::vector<std::string> model_aliases(const std::string& family, const std::string& flavor);

}  // namespace ckconv
