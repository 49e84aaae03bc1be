// The files besides the weights and config.json that make an HF output upload-ready: the
// tokenizer, its special-tokens map and chat template, and generation_config.json. --hf-assets
// copies them from a release folder or a tokenizer folder (torchtitan's hf_assets_path
// convention); without one, a generation_config.json is written from the token ids a
// config.json gives. They are published with the weights as companions (pipeline/publish.h);
// one that would replace a file already in the output needs --force.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ckconv {

struct CompanionFile {
  std::string name;  // a plain file name in the output directory
  std::string bytes;
};

// Whether `name` is one of the asset files --hf-assets copies: tokenizer.json,
// tokenizer_config.json, tokenizer.model, special_tokens_map.json, added_tokens.json,
// vocab.json, merges.txt, chat_template.jinja, chat_template.json, generation_config.json.
bool is_hf_asset_name(const std::string& name);

// The asset files directly in `directory`, in name order. kUsage when `directory` is not a
// directory or holds none of them; kBadInput for an asset over 256 MiB; kIo when unreadable.
std::vector<CompanionFile> read_hf_assets(const std::filesystem::path& directory);

// True when `files` hold a tokenizer (tokenizer.json, tokenizer.model or vocab.json).
bool has_tokenizer(const std::vector<CompanionFile>& files);

// generation_config.json with the bos, eos and pad token ids of a transformers `config`
// document (those it has, non-null), as transformers writes it (2-space indent, sorted keys,
// final newline); nullopt when it has none of them.
std::optional<CompanionFile> generation_config_from(const nlohmann::json& config);

}  // namespace ckconv
