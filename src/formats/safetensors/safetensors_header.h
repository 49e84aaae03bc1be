// The header of one .safetensors file: its entries, limits, and parsing. Parsing treats
// every byte as untrusted and checks everything the reference reader checks plus duplicate
// keys (strict_json.h). Writing a header: safetensors_header_writer.h; the index of a
// sharded checkpoint: safetensors_index.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"

namespace ckconv {

// The reference library refuses headers above this size (`MAX_HEADER_SIZE` in tensor.rs).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Width of the little-endian header length that opens every file.
inline constexpr uint64_t kSafetensorsLengthPrefixBytes = 8;
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

// The reference writer's tensor order: dtype rank descending, then name bytes ascending.
bool precedes_in_reference_order(DType dtype_a, std::string_view name_a, DType dtype_b,
                                 std::string_view name_b);

}  // namespace ckconv
