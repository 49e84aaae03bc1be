#include "families/model_aliases.h"

#include <cctype>

#include "families/family.h"
#include "model/model_config.h"

namespace ckconv {
namespace {

struct Alias {
  const char* name;
  const char* family;
  const char* flavor;
};

// HF release names that are not "<family><flavor>" (the hub repositories of each flavor).
constexpr Alias kReleaseNames[] = {
    {"Llama-3.2-1B", "llama3", "1B"},
    {"Llama-3.2-3B", "llama3", "3B"},
    {"Llama-3.1-8B", "llama3", "8B"},
    {"Meta-Llama-3-8B", "llama3", "8B"},
    {"Meta-Llama-3.1-8B", "llama3", "8B"},
    {"Llama-3.1-70B", "llama3", "70B"},
    {"Llama-3.3-70B", "llama3", "70B"},
    {"Meta-Llama-3-70B", "llama3", "70B"},
    {"Llama-3.1-405B", "llama3", "405B"},
    {"Llama-4-Scout-17B-16E", "llama4", "17bx16e"},
    {"Llama-4-Maverick-17B-128E", "llama4", "17bx128e"},
    {"DeepSeek-V3-Base", "deepseek_v3", "671B"},
    {"DeepSeek-R1", "deepseek_v3", "671B"},
    {"DeepSeek-V2", "deepseek_v3", "236B"},
    {"DeepSeek-V2-Lite", "deepseek_v3", "16B"},
};

// Lower case without '-', '_', '.', '/' and the "-Instruct"/"-Base" style suffixes kept.
std::string normalized(const std::string& text) {
  std::string out;
  for (char c : text)
    if (c != '-' && c != '_' && c != '.' && c != '/' && c != ' ')
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Without an organisation prefix ("meta-llama/Llama-3.1-8B" -> "Llama-3.1-8B").
std::string without_organisation(const std::string& text) {
  const size_t slash = text.rfind('/');
  return slash == std::string::npos ? text : text.substr(slash + 1);
}

std::vector<std::string> family_names(const Family& family) {
  std::vector<std::string> names = {family.name};
  for (const std::string& type : family.hf_model_types) names.push_back(type);
  return names;
}

}  // namespace

std::optional<ModelName> resolve_model_alias(const std::string& text) {
  const std::string key = normalized(without_organisation(text));
  if (key.empty()) return std::nullopt;
  for (const std::string& name : builtin_family_names())
    for (const std::string& alias : family_names(find_family(name)))
      if (normalized(alias) == key) return ModelName{name, ""};
  for (const Alias& alias : kReleaseNames)
    if (normalized(alias.name) == key) return ModelName{alias.family, alias.flavor};
  for (const std::string& name : builtin_family_names())
    for (const std::string& prefix : family_names(find_family(name)))
      for (const std::string& flavor : list_flavors(name))
        if (normalized(prefix + flavor) == key) return ModelName{name, flavor};
  return std::nullopt;
}

std::vector<std::string> model_aliases(const std::string& family, const std::string& flavor) {
  std::vector<std::string> out;
  for (const Alias& alias : kReleaseNames)
    if (family == alias.family && flavor == alias.flavor) out.push_back(alias.name);
  return out;
}

}  // namespace ckconv
