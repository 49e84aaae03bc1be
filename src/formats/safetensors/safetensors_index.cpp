// Parsing model.safetensors.index.json: the strict JSON routine, then the document's shape
// (metadata.total_size, weight_map of plain shard names).
#include "formats/safetensors/safetensors_index.h"

#include <cmath>

#include "core/error.h"
#include "formats/safetensors/safetensors_header.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

using Json = nlohmann::json;

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

// A shard name must stay inside the checkpoint directory: a plain name, or a plain name in
// the one folder a publish keeps the previous shards in (kPreviousShardsFolder).
bool is_plain_shard_name(std::string_view name) {
  const std::string_view folder = std::string_view(kPreviousShardsFolder);
  if (name.size() > folder.size() + 1 && name.substr(0, folder.size()) == folder &&
      name[folder.size()] == '/')
    name.remove_prefix(folder.size() + 1);
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

SafetensorsIndex parse_safetensors_index(std::string_view json_text, const std::string& where) {
  const Json document = parse_strict_json_document(
      json_text, where, {kMaxSafetensorsIndexBytes, kMaxSafetensorsJsonDepth});
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
      fail_input(where + ": weight_map entry " + quote_untrusted_name(name) +
                 " must name a file as a string, found " + describe(file));
    const std::string& file_name = file.get_ref<const std::string&>();
    if (!is_plain_shard_name(file_name))
      fail_input(where + ": weight_map entry " + quote_untrusted_name(name) + " names file " +
                 quote_untrusted_name(file_name) +
                 ": expected a plain *.safetensors file name in the index's directory "
                 "(no '/', '..' or absolute path)");
    index.weight_map.emplace_back(name, file_name);
  }
  return index;
}

}  // namespace ckconv
