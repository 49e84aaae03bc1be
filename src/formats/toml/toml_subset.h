// A strict reader of the part of TOML 1.0 that torchtitan's job configs (train_configs/*.toml,
// up to v0.2.x) use, for untrusted bytes: what it accepts means what TOML says, and anything
// outside the subset is refused with its line number rather than read differently.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ckconv {

// Largest document parse_toml_subset reads, and how deeply arrays may nest in it.
inline constexpr size_t kMaxTomlBytes = 1 << 20;
inline constexpr int kMaxTomlArrayDepth = 32;

// Parses `text` into a JSON object of tables. Accepted: `[table]` and `[dotted.table]` headers;
// `key = value` lines with bare (A-Z a-z 0-9 _ -), quoted and dotted keys; basic strings
// "..." (escapes \b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX) and literal strings '...'; decimal
// integers (sign, `_` between digits); floats (fraction and/or exponent, inf, nan); true and
// false; arrays of these, over several lines, with comments and a trailing comma; `#`
// comments; LF or CRLF line ends. Refused with kBadInput, the message "WHERE:LINE: ...":
// inline tables, arrays of tables, multi-line strings, dates and times, hexadecimal, octal
// and binary integers, a key or table defined twice, text that is not UTF-8, control
// characters, anything above kMaxTomlBytes or nested deeper than kMaxTomlArrayDepth.
nlohmann::json parse_toml_subset(std::string_view text, const std::string& where);

}  // namespace ckconv
