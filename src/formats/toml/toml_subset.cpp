#include "formats/toml/toml_subset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>
#include <set>
#include <vector>

#include "core/error.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

using KeyPath = std::vector<std::string>;

// TOML's one-character escapes: the character after '\' and the one it stands for.
constexpr std::pair<char, char> kEscapes[] = {{'b', '\b'}, {'t', '\t'}, {'n', '\n'}, {'f', '\f'},
                                              {'r', '\r'}, {'"', '"'},  {'\\', '\\'}};

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Characters of an unquoted value: numbers, booleans and (refused) dates.
bool is_token_char(char c) {
  return is_bare_key_char(c) || c == '+' || c == '.' || c == ':';
}

bool is_control(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && c != '\t') || byte == 0x7f;
}

std::string describe_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return std::string("'") + c + "'";
  char text[16];
  std::snprintf(text, sizeof text, "byte 0x%02x", byte);
  return text;
}

std::string dotted(const KeyPath& path) {
  std::string out;
  for (const std::string& part : path) out += (out.empty() ? "" : ".") + part;
  return out;
}

void append_utf8(std::string& out, uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xc0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xe0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  }
}

class TomlParser {
 public:
  TomlParser(std::string_view text, const std::string& where) : text_(text), where_(where) {}

  nlohmann::json parse() {
    while (true) {
      skip_blanks();
      if (at_end()) break;
      const char c = peek();
      if (c == '\n' || c == '\r') {
        newline();
        continue;
      }
      if (c == '#') {
        skip_comment();
        continue;
      }
      if (c == '[')
        table_header();
      else
        key_value();
      end_of_line();
    }
    return root_;
  }

 private:
  [[noreturn]] void error(const std::string& message) const {
    fail_input(where_ + ":" + std::to_string(line_) + ": " + message);
  }
  bool at_end() const { return pos_ >= text_.size(); }
  // The character `ahead` places on, or NUL past the end (a NUL byte is refused up front).
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  std::string found() const { return at_end() ? "the end of the file" : describe_char(peek()); }
  void skip_blanks() {
    while (peek() == ' ' || peek() == '\t') ++pos_;
  }
  void newline() {
    if (peek() == '\r' && peek(1) != '\n') error("a carriage return without a line feed");
    pos_ += peek() == '\r' ? 2 : 1;
    ++line_;
  }
  void skip_comment() {
    for (++pos_; !at_end() && peek() != '\n' && !(peek() == '\r' && peek(1) == '\n'); ++pos_)
      if (is_control(peek())) error("control character " + describe_char(peek()) + " in a comment");
  }
  // After a table header or a key = value: blanks, a comment, then the line's end.
  void end_of_line() {
    skip_blanks();
    if (peek() == '#') skip_comment();
    if (at_end()) return;
    if (peek() != '\n' && peek() != '\r')
      error("expected the end of the line, found " + found() + " (one key = value per line)");
    newline();
  }
  // Blanks, line ends and comments between the elements of an array.
  void skip_array_space() {
    while (true) {
      skip_blanks();
      if (peek() == '#')
        skip_comment();
      else if (peek() == '\n' || peek() == '\r')
        newline();
      else
        return;
    }
  }

  std::string basic_string() {
    if (peek(1) == '"' && peek(2) == '"') error("multi-line strings (\"\"\") are not supported");
    std::string out;
    for (++pos_;; ++pos_) {
      if (at_end() || peek() == '\n' || peek() == '\r') error("unterminated string");
      const char c = peek();
      if (c == '"') break;
      if (is_control(c)) error("control character " + describe_char(c) + " in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      ++pos_;
      const char escape = peek();
      if (escape == 'u' || escape == 'U') {
        append_utf8(out, unicode_escape(escape == 'u' ? 4 : 8));
        continue;
      }
      const auto* simple = std::find_if(std::begin(kEscapes), std::end(kEscapes),
                                        [&](const auto& pair) { return pair.first == escape; });
      if (at_end() || simple == std::end(kEscapes))
        error("invalid escape \\" + std::string(at_end() ? "" : std::string(1, escape)));
      out += simple->second;
    }
    ++pos_;
    return out;
  }
  // The code point of \uXXXX or \UXXXXXXXX, pos_ on the 'u'; leaves pos_ on the last digit.
  uint32_t unicode_escape(int digits) {
    uint32_t code = 0;
    for (int i = 1; i <= digits; ++i) {
      const char c = peek(static_cast<size_t>(i));
      const int value = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (value < 0) error("\\u and \\U take " + std::to_string(digits) + " hexadecimal digits");
      code = code * 16 + static_cast<uint32_t>(value);
    }
    if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
      error("escape of a code point that is no Unicode scalar value");
    pos_ += static_cast<size_t>(digits);
    return code;
  }
  std::string literal_string() {
    if (peek(1) == '\'' && peek(2) == '\'') error("multi-line strings (''') are not supported");
    std::string out;
    for (++pos_; peek() != '\''; ++pos_) {
      if (at_end() || peek() == '\n' || peek() == '\r') error("unterminated string");
      if (is_control(peek())) error("control character " + describe_char(peek()) + " in a string");
      out += peek();
    }
    ++pos_;
    return out;
  }

  std::string simple_key() {
    if (peek() == '"') return basic_string();
    if (peek() == '\'') return literal_string();
    const size_t start = pos_;
    while (is_bare_key_char(peek())) ++pos_;
    if (pos_ == start) error("expected a key, found " + found());
    return std::string(text_.substr(start, pos_ - start));
  }
  KeyPath key() {
    KeyPath path;
    while (true) {
      skip_blanks();
      path.push_back(simple_key());
      skip_blanks();
      if (peek() != '.') return path;
      ++pos_;
    }
  }

  // Digits with single underscores between them, from `at` in `token`; returns where they end.
  size_t digits(const std::string& token, size_t at) const {
    const size_t start = at;
    while (at < token.size() && (std::isdigit(static_cast<unsigned char>(token[at])) ||
                                 (token[at] == '_' && at > start && at + 1 < token.size() &&
                                  std::isdigit(static_cast<unsigned char>(token[at - 1])) &&
                                  std::isdigit(static_cast<unsigned char>(token[at + 1])))))
      ++at;
    if (at == start) error("invalid number '" + token + "'");
    return at;
  }
  nlohmann::json number(const std::string& token) {
    size_t at = token[0] == '+' || token[0] == '-' ? 1 : 0;
    const std::string unsigned_part = token.substr(at);
    if (unsigned_part == "inf" || unsigned_part == "nan") {
      const double value = unsigned_part == "inf" ? std::numeric_limits<double>::infinity()
                                                  : std::numeric_limits<double>::quiet_NaN();
      return token[0] == '-' ? -value : value;
    }
    if (unsigned_part.size() > 1 && unsigned_part[0] == '0' &&
        (unsigned_part[1] == 'x' || unsigned_part[1] == 'o' || unsigned_part[1] == 'b'))
      error("hexadecimal, octal and binary integers are not supported ('" + token + "')");
    const size_t integer_end = digits(token, at);
    if (token[at] == '0' && integer_end - at > 1) error("leading zeros in '" + token + "'");
    at = integer_end;
    bool is_float = false;
    if (at < token.size() && token[at] == '.') {
      at = digits(token, at + 1);
      is_float = true;
    }
    if (at < token.size() && (token[at] == 'e' || token[at] == 'E')) {
      ++at;
      if (at < token.size() && (token[at] == '+' || token[at] == '-')) ++at;
      at = digits(token, at);
      is_float = true;
    }
    if (at != token.size()) error("invalid number '" + token + "'");
    std::string plain;
    for (char c : token)
      if (c != '_' && c != '+') plain += c;
    const char* first = plain.data();
    const char* last = plain.data() + plain.size();
    if (is_float) {
      double value = 0;
      const auto result = std::from_chars(first, last, value);
      if (result.ec != std::errc() || result.ptr != last)
        error("float '" + token + "' is out of range");
      return value;
    }
    int64_t value = 0;
    const auto result = std::from_chars(first, last, value);
    if (result.ec != std::errc() || result.ptr != last)
      error("integer '" + token + "' is out of the 64-bit range");
    return value;
  }
  nlohmann::json scalar() {
    const size_t start = pos_;
    while (is_token_char(peek())) ++pos_;
    const std::string token(text_.substr(start, pos_ - start));
    if (token.empty()) error("expected a value, found " + found());
    if (token == "true" || token == "false") return token == "true";
    const bool date_like = token.size() > 4 &&
                           std::all_of(token.begin(), token.begin() + 4,
                                       [](char c) { return c >= '0' && c <= '9'; }) &&
                           token[4] == '-';
    if (token.find(':') != std::string::npos || date_like)
      error("dates and times are not supported ('" + token + "')");
    return number(token);
  }
  nlohmann::json array(int depth) {
    if (depth > kMaxTomlArrayDepth)
      error("arrays nested deeper than " + std::to_string(kMaxTomlArrayDepth));
    nlohmann::json out = nlohmann::json::array();
    const std::string unterminated =
        "unterminated array (opened on line " + std::to_string(line_) + ")";
    ++pos_;
    while (true) {
      skip_array_space();
      if (at_end()) error(unterminated);
      if (peek() == ']') break;
      out.push_back(value(depth));
      skip_array_space();
      if (at_end()) error(unterminated);
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') break;
      error("expected ',' or ']' in an array, found " + found());
    }
    ++pos_;
    return out;
  }
  nlohmann::json value(int depth) {
    switch (peek()) {
      case '"':
        return basic_string();
      case '\'':
        return literal_string();
      case '[':
        return array(depth + 1);
      case '{':
        error("inline tables ({...}) are not supported");
      default:
        return scalar();
    }
  }

  void table_header() {
    ++pos_;
    if (peek() == '[') error("arrays of tables ([[...]]) are not supported");
    const KeyPath path = key();
    if (peek() != ']') error("expected ']' after the table name, found " + found());
    ++pos_;
    if (headers_.count(path)) error("table [" + dotted(path) + "] is defined twice");
    if (dotted_tables_.count(path))
      error("table [" + dotted(path) + "] was already defined by dotted keys");
    nlohmann::json* node = &root_;
    for (size_t i = 0; i < path.size(); ++i) {
      nlohmann::json& child = (*node)[path[i]];
      if (child.is_null()) child = nlohmann::json::object();
      if (!child.is_object())
        error(dotted(KeyPath(path.begin(), path.begin() + i + 1)) + " is a value, not a table");
      node = &child;
    }
    headers_.insert(path);
    current_ = path;
  }
  void key_value() {
    const KeyPath path = key();
    if (peek() != '=') error("expected '=' after the key, found " + found());
    ++pos_;
    skip_blanks();
    nlohmann::json item = value(0);
    nlohmann::json* table = &root_;
    for (const std::string& part : current_) table = &(*table)[part];
    KeyPath full = current_;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      full.push_back(path[i]);
      if (!table->contains(path[i])) {
        (*table)[path[i]] = nlohmann::json::object();
        dotted_tables_.insert(full);
      } else if (!(*table)[path[i]].is_object() || !dotted_tables_.count(full)) {
        error(dotted(full) + " is already defined; dotted keys cannot add to it");
      }
      table = &(*table)[path[i]];
    }
    full.push_back(path.back());
    if (table->contains(path.back())) error("key " + dotted(full) + " is defined twice");
    (*table)[path.back()] = std::move(item);
  }

  std::string_view text_;
  std::string where_;
  size_t pos_ = 0;
  int line_ = 1;
  nlohmann::json root_ = nlohmann::json::object();
  KeyPath current_;
  std::set<KeyPath> headers_;        // tables defined by a [header]
  std::set<KeyPath> dotted_tables_;  // tables defined by dotted keys (a.b = 1 defines a)
};

}  // namespace

nlohmann::json parse_toml_subset(std::string_view text, const std::string& where) {
  if (text.size() > kMaxTomlBytes)
    fail_input(where + ": larger than " + std::to_string(kMaxTomlBytes) +
               " bytes; not a training config");
  const auto line_of = [&](size_t offset) {
    return std::to_string(1 + std::count(text.begin(), text.begin() + offset, '\n'));
  };
  if (const size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    fail_input(where + ":" + line_of(bad) + ": not UTF-8 text");
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
    fail_input(where + ":" + line_of(nul) + ": NUL byte");
  return TomlParser(text, where).parse();
}

}  // namespace ckconv
