// The two JSON documents of a safetensors checkpoint: the header of one .safetensors file
// (spec/formats.md §1) and the model.safetensors.index.json of a sharded one (§2.1).
// Parsing treats every byte as untrusted and checks everything the reference reader checks
// (§1.5) plus duplicate keys; serialising reproduces the reference writer byte for byte (§1.2).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace ckconv {

// The reference library refuses headers above this size (`MAX_HEADER_SIZE` in tensor.rs).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Width of the little-endian header length that opens every file.
inline constexpr uint64_t kSafetensorsLengthPrefixBytes = 8;
// An index lists one line per tensor; 100 MB is ~1M tensors, far beyond any real model.
inline constexpr uint64_t kMaxSafetensorsIndexBytes = 100'000'000;
// Deepest JSON nesting accepted; the schema needs 3, unknown extra fields may nest a little.
inline constexpr int kMaxSafetensorsJsonDepth = 64;
// The header's reserved key for string metadata, and the file name suffix of a shard.
inline constexpr std::string_view kSafetensorsMetadataKey = "__metadata__";
inline constexpr std::string_view kSafetensorsSuffix = ".safetensors";

// Whether `name` ends in ".safetensors" after at least one other character.
inline bool has_safetensors_suffix(std::string_view name) {
  return name.size() > kSafetensorsSuffix.size() && name.ends_with(kSafetensorsSuffix);
}

// One tensor as a header describes it. Offsets are relative to the data section.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;  // as stored: for F4 the last dim already counts 4-bit values
  uint64_t data_begin = 0;
  uint64_t data_end = 0;
  uint64_t size_bytes() const { return data_end - data_begin; }
};

struct SafetensorsHeader {
  uint64_t header_size_bytes = 0;                              // N: the JSON including its padding
  std::optional<std::map<std::string, std::string>> metadata;  // absent without __metadata__
  // Sorted by (data_begin, data_end), ties by dtype rank descending then name: for a file
  // from the reference writer this is exactly the order it wrote.
  std::vector<SafetensorsEntry> tensors;
  uint64_t data_size_bytes = 0;  // end of the last tensor

  uint64_t data_section_offset() const { return kSafetensorsLengthPrefixBytes + header_size_bytes; }
};

// Bytes needed for `shape` of `dtype`: numel * bits / 8. Throws kBadInput naming `what` on a
// negative dim, an oversized tensor (core/shape.h kMaxTensorBytes), or a sub-byte tensor
// whose bit count is not a whole number of bytes.
uint64_t safetensors_tensor_bytes(DType dtype, const Shape& shape, const std::string& what);

// Offset of the first byte of `text` that is not valid UTF-8 (as Rust's str::from_utf8
// judges it: no overlong forms, surrogates or code points above U+10FFFF), or npos.
size_t find_invalid_utf8(std::string_view text);

// Validates a whole file image (length prefix, header, data section size); `where` names
// the file in messages. For tests and fuzzers; real files go through read_safetensors_header.
SafetensorsHeader parse_safetensors_file_bytes(std::string_view file_bytes,
                                               const std::string& where);

// Parses the N header bytes of a file that is `file_size_bytes` long, checking that the
// tensors exactly fill the data section. Every failure is kBadInput naming `where`, the
// tensor, and what was expected against what was found.
SafetensorsHeader parse_safetensors_header(std::string_view header_bytes, uint64_t file_size_bytes,
                                           const std::string& where);

// Reads only the length prefix and the header of `path`; never touches tensor data.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// The bytes before the data section exactly as `safetensors.torch.save_file(tensors, path,
// metadata)` writes them: u64 LE length, then compact JSON with `__metadata__` first (only
// when given; with two or more keys the reference order is random, this emits name order),
// tensors in the given order with fields dtype/shape/data_offsets, serde_json escaping, and
// space padding to a multiple of 8. `tensors` must already be in reference order with
// cumulative offsets (see sort_in_reference_order).
std::string serialize_header(const std::vector<SafetensorsEntry>& tensors,
                             const std::optional<std::map<std::string, std::string>>& metadata);

// The reference writer's tensor order: dtype rank descending, then name bytes ascending.
bool precedes_in_reference_order(DType dtype_a, std::string_view name_a, DType dtype_b,
                                 std::string_view name_b);

// model.safetensors.index.json after its JSON shape was checked: weight_map entries sorted
// by tensor name, every file a plain `*.safetensors` name (no directory part).
struct SafetensorsIndex {
  std::optional<uint64_t> total_size_bytes;
  std::vector<std::pair<std::string, std::string>> weight_map;  // tensor name -> file name
};

// Parses an index document; kBadInput naming `where` for bad JSON, duplicate keys, a
// missing or non-object weight_map, a non-string or unsafe file name, a bad total_size.
SafetensorsIndex parse_safetensors_index(std::string_view json_text, const std::string& where);

}  // namespace ckconv
