// Safetensors output planning: reference-writer files, HF sharding and the index JSON.
#include "formats/safetensors/safetensors_writer.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>

#include "core/error.h"
#include "formats/safetensors/safetensors_header.h"

namespace ckconv {
namespace {

// One file's part of the plan: reference order, offsets and header bytes for `members`.
void plan_file(const std::vector<OutputTensorSpec>& tensors, const std::vector<uint64_t>& sizes,
               const std::vector<size_t>& members,
               const std::optional<std::map<std::string, std::string>>& metadata,
               std::string relative_path, OutputLayout& layout) {
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
  const auto file = static_cast<uint32_t>(layout.files.size());
  for (size_t i = 0; i < order.size(); ++i)
    layout.placements.push_back({order[i], file, prefix.size() + entries[i].data_begin});
  OutputFile output;
  output.relative_path = std::move(relative_path);
  output.size_bytes = prefix.size() + offset;
  output.literals.push_back({0, std::move(prefix)});
  layout.files.push_back(std::move(output));
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

[[noreturn]] void fail_size(std::string_view text) {
  fail(ErrorKind::kUsage, "invalid size '" + std::string(text) +
                              "': expected a byte count with an optional unit, e.g. 5GB, "
                              "500MB, 100KB, 2GiB or 123");
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

OutputLayout plan_safetensors(const std::vector<OutputTensorSpec>& tensors,
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
  OutputLayout layout;
  if (shards.size() <= 1) {
    std::vector<size_t> all(tensors.size());
    std::iota(all.begin(), all.end(), size_t{0});
    plan_file(tensors, sizes, all, metadata, options.file_stem + ".safetensors", layout);
    return layout;
  }

  std::map<std::string, std::string> weight_map;
  for (size_t shard = 0; shard < shards.size(); ++shard) {
    std::string name = shard_name(options.file_stem, shard + 1, shards.size());
    for (size_t index : shards[shard]) weight_map.emplace(tensors[index].name, name);
    plan_file(tensors, sizes, shards[shard], metadata, std::move(name), layout);
  }
  OutputFile index;
  index.relative_path = options.file_stem + ".safetensors.index.json";
  std::string json = serialize_safetensors_index(weight_map, total_parameters, total_size);
  index.size_bytes = json.size();
  index.literals.push_back({0, std::move(json)});
  layout.files.push_back(std::move(index));
  return layout;
}

uint64_t parse_size(std::string_view text) {
  const std::string_view original = text;
  auto trim = [](std::string_view view) {
    while (!view.empty() && view.front() == ' ') view.remove_prefix(1);
    while (!view.empty() && view.back() == ' ') view.remove_suffix(1);
    return view;
  };
  text = trim(text);
  size_t digits_end = 0;
  while (digits_end < text.size() && text[digits_end] >= '0' && text[digits_end] <= '9')
    ++digits_end;
  std::string_view whole = text.substr(0, digits_end);
  std::string_view fraction;
  size_t number_end = digits_end;
  if (number_end < text.size() && text[number_end] == '.') {
    size_t fraction_end = number_end + 1;
    while (fraction_end < text.size() && text[fraction_end] >= '0' && text[fraction_end] <= '9')
      ++fraction_end;
    fraction = text.substr(number_end + 1, fraction_end - number_end - 1);
    number_end = fraction_end;
  }
  if (whole.empty() && fraction.empty()) fail_size(original);
  if (fraction.size() > 18) fail_size(original);

  std::string unit(trim(text.substr(number_end)));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},
      {"B", 1},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
      {"KIB", uint64_t{1} << 10},
      {"MIB", uint64_t{1} << 20},
      {"GIB", uint64_t{1} << 30},
      {"TIB", uint64_t{1} << 40},
  };
  auto unit_it = kUnits.find(unit);
  if (unit_it == kUnits.end()) fail_size(original);
  const uint64_t multiplier = unit_it->second;
  if (multiplier == 1 && !fraction.empty()) fail_size(original);  // no fractional bytes

  // value = floor((whole + fraction) * multiplier), exact in 128-bit arithmetic.
  using u128 = unsigned __int128;
  const u128 limit = ~uint64_t{0};
  u128 value = 0;
  for (char c : whole) {
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > limit) fail(ErrorKind::kUsage, "size '" + std::string(original) + "' is too large");
  }
  value *= multiplier;
  if (value > limit) fail(ErrorKind::kUsage, "size '" + std::string(original) + "' is too large");
  u128 numerator = 0, denominator = 1;
  for (char c : fraction) {
    numerator = numerator * 10 + static_cast<unsigned>(c - '0');
    denominator *= 10;
  }
  value += numerator * multiplier / denominator;
  if (value > limit) fail(ErrorKind::kUsage, "size '" + std::string(original) + "' is too large");
  if (value == 0) fail(ErrorKind::kUsage, "size '" + std::string(original) + "' must be positive");
  return static_cast<uint64_t>(value);
}

}  // namespace ckconv
