#include "pipeline/hf_assets.h"

#include <algorithm>
#include <array>

#include "core/error.h"
#include "core/file.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxAssetBytes = uint64_t{256} << 20;

constexpr std::array<const char*, 10> kAssetNames = {"added_tokens.json",
                                                     "chat_template.jinja",
                                                     "chat_template.json",
                                                     "generation_config.json",
                                                     "merges.txt",
                                                     "special_tokens_map.json",
                                                     "tokenizer.json",
                                                     "tokenizer.model",
                                                     "tokenizer_config.json",
                                                     "vocab.json"};

}  // namespace

bool is_hf_asset_name(const std::string& name) {
  return std::find(kAssetNames.begin(), kAssetNames.end(), name) != kAssetNames.end();
}

std::vector<CompanionFile> read_hf_assets(const fs::path& directory) {
  std::error_code error;
  if (!fs::is_directory(directory, error))
    fail(ErrorKind::kUsage, "--hf-assets " + directory.string() + " is not a directory");
  std::vector<CompanionFile> files;
  for (const char* name : kAssetNames) {
    const fs::path path = directory / name;
    if (!fs::is_regular_file(path, error)) continue;
    files.push_back({name, read_small_file(path, kMaxAssetBytes)});
  }
  if (files.empty())
    fail(ErrorKind::kUsage, "--hf-assets " + directory.string() +
                                " holds none of the files it copies (tokenizer.json, "
                                "tokenizer_config.json, tokenizer.model, generation_config.json, "
                                "special_tokens_map.json, chat_template.jinja, ...)");
  return files;
}

bool has_tokenizer(const std::vector<CompanionFile>& files) {
  return std::any_of(files.begin(), files.end(), [](const CompanionFile& file) {
    return file.name == "tokenizer.json" || file.name == "tokenizer.model" ||
           file.name == "vocab.json";
  });
}

std::optional<CompanionFile> generation_config_from(const nlohmann::json& config) {
  if (!config.is_object()) return std::nullopt;
  nlohmann::json generation = nlohmann::json::object();
  for (const char* field : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
    auto found = config.find(field);
    if (found != config.end() && !found->is_null()) generation[field] = *found;
  }
  if (generation.empty()) return std::nullopt;
  generation["_from_model_config"] = true;
  return CompanionFile{"generation_config.json", generation.dump(2) + "\n"};
}

}  // namespace ckconv
