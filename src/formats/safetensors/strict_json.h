// The one strict JSON routine for untrusted safetensors documents (file headers and
// model.safetensors.index.json): size and depth limits, UTF-8, no NUL byte, and no object
// with the same key twice, which nlohmann (and serde) would otherwise accept silently.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ckconv {

// Limits of one document: its size in bytes and how deeply arrays and objects may nest.
struct StrictJsonLimits {
  uint64_t max_bytes = 0;
  int max_depth = 0;
};

// Offset of the first byte of `text` that is not valid UTF-8 (as Rust's str::from_utf8
// judges it: no overlong forms, surrogates or code points above U+10FFFF), or npos.
size_t find_invalid_utf8(std::string_view text);

// A name from an untrusted file, quoted for a message: control bytes become \xNN so a
// hostile name cannot forge lines in the terminal.
std::string quote_untrusted_name(std::string_view text);

// Parses `text`, passing every SAX event to `consumer` (which may throw to refuse the
// document; a false return stops the parse silently). Throws kBadInput, the message starting
// with `what`, for a text above limits.max_bytes, invalid UTF-8, a NUL byte (nlohmann's lexer
// would take it for the end of input), invalid JSON, nesting deeper than limits.max_depth,
// or an object holding a key twice (readers would disagree on which one wins). Checks run
// as events arrive, so the first problem in document order is the one reported.
void parse_strict_json(std::string_view text, const std::string& what,
                       const StrictJsonLimits& limits,
                       nlohmann::json_sax<nlohmann::json>* consumer);

// parse_strict_json into a DOM (for small documents such as the index).
nlohmann::json parse_strict_json_document(std::string_view text, const std::string& what,
                                          const StrictJsonLimits& limits);

}  // namespace ckconv
