// --max-shard-size spellings: decimal units mean what huggingface_hub means ("5GB" is
// 5 * 10^9 bytes), binary units are powers of 1024, and everything else is a usage error.
#include "cli/size_option.h"

#include <doctest/doctest.h>

#include <string>

#include "core/error.h"

using namespace ckconv;
using ckconv::cli::parse_size;

namespace {

void expect_usage_error(const std::string& text, const std::string& fragment) {
  try {
    parse_size(text);
    FAIL("parse_size(\"" << text << "\") should fail with \"" << fragment << "\"");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kUsage);
    CHECK_MESSAGE(std::string(error.what()).find(fragment) != std::string::npos,
                  "message \"" << error.what() << "\" lacks \"" << fragment << "\"");
  }
}

}  // namespace

TEST_CASE("parse_size: decimal units are powers of 1000, as huggingface_hub") {
  CHECK(parse_size("5GB") == 5'000'000'000u);
  CHECK(parse_size("5G") == 5'000'000'000u);
  CHECK(parse_size("5gb") == 5'000'000'000u);
  CHECK(parse_size("500MB") == 500'000'000u);
  CHECK(parse_size("500M") == 500'000'000u);
  CHECK(parse_size("100KB") == 100'000u);
  CHECK(parse_size("1TB") == 1'000'000'000'000u);
  CHECK(parse_size(" 1.5 GB ") == 1'500'000'000u);
  CHECK(parse_size("0.5KB") == 500u);
  CHECK(parse_size("1.0GB") == 1'000'000'000u);
  CHECK(parse_size("2.0000005KB") == 2000u);  // floored to whole bytes
}

TEST_CASE("parse_size: binary units are powers of 1024") {
  CHECK(parse_size("5GiB") == (uint64_t{5} << 30));
  CHECK(parse_size("5Gi") == (uint64_t{5} << 30));
  CHECK(parse_size("2gib") == (uint64_t{2} << 30));
  CHECK(parse_size("512MiB") == (uint64_t{512} << 20));
  CHECK(parse_size("1.5KiB") == 1536u);
}

TEST_CASE("parse_size: plain bytes") {
  CHECK(parse_size("123") == 123u);
  CHECK(parse_size("123B") == 123u);
  CHECK(parse_size("0123") == 123u);  // decimal, not octal
  CHECK(parse_size("18446744073709551615") == UINT64_MAX);
}

TEST_CASE("parse_size: refuses other spellings, zero and overflow") {
  for (const char* junk : {"", "GB", "5XB", "-5GB", "5 G B", "1.5", "1.5B", "5GB!", "1e9", "0x10",
                           ".", "1.0000000000000000000GB"})
    expect_usage_error(junk, "invalid size");
  expect_usage_error("0MB", "positive");
  expect_usage_error("0", "positive");
  expect_usage_error("99999999999TB", "too large");
  expect_usage_error("18446744073709551616", "too large");
  expect_usage_error("20EB", "too large");
}
