// Serialising a safetensors header byte for byte as the reference writer does (serde_json
// compact output, spec of the format's README: header layout and padding).
#include "formats/safetensors/safetensors_header_writer.h"

#include <charconv>

namespace ckconv {
namespace {

void append_number(std::string& out, uint64_t value) {
  char buffer[24];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  out.append(buffer, result.ptr);
}

// serde_json's escaping (docs/formats.md "Writing byte-identical to safetensors.torch.save_file"):
// quote, backslash and control characters only; everything else, non-ASCII included, is copied raw.
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

}  // namespace

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

}  // namespace ckconv
