// Parsing the header of one safetensors file: the length prefix, then the JSON through the
// strict JSON routine into a single-pass builder that checks the schema, then the tiling of
// the data section. Every byte is untrusted.
#include "formats/safetensors/safetensors_header.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "formats/catalog.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

using Json = nlohmann::json;

uint64_t read_u64_le(const unsigned char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

void check_header_length(uint64_t header_size, uint64_t file_size, const std::string& where) {
  if (file_size < kSafetensorsLengthPrefixBytes)
    fail_input(where + ": file is " + std::to_string(file_size) +
               " bytes, too short for the 8-byte header length (truncated or not safetensors)");
  if (header_size > kMaxSafetensorsHeaderBytes)
    fail_input(where + ": header length is " + std::to_string(header_size) +
               " bytes, above the limit of " + std::to_string(kMaxSafetensorsHeaderBytes) +
               " (corrupt or not safetensors)");
  if (header_size > file_size - kSafetensorsLengthPrefixBytes)
    fail_input(where + ": header length is " + std::to_string(header_size) + " bytes but only " +
               std::to_string(file_size - kSafetensorsLengthPrefixBytes) +
               " bytes follow the length (truncated or not safetensors)");
}

// One JSON value as the SAX parser reports it, enough to use it or to describe it.
struct SaxValue {
  enum Kind { kNull, kBoolean, kNegative, kUnsigned, kFloat, kString, kObject, kArray } kind;
  uint64_t unsigned_value = 0;
  int64_t negative_value = 0;
  const std::string* text = nullptr;  // string contents, or the float's literal

  std::string describe() const {
    switch (kind) {
      case kNull:
        return "null";
      case kBoolean:
        return "boolean";
      case kNegative:
        return "number " + std::to_string(negative_value);
      case kUnsigned:
        return "number " + std::to_string(unsigned_value);
      case kFloat:
        return "number " + *text;
      case kString: {
        std::string shown = text->size() > 40 ? text->substr(0, 40) + "..." : *text;
        return "string " + quote_untrusted_name(shown);
      }
      case kObject:
        return "object";
      case kArray:
        return "array";
    }
    return "value";
  }
};

// Builds a header's entries in one SAX pass, checking the schema (docs/formats.md "What the reader
// checks") as values arrive: a DOM would allocate a node per value and is several times slower on
// 100k-tensor headers. Fields of a tensor entry other than dtype/shape/data_offsets are skipped, as
// serde does. Throws kBadInput naming `where` and the tensor on the first problem. Depth limits and
// duplicate keys are checked by parse_strict_json, which feeds it.
class HeaderBuilder final : public nlohmann::json_sax<Json> {
 public:
  explicit HeaderBuilder(const std::string& where) : where_(where) {}

  std::optional<std::map<std::string, std::string>> metadata;
  std::vector<SafetensorsEntry> tensors;

  // nlohmann SAX interface.
  bool null() override { return value({SaxValue::kNull}); }
  bool boolean(bool) override { return value({SaxValue::kBoolean}); }
  bool number_integer(number_integer_t number) override {
    if (number >= 0) return number_unsigned(static_cast<uint64_t>(number));
    SaxValue negative{SaxValue::kNegative};
    negative.negative_value = number;
    return value(negative);
  }
  bool number_unsigned(number_unsigned_t number) override {
    SaxValue unsigned_number{SaxValue::kUnsigned};
    unsigned_number.unsigned_value = number;
    return value(unsigned_number);
  }
  bool number_float(number_float_t, const std::string& literal) override {
    SaxValue float_number{SaxValue::kFloat};
    float_number.text = &literal;
    return value(float_number);
  }
  bool string(std::string& text) override {
    SaxValue string_value{SaxValue::kString};
    string_value.text = &text;
    return value(string_value);
  }
  bool binary(binary_t&) override { return value({SaxValue::kNull}); }  // JSON text has none
  bool start_object(std::size_t) override { return value({SaxValue::kObject}); }
  bool start_array(std::size_t) override { return value({SaxValue::kArray}); }
  bool key(std::string& key) override {
    switch (contexts_.back()) {
      case Context::kTop:
        if (key == kSafetensorsMetadataKey) {
          slot_ = Slot::kMetadata;
        } else {
          draft_ = Draft{};
          draft_.entry.name = key;
          slot_ = Slot::kTensor;
        }
        break;
      case Context::kMetadata:
        metadata_key_ = key;
        break;
      case Context::kTensor:
        draft_.fields.push_back(key);
        slot_ = key == "dtype"          ? Slot::kDtype
                : key == "shape"        ? Slot::kShape
                : key == "data_offsets" ? Slot::kOffsets
                                        : Slot::kIgnored;
        break;
      default:
        break;  // keys inside skipped values
    }
    return true;
  }
  bool end_object() override { return leave(); }
  bool end_array() override { return leave(); }
  // parse_strict_json reports syntax errors itself and does not forward them.
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  enum class Context { kDocument, kTop, kMetadata, kTensor, kShape, kOffsets, kSkipped };
  enum class Slot { kMetadata, kTensor, kDtype, kShape, kOffsets, kIgnored };
  struct Draft {
    SafetensorsEntry entry;
    std::vector<std::string> fields;
    std::vector<uint64_t> offsets;
  };

  std::string tensor_what() const {
    return where_ + ": tensor " + quote_untrusted_name(draft_.entry.name);
  }

  bool value(const SaxValue& value) {
    const bool opens = value.kind == SaxValue::kObject || value.kind == SaxValue::kArray;
    switch (contexts_.back()) {
      case Context::kDocument:
        if (value.kind != SaxValue::kObject)
          fail_input(where_ + ": header must be a JSON object, found " + value.describe());
        contexts_.push_back(Context::kTop);
        break;
      case Context::kTop:
        if (slot_ == Slot::kMetadata) {
          if (value.kind != SaxValue::kObject)
            fail_input(where_ + ": __metadata__ must be an object of strings, found " +
                       value.describe());
          metadata.emplace();
          contexts_.push_back(Context::kMetadata);
        } else {
          if (value.kind != SaxValue::kObject)
            fail_input(tensor_what() +
                       ": expected an object with dtype, shape and data_offsets, found " +
                       value.describe());
          contexts_.push_back(Context::kTensor);
        }
        break;
      case Context::kMetadata:
        if (value.kind != SaxValue::kString)
          fail_input(where_ + ": __metadata__ value of " + quote_untrusted_name(metadata_key_) +
                     " must be a string, found " + value.describe());
        metadata->emplace(metadata_key_, *value.text);
        break;
      case Context::kTensor:
        tensor_field(value);
        break;
      case Context::kShape: {
        const uint64_t dim = array_integer(value, "shape must hold non-negative integers");
        if (dim > static_cast<uint64_t>(kMaxTensorBytes))
          fail_input(tensor_what() + ": shape dimension " + std::to_string(dim) + " is too large");
        check_tensor_rank(draft_.entry.shape.size() + 1, tensor_what());
        draft_.entry.shape.push_back(static_cast<int64_t>(dim));
        break;
      }
      case Context::kOffsets:
        draft_.offsets.push_back(array_integer(value, offsets_message()));
        if (draft_.offsets.size() > 2) fail_input(tensor_what() + ": " + offsets_message());
        break;
      case Context::kSkipped:
        if (opens) contexts_.push_back(Context::kSkipped);
        break;
    }
    return true;
  }

  void tensor_field(const SaxValue& value) {
    switch (slot_) {
      case Slot::kDtype: {
        if (value.kind != SaxValue::kString)
          fail_input(tensor_what() + ": dtype must be a string, found " + value.describe());
        auto dtype = dtype_from_name(*value.text);
        if (!dtype)
          fail_input(tensor_what() + ": unknown dtype " + quote_untrusted_name(*value.text) +
                     " (expected one of BOOL, U8, I8, F8_*, I16, U16, F16, BF16, I32, U32, F32, "
                     "C64, F64, I64, U64, F4, F6_*)");
        draft_.entry.dtype = *dtype;
        break;
      }
      case Slot::kShape:
        if (value.kind != SaxValue::kArray)
          fail_input(tensor_what() + ": shape must be an array of non-negative integers, found " +
                     value.describe());
        contexts_.push_back(Context::kShape);
        break;
      case Slot::kOffsets:
        if (value.kind != SaxValue::kArray)
          fail_input(tensor_what() + ": " + offsets_message() + ", found " + value.describe());
        contexts_.push_back(Context::kOffsets);
        break;
      default:
        if (value.kind == SaxValue::kObject || value.kind == SaxValue::kArray)
          contexts_.push_back(Context::kSkipped);
        break;
    }
  }

  static std::string offsets_message() {
    return "data_offsets must be [begin, end] with non-negative integers";
  }

  uint64_t array_integer(const SaxValue& value, const std::string& message) {
    if (value.kind != SaxValue::kUnsigned)
      fail_input(tensor_what() + ": " + message + ", found " + value.describe());
    return value.unsigned_value;
  }

  bool leave() {
    const Context closed = contexts_.back();
    contexts_.pop_back();
    if (closed == Context::kOffsets && draft_.offsets.size() != 2)
      fail_input(tensor_what() + ": " + offsets_message() + ", found " +
                 std::to_string(draft_.offsets.size()) + " numbers");
    if (closed == Context::kTensor) finish_tensor();
    return true;
  }

  // Runs once per tensor: messages are only built on failure.
  void finish_tensor() {
    check_tensor_count(tensors.size() + 1, where_ + ": header");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (std::find(draft_.fields.begin(), draft_.fields.end(), field) == draft_.fields.end())
        fail_input(tensor_what() + ": missing field \"" + field + "\"");
    SafetensorsEntry& entry = draft_.entry;
    entry.data_begin = draft_.offsets[0];
    entry.data_end = draft_.offsets[1];
    if (entry.data_end >= entry.data_begin && fits_exactly(entry)) {
      tensors.push_back(std::move(entry));
      return;
    }
    const std::string what = tensor_what();
    if (entry.data_end < entry.data_begin)
      fail_input(what + ": data_offsets [" + std::to_string(entry.data_begin) + ", " +
                 std::to_string(entry.data_end) + "] end before they begin");
    const uint64_t expected = safetensors_tensor_bytes(entry.dtype, entry.shape, what);
    if (entry.size_bytes() != expected)
      fail_input(what + ": shape " + shape_to_string(entry.shape) + " of " +
                 std::string(dtype_name(entry.dtype)) + " needs " + std::to_string(expected) +
                 " bytes, but data_offsets [" + std::to_string(entry.data_begin) + ", " +
                 std::to_string(entry.data_end) + "] span " + std::to_string(entry.size_bytes()));
    tensors.push_back(std::move(entry));
  }

  // The byte count matches shape x dtype; false also for any shape safetensors_tensor_bytes
  // refuses, which then throws the precise message.
  static bool fits_exactly(const SafetensorsEntry& entry) {
    int64_t count = 1;
    for (int64_t dim : entry.shape)
      if (mul_overflows(count, dim, &count) || count > kMaxTensorBytes) return false;
    const uint64_t bits = static_cast<uint64_t>(count) * dtype_bits(entry.dtype);
    return bits % 8 == 0 && bits / 8 <= static_cast<uint64_t>(kMaxTensorBytes) &&
           bits / 8 == entry.size_bytes();
  }

  const std::string& where_;
  std::vector<Context> contexts_ = {Context::kDocument};
  Slot slot_ = Slot::kIgnored;
  std::string metadata_key_;
  Draft draft_;
};

}  // namespace

uint64_t safetensors_tensor_bytes(DType dtype, const Shape& shape, const std::string& what) {
  const int64_t count = checked_num_elements(shape, what);
  // count <= 2^50 and bits <= 64, so the product fits comfortably.
  const uint64_t bits = static_cast<uint64_t>(count) * static_cast<uint64_t>(dtype_bits(dtype));
  if (bits % 8 != 0)
    fail_input(what + ": shape " + shape_to_string(shape) + " of " +
               std::string(dtype_name(dtype)) + " holds " + std::to_string(bits) +
               " bits, not a whole number of bytes");
  if (bits / 8 > static_cast<uint64_t>(kMaxTensorBytes))
    fail_input(what + ": shape " + shape_to_string(shape) + " is too large");
  return bits / 8;
}

bool precedes_in_reference_order(DType dtype_a, std::string_view name_a, DType dtype_b,
                                 std::string_view name_b) {
  if (dtype_a != dtype_b) return dtype_sort_rank(dtype_a) > dtype_sort_rank(dtype_b);
  return name_a < name_b;  // string_view compares bytes as unsigned char, like Rust's str
}

SafetensorsHeader parse_safetensors_header(std::string_view header_bytes, uint64_t file_size_bytes,
                                           const std::string& where) {
  check_header_length(header_bytes.size(), file_size_bytes, where);
  SafetensorsHeader header;
  header.header_size_bytes = header_bytes.size();

  HeaderBuilder builder(where);
  parse_strict_json(header_bytes, where + ": header",
                    {kMaxSafetensorsHeaderBytes, kMaxSafetensorsJsonDepth}, &builder);
  header.metadata = std::move(builder.metadata);
  header.tensors = std::move(builder.tensors);

  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
              if (a.data_begin != b.data_begin) return a.data_begin < b.data_begin;
              if (a.data_end != b.data_end) return a.data_end < b.data_end;
              return precedes_in_reference_order(a.dtype, a.name, b.dtype, b.name);
            });
  // The data section must be tiled exactly: each tensor starts where the previous ends.
  uint64_t expected_begin = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& entry : header.tensors) {
    if (entry.data_begin != expected_begin) {
      const std::string what = where + ": tensor " + quote_untrusted_name(entry.name) +
                               ": data_offsets [" + std::to_string(entry.data_begin) + ", " +
                               std::to_string(entry.data_end) + "]";
      if (previous == nullptr)
        fail_input(what + " leave a hole: the first tensor must start at offset 0");
      if (entry.data_begin > expected_begin)
        fail_input(what + " leave a hole of " + std::to_string(entry.data_begin - expected_begin) +
                   " bytes after tensor " + quote_untrusted_name(previous->name) +
                   ", which ends at " + std::to_string(expected_begin));
      fail_input(what + " overlap tensor " + quote_untrusted_name(previous->name) +
                 ", which ends at " + std::to_string(expected_begin));
    }
    expected_begin = entry.data_end;
    previous = &entry;
  }
  header.data_size_bytes = expected_begin;

  const uint64_t available = file_size_bytes - header.data_section_offset();
  if (header.data_size_bytes > available)
    fail_input(where + ": the tensors need " + std::to_string(header.data_size_bytes) +
               " data bytes after the header, but the file has " + std::to_string(available) +
               " (truncated)");
  if (header.data_size_bytes < available)
    fail_input(where + ": " + std::to_string(available - header.data_size_bytes) +
               " trailing bytes after the last tensor (expected the file to end at byte " +
               std::to_string(header.data_section_offset() + header.data_size_bytes) + ")");
  return header;
}

SafetensorsHeader parse_safetensors_file_bytes(std::string_view file_bytes,
                                               const std::string& where) {
  const uint64_t file_size = file_bytes.size();
  if (file_size < kSafetensorsLengthPrefixBytes) check_header_length(0, file_size, where);
  const uint64_t header_size =
      read_u64_le(reinterpret_cast<const unsigned char*>(file_bytes.data()));
  check_header_length(header_size, file_size, where);
  return parse_safetensors_header(file_bytes.substr(kSafetensorsLengthPrefixBytes, header_size),
                                  file_size, where);
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string where = path.string();
  File file = File::open_read(path);
  const uint64_t file_size = file.size();
  if (file_size < kSafetensorsLengthPrefixBytes) check_header_length(0, file_size, where);
  unsigned char prefix[kSafetensorsLengthPrefixBytes];
  file.read_at(prefix, sizeof prefix, 0);
  const uint64_t header_size = read_u64_le(prefix);
  check_header_length(header_size, file_size, where);
  std::string header_bytes(header_size, '\0');
  file.read_at(header_bytes.data(), header_bytes.size(), kSafetensorsLengthPrefixBytes);
  return parse_safetensors_header(header_bytes, file_size, where);
}

}  // namespace ckconv
