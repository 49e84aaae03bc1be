// parse_size (see size_option.h). CLI::AsSizeValue(true) alone would read "0x10" as hex and
// "010" as octal (it converts with strtoull base 0), take a bare "GB" for 10^9, accept 0, and
// refuse "1.5GB", which huggingface_hub accepts; so the number is checked to be decimal here,
// a fraction is scaled to an integer before CLI11 applies the unit and divided out after.
#include "cli/size_option.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <string>

#include "core/error.h"

namespace ckconv::cli {
namespace {

[[noreturn]] void fail_size(std::string_view text) {
  fail(ErrorKind::kUsage, "invalid size '" + std::string(text) +
                              "': expected a byte count with an optional unit, e.g. 5GB, "
                              "500MB, 100KB, 2GiB or 123");
}

[[noreturn]] void fail_too_large(std::string_view text) {
  fail(ErrorKind::kUsage, "size '" + std::string(text) + "' is too large");
}

std::string_view trim(std::string_view view) {
  while (!view.empty() && view.front() == ' ') view.remove_prefix(1);
  while (!view.empty() && view.back() == ' ') view.remove_suffix(1);
  return view;
}

size_t count_digits(std::string_view text, size_t from) {
  size_t end = from;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  return end - from;
}

// CLI11's transform: "<integer><unit>" becomes the byte count as decimal text. Throws
// CLI::ValidationError for an unknown unit or an overflowing product.
std::string apply_unit(std::string integer, std::string_view unit) {
  std::string text = std::move(integer) + std::string(unit);
  const std::string problem = CLI::AsSizeValue(true)(text);
  if (!problem.empty()) throw CLI::ValidationError(problem);
  return text;
}

}  // namespace

uint64_t parse_size(std::string_view original) {
  const std::string_view text = trim(original);
  const std::string_view whole = text.substr(0, count_digits(text, 0));
  std::string_view fraction;
  size_t number_end = whole.size();
  if (number_end < text.size() && text[number_end] == '.') {
    fraction = text.substr(number_end + 1, count_digits(text, number_end + 1));
    number_end += 1 + fraction.size();
  }
  if (whole.empty() && fraction.empty()) fail_size(original);
  if (fraction.size() > 18) fail_size(original);
  const std::string_view unit = trim(text.substr(number_end));
  for (char c : unit)
    if (!std::isalpha(static_cast<unsigned char>(c))) fail_size(original);
  const bool unit_is_bytes = unit.empty() || unit == "b" || unit == "B";
  if (!fraction.empty() && unit_is_bytes) fail_size(original);  // no fractional bytes
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (!unit.empty()) {
    try {
      apply_unit("1", unit);
    } catch (const CLI::ValidationError&) {
      fail_size(original);  // not a unit CLI11 knows
    }
  }

  // Decimal digits without leading zeros (CLI11 would read "010" as octal): the number times
  // 10^fraction.size(), divided out once the unit is applied.
  std::string scaled = std::string(whole) + std::string(fraction);
  scaled.erase(0, std::min(scaled.find_first_not_of('0'), scaled.size() - 1));
  std::string bytes_text;
  try {
    bytes_text = unit.empty() ? scaled : apply_unit(scaled, unit);
  } catch (const CLI::ValidationError&) {
    fail_too_large(original);
  }
  uint64_t bytes = 0;
  const auto [end, error] =
      std::from_chars(bytes_text.data(), bytes_text.data() + bytes_text.size(), bytes);
  if (error != std::errc() || end != bytes_text.data() + bytes_text.size())
    fail_too_large(original);
  for (size_t i = 0; i < fraction.size(); ++i) bytes /= 10;
  if (bytes == 0) fail(ErrorKind::kUsage, "size '" + std::string(original) + "' must be positive");
  return bytes;
}

}  // namespace ckconv::cli
