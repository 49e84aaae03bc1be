// The strict JSON routine (see strict_json.h): a SAX filter in front of the caller's consumer
// that tracks depth and the keys of every open object, so one pass checks and builds.
#include "formats/safetensors/strict_json.h"

#include <algorithm>
#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace ckconv {
namespace {

using Json = nlohmann::json;

// The keys of one open object. Most objects (a tensor entry: dtype, shape, data_offsets)
// have a few keys, checked by a linear scan; a large one (a header's tensors, an index's
// weight_map) moves to a hash set, so a document of n keys is checked in O(n).
class KeySet {
 public:
  // False when `key` was already there.
  bool insert(const std::string& key) {
    if (!many_.empty()) return many_.insert(key).second;
    if (std::find(few_.begin(), few_.end(), key) != few_.end()) return false;
    few_.push_back(key);
    if (few_.size() > kMaxScannedKeys) {
      many_.insert(std::make_move_iterator(few_.begin()), std::make_move_iterator(few_.end()));
      few_.clear();
    }
    return true;
  }
  void clear() {
    few_.clear();
    many_.clear();
  }

 private:
  static constexpr size_t kMaxScannedKeys = 16;
  std::vector<std::string> few_;
  std::unordered_set<std::string> many_;
};

// Checks depth and duplicate keys, then passes each event on to the consumer (if any).
class StrictSax final : public nlohmann::json_sax<Json> {
 public:
  StrictSax(const std::string& what, int max_depth, nlohmann::json_sax<Json>* consumer)
      : what_(what), max_depth_(max_depth), consumer_(consumer) {}

  bool null() override { return !consumer_ || consumer_->null(); }
  bool boolean(bool value) override { return !consumer_ || consumer_->boolean(value); }
  bool number_integer(number_integer_t value) override {
    return !consumer_ || consumer_->number_integer(value);
  }
  bool number_unsigned(number_unsigned_t value) override {
    return !consumer_ || consumer_->number_unsigned(value);
  }
  bool number_float(number_float_t value, const string_t& literal) override {
    return !consumer_ || consumer_->number_float(value, literal);
  }
  bool string(string_t& value) override { return !consumer_ || consumer_->string(value); }
  bool binary(binary_t& value) override { return !consumer_ || consumer_->binary(value); }
  bool start_object(std::size_t elements) override {
    enter();
    if (open_objects_ == keys_.size()) keys_.emplace_back();
    keys_[open_objects_++].clear();
    return !consumer_ || consumer_->start_object(elements);
  }
  bool key(string_t& key) override {
    if (!keys_[open_objects_ - 1].insert(key))
      fail_input(what_ + " has the key " + quote_untrusted_name(key) +
                 " twice; duplicate keys are not allowed (readers would disagree on which wins)");
    return !consumer_ || consumer_->key(key);
  }
  bool end_object() override {
    --open_objects_;
    --depth_;
    return !consumer_ || consumer_->end_object();
  }
  bool start_array(std::size_t elements) override {
    enter();
    return !consumer_ || consumer_->start_array(elements);
  }
  bool end_array() override {
    --depth_;
    return !consumer_ || consumer_->end_array();
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    fail_input(what_ + " is not valid JSON: " + error.what());
  }

 private:
  void enter() {
    if (++depth_ > max_depth_)
      fail_input(what_ + " nests JSON deeper than " + std::to_string(max_depth_) + " levels");
  }

  const std::string& what_;
  const int max_depth_;
  nlohmann::json_sax<Json>* const consumer_;
  int depth_ = 0;
  std::vector<KeySet> keys_;  // [0, open_objects_): the open objects, outermost first
  size_t open_objects_ = 0;
};

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

std::string quote_untrusted_name(std::string_view text) {
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

void parse_strict_json(std::string_view text, const std::string& what,
                       const StrictJsonLimits& limits, nlohmann::json_sax<Json>* consumer) {
  if (text.size() > limits.max_bytes)
    fail_input(what + " is " + std::to_string(text.size()) + " bytes, above the limit of " +
               std::to_string(limits.max_bytes));
  const size_t bad = find_invalid_utf8(text);
  if (bad != std::string_view::npos)
    fail_input(what + " is not valid UTF-8 (byte " + std::to_string(bad) + ")");
  // nlohmann's lexer takes a NUL byte for the end of input, which would hide whatever
  // follows; JSON has no place for a raw NUL, so refuse it up front.
  const size_t nul = text.find('\0');
  if (nul != std::string_view::npos)
    fail_input(what + " is not valid JSON: NUL byte at offset " + std::to_string(nul));
  StrictSax strict(what, limits.max_depth, consumer);
  Json::sax_parse(text.begin(), text.end(), &strict);
}

Json parse_strict_json_document(std::string_view text, const std::string& what,
                                const StrictJsonLimits& limits) {
  parse_strict_json(text, what, limits, nullptr);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {  // unreachable after the check, kept for safety
    fail_input(what + " is not valid JSON: " + e.what());
  }
}

}  // namespace ckconv
