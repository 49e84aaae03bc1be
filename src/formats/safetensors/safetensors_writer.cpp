// Safetensors output planning: reference-writer files, HF sharding and the index JSON.
#include "formats/safetensors/safetensors_writer.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "formats/safetensors/safetensors_header.h"
#include "formats/safetensors/safetensors_header_writer.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

// One file's part of the plan: reference order, offsets and header bytes for `members`.
void plan_file(const std::vector<OutputTensorSpec>& tensors, const std::vector<uint64_t>& sizes,
               const std::vector<size_t>& members,
               const std::optional<std::map<std::string, std::string>>& metadata,
               std::string relative_path, FilePlan& file_plan) {
  std::vector<size_t> order = members;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return precedes_in_reference_order(tensors[a].dtype, tensors[a].name, tensors[b].dtype,
                                       tensors[b].name);
  });
  std::vector<SafetensorsEntry> entries;
  entries.reserve(order.size());
  uint64_t offset = 0;
  for (size_t index : order) {
    SafetensorsEntry entry;
    entry.name = tensors[index].name;
    entry.dtype = tensors[index].dtype;
    entry.shape = tensors[index].shape;
    entry.data_begin = offset;
    offset += sizes[index];
    entry.data_end = offset;
    entries.push_back(std::move(entry));
  }
  std::string prefix = serialize_header(entries, metadata);
  const auto file = static_cast<uint32_t>(file_plan.files.size());
  for (size_t i = 0; i < order.size(); ++i)
    file_plan.placements.push_back({order[i], file, prefix.size() + entries[i].data_begin});
  PlannedFile output;
  output.relative_path = std::move(relative_path);
  output.size_bytes = prefix.size() + offset;
  output.literals.push_back({0, std::move(prefix)});
  file_plan.files.push_back(std::move(output));
}

// Python's json.dumps string escaping with ensure_ascii=True: everything outside printable
// ASCII becomes \uXXXX (lowercase hex, UTF-16 surrogate pairs above U+FFFF). `text` must be
// valid UTF-8.
void append_python_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto append_unit = [&](uint32_t unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 15];
  };
  out += '"';
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    uint32_t code = bytes[i];
    size_t length = 1;
    if (code >= 0xf0) {
      code = ((code & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) |
             (bytes[i + 3] & 0x3f);
      length = 4;
    } else if (code >= 0xe0) {
      code = ((code & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      length = 3;
    } else if (code >= 0xc0) {
      code = ((code & 0x1f) << 6) | (bytes[i + 1] & 0x3f);
      length = 2;
    }
    i += length;
    switch (code) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\r':
        out += "\\r";
        continue;
      default:
        break;
    }
    if (code >= 0x20 && code < 0x7f) {
      out += static_cast<char>(code);
    } else if (code > 0xffff) {
      code -= 0x10000;
      append_unit(0xd800 | (code >> 10));
      append_unit(0xdc00 | (code & 0x3ff));
    } else {
      append_unit(code);
    }
  }
  out += '"';
}

std::string shard_name(const std::string& stem, size_t number, size_t count) {
  char suffix[64];
  std::snprintf(suffix, sizeof suffix, "-%05zu-of-%05zu", number, count);
  return stem + suffix + ".safetensors";
}

}  // namespace

std::vector<std::vector<size_t>> split_into_shards(const std::vector<uint64_t>& sizes_bytes,
                                                   uint64_t max_shard_size_bytes) {
  std::vector<std::vector<size_t>> shards;
  std::vector<size_t> open_shard;
  uint64_t open_size = 0;
  for (size_t index = 0; index < sizes_bytes.size(); ++index) {
    const uint64_t size = sizes_bytes[index];
    if (size > max_shard_size_bytes) {
      shards.push_back({index});
      continue;
    }
    if (open_size + size > max_shard_size_bytes) {  // both <= max, no overflow
      shards.push_back(std::move(open_shard));
      open_shard.clear();
      open_size = 0;
    }
    open_shard.push_back(index);
    open_size += size;
  }
  if (!open_shard.empty()) shards.push_back(std::move(open_shard));
  return shards;
}

std::string serialize_safetensors_index(const std::map<std::string, std::string>& weight_map,
                                        uint64_t total_parameters, uint64_t total_size_bytes) {
  std::string json =
      "{\n  \"metadata\": {\n    \"total_parameters\": " + std::to_string(total_parameters) +
      ",\n    \"total_size\": " + std::to_string(total_size_bytes) + "\n  },\n  \"weight_map\": {";
  // std::map orders by bytes, which for UTF-8 is code point order, as Python's sort_keys.
  bool first = true;
  for (const auto& [name, file] : weight_map) {
    json += first ? "\n    " : ",\n    ";
    first = false;
    append_python_string(json, name);
    json += ": ";
    append_python_string(json, file);
  }
  json += weight_map.empty() ? "}\n}\n" : "\n  }\n}\n";
  return json;
}

FilePlan plan_safetensors(const std::vector<OutputTensorSpec>& tensors,
                          const SafetensorsWriteOptions& options) {
  std::vector<uint64_t> sizes;
  sizes.reserve(tensors.size());
  uint64_t total_size = 0;
  uint64_t total_parameters = 0;
  for (const OutputTensorSpec& tensor : tensors) {
    const std::string what = "output tensor '" + tensor.name + "'";
    if (find_invalid_utf8(tensor.name) != std::string_view::npos)
      fail_input(what + ": the name is not valid UTF-8, which safetensors requires");
    if (tensor.name == kSafetensorsMetadataKey)
      fail_input(what + ": the name is reserved by safetensors for the metadata");
    sizes.push_back(safetensors_tensor_bytes(tensor.dtype, tensor.shape, what));
    total_size += sizes.back();
    total_parameters += static_cast<uint64_t>(num_elements(tensor.shape));
  }
  std::vector<size_t> by_name(tensors.size());
  std::iota(by_name.begin(), by_name.end(), size_t{0});
  std::sort(by_name.begin(), by_name.end(),
            [&](size_t a, size_t b) { return tensors[a].name < tensors[b].name; });
  for (size_t i = 1; i < by_name.size(); ++i)
    if (tensors[by_name[i]].name == tensors[by_name[i - 1]].name)
      fail(ErrorKind::kInternal,
           "output tensor '" + tensors[by_name[i]].name + "' is planned twice");

  std::optional<std::map<std::string, std::string>> metadata;
  if (!options.metadata.empty()) metadata = options.metadata;

  std::vector<std::vector<size_t>> shards;
  if (options.max_shard_size_bytes)
    shards = split_into_shards(sizes, *options.max_shard_size_bytes);
  FilePlan file_plan;
  if (shards.size() <= 1) {
    std::vector<size_t> all(tensors.size());
    std::iota(all.begin(), all.end(), size_t{0});
    plan_file(tensors, sizes, all, metadata, options.file_stem + ".safetensors", file_plan);
    return file_plan;
  }

  std::map<std::string, std::string> weight_map;
  for (size_t shard = 0; shard < shards.size(); ++shard) {
    std::string name = shard_name(options.file_stem, shard + 1, shards.size());
    for (size_t index : shards[shard]) weight_map.emplace(tensors[index].name, name);
    plan_file(tensors, sizes, shards[shard], metadata, std::move(name), file_plan);
  }
  PlannedFile index;
  index.relative_path = options.file_stem + ".safetensors.index.json";
  std::string json = serialize_safetensors_index(weight_map, total_parameters, total_size);
  index.size_bytes = json.size();
  index.literals.push_back({0, std::move(json)});
  file_plan.files.push_back(std::move(index));
  return file_plan;
}

}  // namespace ckconv
