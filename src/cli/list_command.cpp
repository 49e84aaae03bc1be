// `ckconv list` (alias `flavors`): the families and flavors this build converts, with the
// fields that tell them apart and the transformers model types, architectures and HF
// release names each maps to.
#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "families/model_aliases.h"

namespace ckconv::cli {
namespace {

// The fields shown per flavor: those that set the tensor shapes and the conversion.
constexpr const char* kKeyFields[] = {
    "dim",        "n_layers",    "n_heads",        "n_kv_heads", "head_dim",           "vocab_size",
    "hidden_dim", "num_experts", "moe_hidden_dim", "fused_qkv",  "enable_weight_tying"};

nlohmann::json list_json() {
  nlohmann::json families = nlohmann::json::array();
  for (const std::string& name : builtin_family_names()) {
    const Family& family = find_family(name);
    nlohmann::json flavors = nlohmann::json::array();
    for (const std::string& flavor : list_flavors(name)) {
      const ModelConfig config = load_model_config(name, flavor, {});
      nlohmann::json fields = nlohmann::json::object();
      for (const char* field : kKeyFields)
        if (config.has(field)) fields[field] = config.fields()[field];
      flavors.push_back(
          {{"name", flavor}, {"fields", fields}, {"aliases", model_aliases(name, flavor)}});
    }
    families.push_back({{"family", name},
                        {"hf_model_types", family.hf_model_types},
                        {"hf_architectures", family.hf_architectures},
                        {"flavors", flavors}});
  }
  return {{"families", families}};
}

void print_list(const nlohmann::json& list) {
  for (const nlohmann::json& family : list["families"]) {
    std::string types, architectures;
    for (const auto& type : family["hf_model_types"])
      types += (types.empty() ? "" : ", ") + type.get<std::string>();
    for (const auto& architecture : family["hf_architectures"])
      architectures += (architectures.empty() ? "" : ", ") + architecture.get<std::string>();
    std::printf("%s  (HF model_type %s; %s)\n", family["family"].get<std::string>().c_str(),
                types.c_str(), architectures.c_str());
    for (const nlohmann::json& flavor : family["flavors"]) {
      std::string fields;
      for (const auto& item : flavor["fields"].items()) {
        if (item.value().is_null() || item.value() == false || item.value() == 0) continue;
        fields += (fields.empty() ? "" : " ") + item.key() + "=" + item.value().dump();
      }
      std::string aliases;
      for (const auto& alias : flavor["aliases"])
        aliases += (aliases.empty() ? "  aka " : ", ") + alias.get<std::string>();
      std::printf("  %-20s %s%s\n", flavor["name"].get<std::string>().c_str(), fields.c_str(),
                  aliases.c_str());
    }
  }
}

}  // namespace

void add_list_command(CLI::App& app, int& exit_code) {
  auto json_report = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "list", "list the model families and flavors, their key fields and HF names");
  command->alias("flavors");
  command->add_option("--json", *json_report, "write the list as JSON to this file ('-' = stdout)");
  command->footer(
      "\nExamples:\n  ckconv list\n  ckconv list --json - | jq '.families[].family'\n"
      "\n--model and --flavor also accept HF names (Qwen3-30B-A3B, Llama-3.1-8B, qwen3_moe, "
      "deepseek-v3).");
  command->callback([json_report, &exit_code]() {
    const nlohmann::json list = list_json();
    RunOptions options;
    options.json_report = *json_report;
    if (json_report->empty())
      print_list(list);
    else
      write_report(options, list);
    exit_code = 0;
  });
}

}  // namespace ckconv::cli
