// model.safetensors.index.json of a sharded safetensors checkpoint: parsing the untrusted
// document into its weight map (tensor name -> shard file) and total size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckconv {

// An index lists one line per tensor; 100 MB is ~1M tensors, far beyond any real model.
inline constexpr uint64_t kMaxSafetensorsIndexBytes = 100'000'000;

// The hidden folder of an output directory in which ckconv's publish keeps hard links to the
// previous checkpoint's shards while new shards of the same names replace them; for that
// moment the index names them "<folder>/<shard>" (docs/output_safety.md). The only folder a
// weight_map entry may name; transformers joins the directory with the entry likewise.
inline constexpr const char* kPreviousShardsFolder = ".ckconv-previous";

// model.safetensors.index.json after its JSON shape was checked: weight_map entries sorted
// by tensor name, every file a plain `*.safetensors` name, bare or in kPreviousShardsFolder.
struct SafetensorsIndex {
  std::optional<uint64_t> total_size_bytes;
  std::vector<std::pair<std::string, std::string>> weight_map;  // tensor name -> file name
};

// Parses an index document; kBadInput naming `where` for bad JSON (strict_json.h: size,
// depth, UTF-8, duplicate keys), a missing or non-object weight_map, a non-string or unsafe
// file name, a bad total_size.
SafetensorsIndex parse_safetensors_index(std::string_view json_text, const std::string& where);

}  // namespace ckconv
