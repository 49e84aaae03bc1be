// The TOML subset of torchtitan's job configs: what it accepts means what TOML 1.0 says, and
// every construct outside the subset is refused with its line number, never misread.
#include "formats/toml/toml_subset.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "error_checks.h"

using namespace ckconv;

namespace {

nlohmann::json parse(const std::string& text) {
  return parse_toml_subset(text, "t.toml");
}

}  // namespace

TEST_CASE("toml: a job config's tables, values and comments") {
  const nlohmann::json doc = parse(
      "# a job config\n"
      "[job]\n"
      "dump_folder = \"./outputs\"  # where\n"
      "\n"
      "[model]\r\n"
      "name = \"llama3\"\n"
      "flavor='debugmodel'\n"
      "converters = [\"float8\", 'mx',]\n"
      "[optimizer]\n"
      "lr = 8e-4\n"
      "eps = 1E-8\n"
      "ratio = -0.5\n"
      "[training]\n"
      "steps = 30_000\n"
      "degree = -1\n"
      "big = +9223372036854775807\n"
      "enable=false\n"
      "[quantize.linear.float8]\n"
      "filter_fqns = [\n"
      "  \"output\",  # the head\n"
      "  [1, 2.5, true],\n"
      "]\n"
      "[ \"quoted key\" . x ]\n"
      "a.b = \"\\u00e9\\t\\\"\"\n");
  CHECK(doc["job"]["dump_folder"] == "./outputs");
  CHECK(doc["model"]["name"] == "llama3");
  CHECK(doc["model"]["flavor"] == "debugmodel");
  CHECK(doc["model"]["converters"] == nlohmann::json({"float8", "mx"}));
  CHECK(doc["optimizer"]["lr"].get<double>() == 8e-4);
  CHECK(doc["optimizer"]["eps"].get<double>() == 1e-8);
  CHECK(doc["optimizer"]["ratio"].get<double>() == -0.5);
  CHECK(doc["training"]["steps"] == 30000);
  CHECK(doc["training"]["steps"].is_number_integer());
  CHECK(doc["training"]["degree"] == -1);
  CHECK(doc["training"]["big"] == 9223372036854775807LL);
  CHECK(doc["training"]["enable"] == false);
  CHECK(doc["quantize"]["linear"]["float8"]["filter_fqns"] ==
        nlohmann::json::parse(R"(["output", [1, 2.5, true]])"));
  CHECK(doc["quoted key"]["x"]["a"]["b"] == "\xc3\xa9\t\"");
}

TEST_CASE("toml: inf and nan, and a table opened after its sub-table") {
  const nlohmann::json doc = parse("x = inf\ny = -inf\nz = nan\n[a.b]\nc = 1\n[a]\nd = 2");
  CHECK(std::isinf(doc["x"].get<double>()));
  CHECK(doc["y"].get<double>() < 0);
  CHECK(std::isnan(doc["z"].get<double>()));
  CHECK(doc["a"]["b"]["c"] == 1);
  CHECK(doc["a"]["d"] == 2);
}

TEST_CASE("toml: what is outside the subset is refused with its line") {
  const auto refused = [](const std::string& text, const std::string& fragment) {
    CHECK_THROWS_KIND_WITH(parse(text), ErrorKind::kBadInput, fragment);
  };
  refused("[a]\nx = {y = 1}\n", "t.toml:2: inline tables");
  refused("[[steps]]\n", "t.toml:1: arrays of tables");
  refused("\n\nx = \"\"\"long\"\"\"\n", "t.toml:3: multi-line strings");
  refused("x = '''long'''\n", "multi-line strings");
  refused("x = 1979-05-27\n", "dates and times are not supported");
  refused("x = 07:32:00\n", "dates and times are not supported");
  refused("x = 0x10\n", "hexadecimal, octal and binary");
  refused("x = 012\n", "leading zeros");
  refused("x = 1__0\n", "invalid number");
  refused("x = _1\n", "invalid number");
  refused("x = 1.\n", "invalid number");
  refused("x = .5\n", "invalid number");
  refused("x = 99999999999999999999\n", "out of the 64-bit range");
  refused("x = 1e999\n", "out of range");
  refused("x = True\n", "invalid number");
  refused("x = \"open\n", "t.toml:1: unterminated string");
  refused("x = \"\\q\"\n", "invalid escape");
  refused("x = \"\\ud800\"\n", "no Unicode scalar value");
  refused("x = [1,\n 2\n", "t.toml:3: unterminated array (opened on line 1)");
  refused("x = [1 2]\n", "expected ',' or ']'");
  refused("x = [,]\n", "expected a value");
  refused("x = 1 y = 2\n", "expected the end of the line");
  refused("x = 1\nx = 2\n", "t.toml:2: key x is defined twice");
  refused("[a]\n[a]\n", "t.toml:2: table [a] is defined twice");
  refused("a.b = 1\n[a]\n", "already defined by dotted keys");
  refused("[a.b]\n[a]\nb.c = 1\n", "dotted keys cannot add to it");
  refused("a = 1\n[a.b]\n", "a is a value, not a table");
  refused("= 1\n", "expected a key");
  refused("x 1\n", "expected '='");
  refused("x = 1\r\ny = 2\r", "t.toml:2: a carriage return without a line feed");
  refused("x = \"a\x01\"\n", "control character");
  refused("# \x7f\n", "control character");
  refused("x = \"\xff\"\n", "t.toml:1: not UTF-8");
  refused(std::string("x = 1\n\0", 7), "t.toml:2: NUL byte");
  refused("[", "expected a key");
  refused("x = " + std::string(40, '[') + std::string(40, ']') + "\n", "nested deeper than 32");
  refused(std::string(kMaxTomlBytes + 1, '#'), "larger than");
}
