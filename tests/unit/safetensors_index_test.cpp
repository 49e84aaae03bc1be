// The sharded safetensors reader's index checks: a model.safetensors.index.json must describe
// its shards exactly (every tensor in the file it names, nothing more, no paths outside the
// checkpoint but the publish's kept-shards folder), and a single model.safetensors comes first.
#include "formats/safetensors/safetensors_index.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "format_test_helpers.h"
#include "formats/safetensors/safetensors_header_writer.h"
#include "formats/safetensors/safetensors_reader.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

using test::TempDir;

// A sharded checkpoint in a temp dir: shard1 holds a, b; shard2 holds c (U8 [2] each).
struct ShardedFixture {
  TempDir dir;
  ShardedFixture() {
    write_shard("s1.safetensors", {"a", "b"});
    write_shard("s2.safetensors", {"c"});
  }
  void write_shard(const std::string& file, const std::vector<std::string>& names) {
    std::vector<SafetensorsEntry> entries;
    for (size_t i = 0; i < names.size(); ++i)
      entries.push_back({names[i], DType::kU8, {2}, 2 * i, 2 * i + 2});
    test::write_file(dir.path() / file,
                     serialize_header(entries, std::nullopt) + std::string(2 * names.size(), '\1'));
  }
  void write_index(const std::string& json) {
    test::write_file(dir.path() / kSafetensorsIndexFileName, json);
  }
  void expect_refused(const std::string& fragment) {
    test::expect_error([&] { read_safetensors(dir.path()); }, ErrorKind::kBadInput, fragment);
  }
};

}  // namespace

TEST_CASE("safetensors: index: a consistent index reads") {
  ShardedFixture fixture;
  fixture.write_index(R"({"metadata":{"total_size":6.0},"weight_map":)"
                      R"({"c":"s2.safetensors","b":"s1.safetensors","a":"s1.safetensors"}})");
  const Catalog catalog = read_safetensors(fixture.dir.path());
  REQUIRE(catalog.tensors.size() == 3);
  CHECK(catalog.tensors[0].name == "a");
  CHECK(catalog.tensors[2].name == "c");
  CHECK(catalog.tensors[2].chunks[0].file == 1);
  CHECK(catalog.tensors[1].chunks[0].byte_offset == 8 + 112 + 2);
}

TEST_CASE("safetensors: index: names a missing shard") {
  ShardedFixture fixture;
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
                      R"("c":"s2.safetensors","d":"s3.safetensors"}})");
  fixture.expect_refused(
      "shard 's3.safetensors' (listed for tensor 'd' and 0 more) does not exist");
}

TEST_CASE("safetensors: index: a tensor in two shards") {
  ShardedFixture fixture;
  fixture.write_shard("s2.safetensors", {"c", "a"});
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
                      R"("c":"s2.safetensors"}})");
  fixture.expect_refused("holds tensor 'a', which");
  fixture.expect_refused("places in 's1.safetensors' (a tensor may live in one shard only)");
}

TEST_CASE("safetensors: index: a shard lacks a listed tensor") {
  ShardedFixture fixture;
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
                      R"("c":"s2.safetensors","z":"s2.safetensors"}})");
  fixture.expect_refused("lists tensor 'z' in 's2.safetensors', but that shard does not hold it");
}

TEST_CASE("safetensors: index: a shard holds a tensor the index does not list") {
  ShardedFixture fixture;
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","c":"s2.safetensors"}})");
  fixture.expect_refused("holds tensor 'b', which");
  fixture.expect_refused("does not list");
}

TEST_CASE("safetensors: index: weight_map paths with '..', '/' or a wrong extension") {
  ShardedFixture fixture;
  for (const char* file : {"../s1.safetensors", "/etc/s1.safetensors", "sub/s1.safetensors", "..",
                           "s1.bin", ".safetensors", "s1.safetensors\\\\x.safetensors"}) {
    CAPTURE(file);
    fixture.write_index(std::string(R"({"weight_map":{"a":")") + file + R"("}})");
    fixture.expect_refused("expected a plain *.safetensors file name");
  }
}

TEST_CASE("safetensors: index: shards kept in the publish's folder, and nowhere else") {
  ShardedFixture fixture;
  std::filesystem::create_directory(fixture.dir.path() / kPreviousShardsFolder);
  std::filesystem::rename(fixture.dir.path() / "s2.safetensors",
                          fixture.dir.path() / kPreviousShardsFolder / "s2.safetensors");
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
                      R"("c":".ckconv-previous/s2.safetensors"}})");
  CHECK(read_safetensors(fixture.dir.path()).tensors.size() == 3);
  for (const char* file :
       {".ckconv-previous/../s1.safetensors", ".ckconv-previous/sub/s2.safetensors",
        ".ckconv-previousx/s2.safetensors", ".ckconv-previous/", ".ckconv-previous//s2.safetensors",
        "./.ckconv-previous/s2.safetensors", ".ckconv-previous/.ckconv-previous/s2.safetensors"}) {
    CAPTURE(file);
    fixture.write_index(std::string(R"({"weight_map":{"c":")") + file + R"("}})");
    fixture.expect_refused("expected a plain *.safetensors file name");
  }
}

TEST_CASE("safetensors: model.safetensors is read before an index, as transformers does") {
  ShardedFixture fixture;
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors",)"
                      R"("c":"s2.safetensors"}})");
  fixture.write_shard("model.safetensors", {"m"});
  const Catalog catalog = read_safetensors(fixture.dir.path());
  REQUIRE(catalog.tensors.size() == 1);
  CHECK(catalog.tensors[0].name == "m");
}

TEST_CASE("safetensors: index: total_size differs from the tensors") {
  ShardedFixture fixture;
  fixture.write_index(R"({"metadata":{"total_size":7},"weight_map":{"a":"s1.safetensors",)"
                      R"("b":"s1.safetensors","c":"s2.safetensors"}})");
  fixture.expect_refused("metadata.total_size is 7 but the shards' tensors hold 6 bytes");
  fixture.write_index(R"({"metadata":{"total_size":"6"},"weight_map":{}})");
  fixture.expect_refused("total_size must be a non-negative integer");
}

TEST_CASE("safetensors: index: bad JSON shape") {
  ShardedFixture fixture;
  fixture.write_index(R"({"metadata":{}})");
  fixture.expect_refused("missing \"weight_map\"");
  fixture.write_index(R"({"weight_map":[]})");
  fixture.expect_refused("\"weight_map\" must be an object");
  fixture.write_index(R"({"weight_map":{"a":1}})");
  fixture.expect_refused("weight_map entry 'a' must name a file as a string");
  fixture.write_index(R"({"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}})");
  fixture.expect_refused("has the key 'a' twice");
  fixture.write_index(R"({"weight_map":)");
  fixture.expect_refused("is not valid JSON");
  fixture.write_index(R"({"metadata":5,"weight_map":{}})");
  fixture.expect_refused("\"metadata\" must be an object");
}

TEST_CASE("safetensors: directory with several files and no index is refused") {
  ShardedFixture fixture;
  fixture.expect_refused("2 *.safetensors files (s1.safetensors, s2.safetensors) but no");
  TempDir empty;
  test::expect_error([&] { read_safetensors(empty.path()); }, ErrorKind::kBadInput,
                     "no model.safetensors.index.json and no *.safetensors file");
}

// --- the strict JSON routine shared by headers and indexes ------------------------------------

TEST_CASE("strict JSON: limits, UTF-8, NUL and duplicate keys at any depth") {
  const StrictJsonLimits limits{64, 4};
  auto refused = [&](const std::string& text, const std::string& fragment) {
    test::expect_error([&] { parse_strict_json_document(text, "doc", limits); },
                       ErrorKind::kBadInput, "doc " + fragment);
  };
  CHECK(parse_strict_json_document(R"({"a": [{"b": 1}, {"b": 2}]})", "doc", limits).size() == 1);
  refused(R"({"a": [{"b": 1, "b": 2}]})", "has the key 'b' twice");
  refused(R"({"a": 1, "a": 1})", "has the key 'a' twice");
  refused(R"([[[[[1]]]]])", "nests JSON deeper than 4 levels");
  refused(std::string(65, ' '), "is 65 bytes, above the limit of 64");
  refused("{\"\xff\": 1}", "is not valid UTF-8 (byte 2)");
  refused(std::string("{}\0x", 4), "is not valid JSON: NUL byte at offset 2");
  refused("{", "is not valid JSON");
  // A key repeated in sibling objects is not a duplicate; many keys go through the hash set.
  std::string wide = "{";
  for (int i = 0; i < 40; ++i) wide += (i ? ",\"" : "\"") + std::to_string(i) + "\":{\"x\":1}";
  CHECK(parse_strict_json_document(wide + "}", "doc", {1000, 4}).size() == 40);
  test::expect_error(
      [&] {
        parse_strict_json_document(wide + ",\"7\":2}", "doc", {1000, 4});
      },
      ErrorKind::kBadInput, "has the key '7' twice");
  CHECK(quote_untrusted_name("a\nb\x7f") == "'a\\x0ab\\x7f'");
}

}  // namespace ckconv
