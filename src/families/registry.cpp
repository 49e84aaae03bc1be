// The built-in families: one row each. A row's functions live in src/families/<family>.cpp,
// its flavors in configs/<family>.json.
#include <map>

#include "core/error.h"
#include "families/family.h"

namespace ckconv {

Family llama3_family();
Family qwen3_family();
Family llama4_family();
Family gpt_oss_family();
Family deepseek_v3_family();

namespace {

const std::map<std::string, Family>& registry() {
  static const std::map<std::string, Family> rows = [] {
    std::map<std::string, Family> table;
    for (Family family :
         {llama3_family(), qwen3_family(), llama4_family(), gpt_oss_family(), deepseek_v3_family()})
      table.emplace(family.name, std::move(family));
    return table;
  }();
  return rows;
}

}  // namespace

const Family& find_family(const std::string& name) {
  auto found = registry().find(name);
  if (found == registry().end())
    fail(ErrorKind::kUsage, "model family '" + name + "' has no rule table in this build");
  return found->second;
}

std::vector<std::string> builtin_family_names() {
  std::vector<std::string> names;
  for (const auto& [name, family] : registry()) names.push_back(name);
  return names;
}

}  // namespace ckconv
