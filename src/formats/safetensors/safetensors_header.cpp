// Safetensors header and index JSON: strict parsing of untrusted bytes and the reference
// writer's serialisation (spec/formats.md §1.2, §1.5, §2.1).
#include "formats/safetensors/safetensors_header.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"
#include "core/file.h"
#include "formats/catalog.h"

namespace ckconv {
namespace {

using Json = nlohmann::json;

// A name from an untrusted file, quoted for a message: control bytes become \xNN so a
// hostile name cannot forge lines in the terminal.
std::string quote_name(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

// For the index (headers have their own single-pass HeaderBuilder below): a SAX pass that
// finds what nlohmann's DOM parser would accept silently: duplicate object keys (the README
// forbids them; serde keeps the last one, so two readers could disagree on a file) and
// nesting deeper than kMaxSafetensorsJsonDepth. Each object's keys are sorted once at its
// end: O(n log n). (nlohmann's callback parser could do this while building the DOM, but it
// rescans the parent object at every inner object end: quadratic.)
class StrictJsonCheck {
 public:
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(Json::number_integer_t) { return true; }
  bool number_unsigned(Json::number_unsigned_t) { return true; }
  bool number_float(Json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(Json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    keys_per_level_.emplace_back();
    return enter();
  }
  bool key(std::string& key) {
    keys_per_level_.back().push_back(key);
    return true;
  }
  bool end_object() {
    std::vector<std::string>& keys = keys_per_level_.back();
    if (keys.size() > 1) {
      std::sort(keys.begin(), keys.end());
      auto duplicate = std::adjacent_find(keys.begin(), keys.end());
      if (duplicate != keys.end()) {
        problem_ = " has the key " + quote_name(*duplicate) +
                   " twice; duplicate keys are not allowed (readers would disagree on which wins)";
        return false;
      }
    }
    keys_per_level_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) { return enter(); }
  bool end_array() {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
    problem_ = std::string(" is not valid JSON: ") + error.what();
    return false;
  }
  const std::string& problem() const { return problem_; }

 private:
  bool enter() {
    if (++depth_ <= kMaxSafetensorsJsonDepth) return true;
    problem_ = " nests JSON deeper than " + std::to_string(kMaxSafetensorsJsonDepth) + " levels";
    return false;
  }
  std::vector<std::vector<std::string>> keys_per_level_;
  int depth_ = 0;
  std::string problem_;
};

// Parses JSON after StrictJsonCheck accepted it; `what` starts every message.
Json parse_strict_json(std::string_view text, const std::string& what) {
  // nlohmann's lexer takes a NUL byte for the end of input, which would hide whatever
  // follows; JSON has no place for a raw NUL, so refuse it up front.
  const size_t nul = text.find('\0');
  if (nul != std::string_view::npos)
    fail_input(what + " is not valid JSON: NUL byte at offset " + std::to_string(nul));
  StrictJsonCheck check;
  if (!Json::sax_parse(text.begin(), text.end(), &check)) fail_input(what + check.problem());
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {  // unreachable after the check, kept for safety
    fail_input(what + " is not valid JSON: " + e.what());
  }
}

// A JSON non-negative integer; serde refuses floats and negatives for usize fields.
std::optional<uint64_t> as_unsigned(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<uint64_t>();
  return std::nullopt;
}

std::string describe(const Json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(value.type_name()) + " " + text;
}

void append_number(std::string& out, uint64_t value) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

// serde_json's escaping (spec §1.2 table): quote, backslash and control characters only;
// everything else, non-ASCII included, is copied raw.
void append_serde_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

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
        return "string " + quote_name(shown);
      }
      case kObject:
        return "object";
      case kArray:
        return "array";
    }
    return "value";
  }
};

// Builds a header's entries in one SAX pass, checking the schema (§1.5) as values arrive:
// a DOM would allocate a node per value and is several times slower on 100k-tensor headers.
// Fields of a tensor entry other than dtype/shape/data_offsets are skipped, as serde does.
// Throws kBadInput naming `where` and the tensor on the first problem.
class HeaderBuilder {
 public:
  explicit HeaderBuilder(const std::string& where) : where_(where) {}

  std::optional<std::map<std::string, std::string>> metadata;
  std::vector<SafetensorsEntry> tensors;

  // nlohmann SAX interface.
  bool null() { return value({SaxValue::kNull}); }
  bool boolean(bool) { return value({SaxValue::kBoolean}); }
  bool number_integer(Json::number_integer_t number) {
    if (number >= 0) return number_unsigned(static_cast<uint64_t>(number));
    SaxValue negative{SaxValue::kNegative};
    negative.negative_value = number;
    return value(negative);
  }
  bool number_unsigned(Json::number_unsigned_t number) {
    SaxValue unsigned_number{SaxValue::kUnsigned};
    unsigned_number.unsigned_value = number;
    return value(unsigned_number);
  }
  bool number_float(Json::number_float_t, const std::string& literal) {
    SaxValue float_number{SaxValue::kFloat};
    float_number.text = &literal;
    return value(float_number);
  }
  bool string(std::string& text) {
    SaxValue string_value{SaxValue::kString};
    string_value.text = &text;
    return value(string_value);
  }
  bool binary(Json::binary_t&) { return value({SaxValue::kNull}); }  // JSON text has none
  bool start_object(std::size_t) {
    enter();
    return value({SaxValue::kObject});
  }
  bool start_array(std::size_t) {
    enter();
    return value({SaxValue::kArray});
  }
  bool key(std::string& key) {
    switch (contexts_.back()) {
      case Context::kTop:
        if (key == kSafetensorsMetadataKey) {
          if (metadata) fail_input(where_ + ": header has the key '__metadata__' twice");
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
        for (const std::string& seen : draft_.fields)
          if (seen == key)
            fail_input(tensor_what() + ": has the key " + quote_name(key) + " twice");
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
  bool end_object() { return leave(); }
  bool end_array() { return leave(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) {
    fail_input(where_ + ": header is not valid JSON: " + error.what());
  }

 private:
  enum class Context { kDocument, kTop, kMetadata, kTensor, kShape, kOffsets, kSkipped };
  enum class Slot { kMetadata, kTensor, kDtype, kShape, kOffsets, kIgnored };
  struct Draft {
    SafetensorsEntry entry;
    std::vector<std::string> fields;
    std::vector<uint64_t> offsets;
  };

  std::string tensor_what() const { return where_ + ": tensor " + quote_name(draft_.entry.name); }

  void enter() {
    if (++depth_ > kMaxSafetensorsJsonDepth)
      fail_input(where_ + ": header nests JSON deeper than " +
                 std::to_string(kMaxSafetensorsJsonDepth) + " levels");
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
          fail_input(where_ + ": __metadata__ value of " + quote_name(metadata_key_) +
                     " must be a string, found " + value.describe());
        if (!metadata->emplace(metadata_key_, *value.text).second)
          fail_input(where_ + ": header has the key " + quote_name(metadata_key_) +
                     " twice in __metadata__");
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
          fail_input(tensor_what() + ": unknown dtype " + quote_name(*value.text) +
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
    --depth_;
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
  int depth_ = 0;
  std::string metadata_key_;
  Draft draft_;
};

// A shard name must stay inside the checkpoint directory.
bool is_plain_shard_name(std::string_view name) {
  if (!has_safetensors_suffix(name)) return false;
  if (name.find_first_of(std::string_view("/\\\0", 3)) != std::string_view::npos) return false;
  return name != "." && name != "..";
}

// Python json writes integral totals as ints; a few tools wrote floats like 1234.0.
std::optional<uint64_t> as_whole_number(const Json& value) {
  if (auto integer = as_unsigned(value)) return integer;
  if (value.is_number_float()) {
    double number = value.get<double>();
    if (number >= 0 && number < 0x1p63 && std::floor(number) == number)
      return static_cast<uint64_t>(number);
  }
  return std::nullopt;
}

}  // namespace

size_t find_invalid_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xbf;  // allowed range of the second byte
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;   // overlong
      if (lead == 0xed) high = 0x9f;  // surrogates
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;   // overlong
      if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > size) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (size_t k = 2; k < length; ++k)
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xbf) return i;
    i += length;
  }
  return std::string_view::npos;
}

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

  const size_t bad = find_invalid_utf8(header_bytes);
  if (bad != std::string_view::npos)
    fail_input(where + ": header is not valid UTF-8 (byte " + std::to_string(bad) +
               " of the header)");
  if (header_bytes.find('\0') != std::string_view::npos)  // see parse_strict_json
    fail_input(where + ": header is not valid JSON: NUL byte at offset " +
               std::to_string(header_bytes.find('\0')));
  HeaderBuilder builder(where);
  Json::sax_parse(header_bytes.begin(), header_bytes.end(), &builder);
  header.metadata = std::move(builder.metadata);
  header.tensors = std::move(builder.tensors);
  // Tensor names are the top-level keys: a repeated one is a duplicate key.
  std::unordered_set<std::string_view> names;
  names.reserve(header.tensors.size());
  for (const SafetensorsEntry& entry : header.tensors)
    if (!names.insert(entry.name).second)
      fail_input(where + ": header has the key " + quote_name(entry.name) +
                 " twice; duplicate keys are not allowed (readers would disagree on which wins)");

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
      const std::string what = where + ": tensor " + quote_name(entry.name) + ": data_offsets [" +
                               std::to_string(entry.data_begin) + ", " +
                               std::to_string(entry.data_end) + "]";
      if (previous == nullptr)
        fail_input(what + " leave a hole: the first tensor must start at offset 0");
      if (entry.data_begin > expected_begin)
        fail_input(what + " leave a hole of " + std::to_string(entry.data_begin - expected_begin) +
                   " bytes after tensor " + quote_name(previous->name) + ", which ends at " +
                   std::to_string(expected_begin));
      fail_input(what + " overlap tensor " + quote_name(previous->name) + ", which ends at " +
                 std::to_string(expected_begin));
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

std::string serialize_header(const std::vector<SafetensorsEntry>& tensors,
                             const std::optional<std::map<std::string, std::string>>& metadata) {
  std::string json;
  json.reserve(64 + tensors.size() * 96);
  json += '{';
  bool first = true;
  if (metadata) {
    json += "\"__metadata__\":{";
    bool first_pair = true;
    for (const auto& [key, value] : *metadata) {
      if (!first_pair) json += ',';
      first_pair = false;
      append_serde_string(json, key);
      json += ':';
      append_serde_string(json, value);
    }
    json += '}';
    first = false;
  }
  for (const SafetensorsEntry& tensor : tensors) {
    if (!first) json += ',';
    first = false;
    append_serde_string(json, tensor.name);
    json += ":{\"dtype\":\"";
    json += dtype_name(tensor.dtype);
    json += "\",\"shape\":[";
    for (size_t d = 0; d < tensor.shape.size(); ++d) {
      if (d) json += ',';
      append_number(json, static_cast<uint64_t>(tensor.shape[d]));
    }
    json += "],\"data_offsets\":[";
    append_number(json, tensor.data_begin);
    json += ',';
    append_number(json, tensor.data_end);
    json += "]}";
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');

  std::string bytes(kSafetensorsLengthPrefixBytes, '\0');
  uint64_t length = json.size();
  for (size_t i = 0; i < kSafetensorsLengthPrefixBytes; ++i, length >>= 8)
    bytes[i] = static_cast<char>(length & 0xff);
  return bytes + json;
}

SafetensorsIndex parse_safetensors_index(std::string_view json_text, const std::string& where) {
  const size_t bad = find_invalid_utf8(json_text);
  if (bad != std::string_view::npos)
    fail_input(where + ": not valid UTF-8 (byte " + std::to_string(bad) + ")");
  const Json document = parse_strict_json(json_text, where);
  if (!document.is_object())
    fail_input(where + ": expected a JSON object with \"weight_map\", found " + describe(document));

  SafetensorsIndex index;
  auto metadata = document.find("metadata");
  if (metadata != document.end()) {
    if (!metadata->is_object())
      fail_input(where + ": \"metadata\" must be an object, found " + describe(*metadata));
    auto total = metadata->find("total_size");
    if (total != metadata->end()) {
      index.total_size_bytes = as_whole_number(*total);
      if (!index.total_size_bytes)
        fail_input(where + ": metadata.total_size must be a non-negative integer, found " +
                   describe(*total));
    }
  }

  auto weight_map = document.find("weight_map");
  if (weight_map == document.end()) fail_input(where + ": missing \"weight_map\"");
  if (!weight_map->is_object())
    fail_input(where + ": \"weight_map\" must be an object of tensor name -> file name, found " +
               describe(*weight_map));
  // object_t is a std::map: entries arrive sorted by name bytes.
  const auto& entries = weight_map->get_ref<const Json::object_t&>();
  index.weight_map.reserve(entries.size());
  for (const auto& [name, file] : entries) {
    if (!file.is_string())
      fail_input(where + ": weight_map entry " + quote_name(name) +
                 " must name a file as a string, found " + describe(file));
    const std::string& file_name = file.get_ref<const std::string&>();
    if (!is_plain_shard_name(file_name))
      fail_input(where + ": weight_map entry " + quote_name(name) + " names file " +
                 quote_name(file_name) +
                 ": expected a plain *.safetensors file name in the index's directory "
                 "(no '/', '..' or absolute path)");
    index.weight_map.emplace_back(name, file_name);
  }
  return index;
}

}  // namespace ckconv
