// safetensors header parsing, catalog reading and output planning: byte identity with files
// written by the reference library, the huggingface_hub split, and every malformed input the
// reader must refuse (issue 5).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "format_test_helpers.h"
#include "formats/safetensors/safetensors_header.h"
#include "formats/safetensors/safetensors_header_writer.h"
#include "formats/safetensors/safetensors_index.h"
#include "formats/safetensors/safetensors_reader.h"
#include "formats/safetensors/safetensors_writer.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;
using test::expect_error;

using test::kFixtures;
const fs::path kFormats = kFixtures / "formats" / "torch2.14_py3.14";

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string u64_le(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i, value >>= 8) bytes[i] = static_cast<char>(value & 0xff);
  return bytes;
}

// A file image: length prefix, the header JSON as given (no padding), then `data_bytes` bytes.
std::string file_image(const std::string& header_json, size_t data_bytes) {
  return u64_le(header_json.size()) + header_json + std::string(data_bytes, '\x5a');
}

using test::TempDir;

void expect_bad_file(const std::string& image, const std::string& fragment) {
  expect_error([&] { parse_safetensors_file_bytes(image, "bad.safetensors"); },
               ErrorKind::kBadInput, fragment);
  // The same bytes on disk go through the reader's own path and must fail the same way.
  TempDir dir;
  write_bytes(dir.path() / "bad.safetensors", image);
  expect_error([&] { read_safetensors(dir.path() / "bad.safetensors"); }, ErrorKind::kBadInput,
               fragment);
}

// Executes a file plan in memory the way the executor does: each file at its size, literals,
// then tensor bytes at their placements, taken from `tensor_bytes(tensor index)`.
template <typename TensorBytes>
std::vector<std::string> materialize(const FilePlan& file_plan, TensorBytes tensor_bytes) {
  std::vector<std::string> files;
  for (const PlannedFile& file : file_plan.files) {
    std::string bytes(file.size_bytes, '\0');
    for (const LiteralBytes& literal : file.literals) {
      REQUIRE(literal.offset + literal.bytes.size() <= bytes.size());
      bytes.replace(literal.offset, literal.bytes.size(), literal.bytes);
    }
    files.push_back(std::move(bytes));
  }
  for (const TensorPlacement& placement : file_plan.placements) {
    const std::string data = tensor_bytes(placement.tensor);
    std::string& file = files.at(placement.file);
    REQUIRE(placement.byte_offset + data.size() <= file.size());
    file.replace(placement.byte_offset, data.size(), data);
  }
  return files;
}

// Re-plans a reference-written file from its parsed (name, dtype, shape) list, in reverse
// order so the writer's own sort is exercised, and checks the bytes come out identical.
void check_replans_identically(const fs::path& path) {
  CAPTURE(path);
  const std::string original = read_bytes(path);
  const SafetensorsHeader header = read_safetensors_header(path);
  CHECK(serialize_header(header.tensors, header.metadata) ==
        original.substr(0, header.data_section_offset()));

  std::vector<OutputTensorSpec> specs;
  std::vector<const SafetensorsEntry*> sources;
  for (auto it = header.tensors.rbegin(); it != header.tensors.rend(); ++it) {
    specs.push_back({it->name, it->dtype, it->shape});
    sources.push_back(&*it);
  }
  SafetensorsWriteOptions options;
  options.metadata = header.metadata.value_or(std::map<std::string, std::string>{});
  const FilePlan file_plan = plan_safetensors(specs, options);
  REQUIRE(file_plan.files.size() == 1);
  CHECK(file_plan.files[0].relative_path == "model.safetensors");
  const auto files = materialize(file_plan, [&](size_t tensor) {
    const SafetensorsEntry& entry = *sources.at(tensor);
    return original.substr(header.data_section_offset() + entry.data_begin, entry.size_bytes());
  });
  CHECK(files[0] == original);
}

std::vector<fs::path> adapter_fixture_files() {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(kFixtures / "adapters")) {
    if (!entry.is_directory()) continue;
    for (const char* name : {"hf/model.safetensors", "native.safetensors"})
      if (fs::exists(entry.path() / name)) paths.push_back(entry.path() / name);
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

const std::string kOneTensorHeader = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";

}  // namespace

// --- byte identity with the reference writer ------------------------------------------------

TEST_CASE("safetensors: serialize_header matches the spec examples byte for byte") {
  SafetensorsEntry a{"a", DType::kF32, {2}, 0, 8};
  const std::string with_metadata =
      serialize_header({a}, std::map<std::string, std::string>{{"format", "pt"}});
  CHECK(with_metadata == u64_le(88) +
                             R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],)"
                             R"("data_offsets":[0,8]}})" +
                             "   ");
  CHECK(serialize_header({}, std::nullopt) == u64_le(8) + "{}      ");
  CHECK(serialize_header({}, std::map<std::string, std::string>{{"format", "pt"}}) ==
        u64_le(32) + R"({"__metadata__":{"format":"pt"}})");
  CHECK(serialize_header({}, std::map<std::string, std::string>{}) ==
        u64_le(24) + R"({"__metadata__":{}}     )");
}

TEST_CASE("safetensors: serde escaping of names and metadata") {
  SafetensorsEntry entry{"q\"\\\b\t\n\f\r\x01\x1f/\x7f\xc3\xa9", DType::kU8, {}, 0, 1};
  const std::string bytes =
      serialize_header({entry}, std::map<std::string, std::string>{{"k\n", "v\x0b"}});
  const std::string json = bytes.substr(8);
  CHECK(json.starts_with(R"({"__metadata__":{"k\n":"v\u000b"},"q\"\\\b\t\n\f\r\u0001\u001f/)"
                         "\x7f\xc3\xa9\":"));
  // And the reader gets the exact name back.
  const SafetensorsHeader parsed = parse_safetensors_file_bytes(bytes + "x", "escape");
  REQUIRE(parsed.tensors.size() == 1);
  CHECK(parsed.tensors[0].name == entry.name);
  CHECK(parsed.metadata->at("k\n") == "v\x0b");
}

TEST_CASE("safetensors: mixed-dtype reference files re-plan byte-identically") {
  check_replans_identically(kFormats / "a.safetensors");
  check_replans_identically(kFixtures / "formats" / "torch2.6_py3.13" / "a.safetensors");
}

TEST_CASE("safetensors: every adapter fixture file re-plans byte-identically") {
  const auto paths = adapter_fixture_files();
  CHECK(paths.size() >= 20);
  for (const fs::path& path : paths) check_replans_identically(path);
}

TEST_CASE("safetensors: a.safetensors parses to the expected entries") {
  const SafetensorsHeader header = read_safetensors_header(kFormats / "a.safetensors");
  CHECK(header.header_size_bytes == 584);
  REQUIRE(header.metadata.has_value());
  CHECK(*header.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  std::vector<std::string> names;
  for (const auto& entry : header.tensors) names.push_back(entry.name);
  const std::vector<std::string> expected = {
      "c", "Z\xc3\xa9\"\\\n\x01/", "a.weight", "empty", "b.weight", "scalar", "f8", "u8", "flag"};
  CHECK(names == expected);
  CHECK(header.tensors[3].shape == Shape{0, 4});
  CHECK(header.tensors[5].shape.empty());
  CHECK(header.tensors[5].dtype == DType::kF16);
  CHECK(header.data_size_bytes == 65);
}

// --- catalogs ---------------------------------------------------------------------------------

TEST_CASE("safetensors: read_safetensors catalogs a single file") {
  const Catalog catalog = read_safetensors(kFormats / "a.safetensors");
  CHECK(catalog.format == CheckpointFormat::kSafetensors);
  REQUIRE(catalog.files.size() == 1);
  CHECK(catalog.metadata.at("format") == "pt");
  REQUIRE(catalog.tensors.size() == 9);
  const CatalogTensor& weight = catalog.tensors[2];
  CHECK(weight.name == "a.weight");
  CHECK(weight.shape == Shape{2, 2});
  REQUIRE(weight.chunks.size() == 1);
  CHECK(weight.chunks[0].byte_offset == 8 + 584 + 28);
  CHECK(weight.chunks[0].strides == Shape{2, 1});
  CHECK(weight.chunks[0].offsets == Shape{0, 0});
  CHECK(is_single_contiguous(weight));
}

TEST_CASE("safetensors: huggingface_hub sharded output reads in shard-name order") {
  const fs::path dir = kFormats / "hubout";
  const Catalog catalog = read_safetensors(dir);
  REQUIRE(catalog.files.size() == 3);
  CHECK(catalog.files[0] == dir / "model-00001-of-00003.safetensors");
  CHECK(catalog.files[2] == dir / "model-00003-of-00003.safetensors");
  std::vector<std::string> names;
  for (const auto& tensor : catalog.tensors) names.push_back(tensor.name);
  CHECK(names == std::vector<std::string>{"big", "a", "b", "c", "d"});
  CHECK(catalog.tensors[2].dtype == DType::kBF16);
  CHECK(catalog.tensors[2].chunks[0].file == 1);
  CHECK(catalog.tensors[2].chunks[0].byte_offset == 8 + 144 + 40);
  CHECK(catalog.metadata.at("format") == "pt");
}

TEST_CASE("safetensors: DCP-consolidated output with unpadded json.dumps headers reads") {
  const fs::path dir = kFormats / "hfout";
  const Catalog catalog = read_safetensors(dir);
  REQUIRE(catalog.files.size() == 2);
  CHECK(catalog.metadata.empty());
  REQUIRE(catalog.tensors.size() == 4);
  CHECK(catalog.tensors[0].name == "model.embed_tokens.weight");
  CHECK(catalog.tensors[0].chunks[0].byte_offset == 8 + 90);
  CHECK(catalog.tensors[1].name == "model.layers.0.mlp.up_proj.weight");
  CHECK(catalog.tensors[2].name == "model.norm.weight");
  CHECK(catalog.tensors[3].name == "lm_head.weight");
  CHECK(catalog.tensors[3].dtype == DType::kF32);
  CHECK(catalog.tensors[3].shape == Shape{4, 3});
  CHECK(catalog.tensors[3].chunks[0].byte_offset == 8 + 257 + 18);
}

TEST_CASE("safetensors: a directory with one file and no index reads that file") {
  const fs::path dir = kFixtures / "adapters" / "llama3_tiny_gqa" / "hf";
  const Catalog catalog = read_safetensors(dir);
  CHECK(catalog.files == std::vector<fs::path>{dir / "model.safetensors"});
  CHECK(catalog.path == dir);
  CHECK(catalog.tensors.size() == 21);
}

// --- sharded planning -----------------------------------------------------------------------

TEST_CASE("safetensors: split quirk: an oversize tensor lands before earlier tensors") {
  // docs/formats.md "How tensors are split into shards", verified against huggingface_hub: a=40,
  // big=400, b=20, c=80, d=20, max 100.
  const auto shards = split_into_shards({40, 400, 20, 80, 20}, 100);
  CHECK(shards == std::vector<std::vector<size_t>>{{1}, {0, 2}, {3, 4}});
  CHECK(split_into_shards({}, 100).empty());
  CHECK(split_into_shards({0, 0, 100, 0}, 100) == std::vector<std::vector<size_t>>{{0, 1, 2, 3}});
  CHECK(split_into_shards({101, 50, 51}, 100) == std::vector<std::vector<size_t>>{{0}, {1}, {2}});
}

TEST_CASE("safetensors: sharded plan reproduces huggingface_hub's shards byte for byte") {
  const fs::path dir = kFormats / "hubout";
  const Catalog catalog = read_safetensors(dir);
  std::vector<std::string> originals;
  for (const auto& file : catalog.files) originals.push_back(read_bytes(file));
  // The state dict order hub saw: a, big, b, c, d.
  std::vector<OutputTensorSpec> specs;
  std::vector<const CatalogTensor*> sources;
  for (const char* name : {"a", "big", "b", "c", "d"}) {
    const CatalogTensor* tensor = catalog.find(name);
    REQUIRE(tensor != nullptr);
    specs.push_back({tensor->name, tensor->dtype, tensor->shape});
    sources.push_back(tensor);
  }
  SafetensorsWriteOptions options;
  options.max_shard_size_bytes = 100;
  options.metadata = {{"format", "pt"}};
  const FilePlan file_plan = plan_safetensors(specs, options);
  REQUIRE(file_plan.files.size() == 4);
  const auto files = materialize(file_plan, [&](size_t index) {
    const CatalogTensor& tensor = *sources.at(index);
    const StoredChunk& chunk = tensor.chunks[0];
    return originals.at(chunk.file).substr(chunk.byte_offset, specs[index].size_bytes());
  });
  for (size_t i = 0; i < 3; ++i) {
    CHECK(file_plan.files[i].relative_path == catalog.files[i].filename().string());
    CHECK(files[i] == originals[i]);
  }
  CHECK(file_plan.files[3].relative_path == "model.safetensors.index.json");
  CHECK(files[3] == R"({
  "metadata": {
    "total_parameters": 145,
    "total_size": 560
  },
  "weight_map": {
    "a": "model-00002-of-00003.safetensors",
    "b": "model-00002-of-00003.safetensors",
    "big": "model-00001-of-00003.safetensors",
    "c": "model-00003-of-00003.safetensors",
    "d": "model-00003-of-00003.safetensors"
  }
}
)");
  // And what we planned reads back as a valid sharded checkpoint.
  TempDir out;
  for (size_t i = 0; i < files.size(); ++i)
    write_bytes(out.path() / file_plan.files[i].relative_path, files[i]);
  const Catalog reread = read_safetensors(out.path());
  CHECK(reread.tensors.size() == 5);
}

TEST_CASE("safetensors: plan writes one file when it fits, names shards by the stem") {
  std::vector<OutputTensorSpec> specs = {{"x", DType::kF32, {4}}, {"y", DType::kBF16, {4}}};
  SafetensorsWriteOptions options;
  options.max_shard_size_bytes = 24;
  FilePlan file_plan = plan_safetensors(specs, options);
  REQUIRE(file_plan.files.size() == 1);
  CHECK(file_plan.files[0].relative_path == "model.safetensors");
  // No metadata given: no __metadata__ key.
  CHECK(file_plan.files[0].literals[0].bytes.substr(8, 5) == R"({"x":)");
  CHECK(file_plan.placements.size() == 2);

  options.max_shard_size_bytes = 16;
  options.file_stem = "weights";
  file_plan = plan_safetensors(specs, options);
  REQUIRE(file_plan.files.size() == 3);
  CHECK(file_plan.files[0].relative_path == "weights-00001-of-00002.safetensors");
  CHECK(file_plan.files[1].relative_path == "weights-00002-of-00002.safetensors");
  CHECK(file_plan.files[2].relative_path == "weights.safetensors.index.json");
  CHECK(file_plan.files[2].literals[0].bytes.size() == file_plan.files[2].size_bytes);
}

TEST_CASE("safetensors: index JSON escapes like Python's json.dumps(ensure_ascii=True)") {
  const std::string name = "\xc3\xa9\n\"\\\x7f\x01\xf0\x9f\x98\x80/";
  const std::string json = serialize_safetensors_index({{name, "m.safetensors"}}, 1, 2);
  CHECK(json.find(R"("\u00e9\n\"\\\u007f\u0001\ud83d\ude00/": "m.safetensors")") !=
        std::string::npos);
  const SafetensorsIndex parsed = parse_safetensors_index(json, "index");
  REQUIRE(parsed.weight_map.size() == 1);
  CHECK(parsed.weight_map[0].first == name);
  CHECK(parsed.total_size_bytes == 2u);
}

TEST_CASE("safetensors: plan refuses reserved, non-UTF-8 and duplicate names") {
  SafetensorsWriteOptions options;
  expect_error(
      [&] {
        plan_safetensors({{"__metadata__", DType::kF32, {1}}}, options);
      },
      ErrorKind::kBadInput, "reserved");
  expect_error(
      [&] {
        plan_safetensors({{"bad\xff", DType::kF32, {1}}}, options);
      },
      ErrorKind::kBadInput, "UTF-8");
  expect_error(
      [&] {
        plan_safetensors({{"w", DType::kF32, {1}}, {"w", DType::kF16, {1}}}, options);
      },
      ErrorKind::kInternal, "'w'");
  expect_error(
      [&] {
        plan_safetensors({{"f4", DType::kF4, {3}}}, options);
      },
      ErrorKind::kBadInput, "whole number of bytes");
}

// --- accepted unusual but valid files ---------------------------------------------------------

TEST_CASE("safetensors: accepts unpadded headers, whitespace, extra fields, any entry order") {
  const std::string header =
      " \n{\"b\": {\"shape\": [1], \"dtype\": \"U8\", \"data_offsets\": [4, 5], \"x\": [{}]},"
      " \"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}\t ";
  const SafetensorsHeader parsed = parse_safetensors_file_bytes(file_image(header, 5), "ok");
  REQUIRE(parsed.tensors.size() == 2);
  CHECK(parsed.tensors[0].name == "a");
  CHECK(parsed.tensors[1].name == "b");
  CHECK_FALSE(parsed.metadata.has_value());
  CHECK(parse_safetensors_file_bytes(file_image("{}", 0), "empty").tensors.empty());
  // F4 packs two values per byte: 6 values in 3 bytes.
  const std::string f4 = R"({"q":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}})";
  CHECK(parse_safetensors_file_bytes(file_image(f4, 3), "f4").tensors[0].dtype == DType::kF4);
}

// A header of n tensors parses in time near-linear in n: 100k tensors take ~10-25x the time
// of 10k (quadratic work would take 100x and more). A ratio of two timings in one process is robust
// to a slow or loaded machine, where an absolute bound is not.
TEST_CASE("safetensors: header parse time grows linearly with the tensor count") {
  auto header_of = [](int tensors) {
    std::vector<SafetensorsEntry> entries;
    uint64_t offset = 0;
    for (int i = 0; i < tensors; ++i) {
      SafetensorsEntry entry{
          "model.layers." + std::to_string(i) + ".weight", DType::kU8, {1}, 0, 0};
      entry.data_begin = offset;
      entry.data_end = ++offset;
      entries.push_back(std::move(entry));
    }
    return serialize_header(entries, std::nullopt) + std::string(offset, '\0');
  };
  auto seconds_to_parse = [](const std::string& image, size_t expected_tensors) {
    const auto start = std::chrono::steady_clock::now();
    const SafetensorsHeader parsed = parse_safetensors_file_bytes(image, "big");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(parsed.tensors.size() == expected_tensors);
    CHECK(parsed.tensors.back().name ==
          "model.layers." + std::to_string(expected_tensors - 1) + ".weight");
    return seconds;
  };
  const std::string small = header_of(10'000);
  const std::string large = header_of(100'000);
  // The faster of two runs each, so that a slow moment of a loaded machine sets neither.
  double small_seconds = 1e9, large_seconds = 1e9;
  for (int run = 0; run < 2; ++run) {
    small_seconds = std::min(small_seconds, seconds_to_parse(small, 10'000));
    large_seconds = std::min(large_seconds, seconds_to_parse(large, 100'000));
  }
  MESSAGE("10k tensors: " << small_seconds << " s, 100k tensors: " << large_seconds << " s");
  // Measured ~23x (allocation and cache effects make it a little worse than linear).
  CHECK(large_seconds < 60 * std::max(small_seconds, 1e-4));
}

// --- malformed files: each is refused with kBadInput and a message naming the problem -------

TEST_CASE("safetensors: bad: empty file") {
  expect_bad_file("", "too short");
}

TEST_CASE("safetensors: bad: truncated inside the length prefix") {
  expect_bad_file(file_image(kOneTensorHeader, 8).substr(0, 5), "too short");
}

TEST_CASE("safetensors: bad: truncated inside the header") {
  expect_bad_file(file_image(kOneTensorHeader, 8).substr(0, 30), "only 22 bytes follow");
}

TEST_CASE("safetensors: bad: truncated inside the data") {
  std::string image = file_image(kOneTensorHeader, 8);
  image.pop_back();
  expect_bad_file(image, "need 8 data bytes after the header, but the file has 7 (truncated)");
}

TEST_CASE("safetensors: bad: header length larger than the file") {
  expect_bad_file(u64_le(1000) + kOneTensorHeader, "header length is 1000 bytes but only");
}

TEST_CASE("safetensors: bad: header length above the 100 MB cap") {
  expect_bad_file(u64_le(100'000'001) + kOneTensorHeader, "above the limit of 100000000");
  expect_bad_file(u64_le(~uint64_t{0}) + kOneTensorHeader, "above the limit");
}

TEST_CASE("safetensors: bad: header not UTF-8") {
  expect_bad_file(
      file_image("{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4),
      "not valid UTF-8 (byte 3");
  // An overlong encoding of '/' and a UTF-16 surrogate are not UTF-8 either.
  expect_bad_file(file_image("{\"\xc0\xaf\":1}", 0), "UTF-8");
  expect_bad_file(file_image("{\"\xed\xa0\x80\":1}", 0), "UTF-8");
}

TEST_CASE("safetensors: bad: invalid JSON") {
  expect_bad_file(file_image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", 8),
                  "header is not valid JSON");
  expect_bad_file(file_image(kOneTensorHeader + "x", 8), "not valid JSON");
  // nlohmann alone would stop at a NUL and accept the header.
  expect_bad_file(file_image(std::string(kOneTensorHeader) + '\0', 8), "NUL byte at offset 54");
  expect_bad_file(file_image(std::string(kOneTensorHeader) + '\0' + "garbage", 8), "NUL byte");
}

TEST_CASE("safetensors: bad: header is not an object") {
  expect_bad_file(file_image("[1,2]", 0), "must be a JSON object");
}

TEST_CASE("safetensors: bad: duplicate tensor keys") {
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                             2),
                  "has the key 't' twice");
}

TEST_CASE("safetensors: bad: duplicate keys inside an entry and in __metadata__") {
  expect_bad_file(
      file_image(R"({"t":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}})", 1),
      "has the key 'dtype' twice");
  expect_bad_file(file_image(R"({"__metadata__":{"format":"pt","format":"np"}})", 0),
                  "has the key 'format' twice");
}

TEST_CASE("safetensors: bad: JSON nested too deep") {
  const std::string deep = R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":)" +
                           std::string(200, '[') + std::string(200, ']') + "}}";
  expect_bad_file(file_image(deep, 1), "deeper than 64");
}

TEST_CASE("safetensors: bad: unknown dtype") {
  expect_bad_file(file_image(R"({"t":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", 4),
                  "tensor 't': unknown dtype 'F31'");
  expect_bad_file(file_image(R"({"t":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4),
                  "unknown dtype 'f32'");
  expect_bad_file(file_image(R"({"t":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4),
                  "dtype must be a string");
}

TEST_CASE("safetensors: bad: negative or non-integer shape") {
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}})", 0),
                  "tensor 't': shape must hold non-negative integers, found number -1");
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}})", 1),
                  "non-negative integers");
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", 1),
                  "shape must be an array");
}

TEST_CASE("safetensors: bad: overflowing shape") {
  // Each dim fits, the product does not.
  expect_bad_file(
      file_image(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                 0),
      "is too large");
  expect_bad_file(
      file_image(R"({"t":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,1]}})", 1),
      "shape dimension 18446744073709551615 is too large");
  expect_bad_file(
      file_image(R"({"t":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,1]}})", 1),
      "non-negative integers");
}

TEST_CASE("safetensors: bad: negative, overflowing or malformed data_offsets") {
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1),
                  "data_offsets must be [begin, end]");
  expect_bad_file(
      file_image(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}})", 1),
      "data_offsets must be [begin, end]");
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", 1),
                  "data_offsets must be [begin, end]");
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", 1),
                  "end before they begin");
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[1],)"
                             R"("data_offsets":[18446744073709551615,18446744073709551615]}})",
                             0),
                  "needs 1 bytes");
}

TEST_CASE("safetensors: bad: missing fields and non-object entries") {
  expect_bad_file(file_image(R"({"t":{"dtype":"U8","shape":[1]}})", 1),
                  "tensor 't': missing field \"data_offsets\"");
  expect_bad_file(file_image(R"({"t":[0,1]})", 1), "tensor 't': expected an object");
}

TEST_CASE("safetensors: bad: shape x dtype differs from the byte length") {
  expect_bad_file(file_image(R"({"t":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}})", 8),
                  "tensor 't': shape [2, 2] of F32 needs 16 bytes, but data_offsets [0, 8] span 8");
}

TEST_CASE("safetensors: bad: sub-byte tensor that is not a whole number of bytes") {
  expect_bad_file(file_image(R"({"t":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", 2),
                  "holds 12 bits, not a whole number of bytes");
  expect_bad_file(file_image(R"({"t":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,4]}})", 4),
                  "needs 3 bytes");
}

TEST_CASE("safetensors: bad: overlapping offsets") {
  expect_bad_file(file_image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
                             6),
                  "tensor 'b': data_offsets [2, 6] overlap tensor 'a', which ends at 4");
  // Two tensors sharing the same bytes.
  expect_bad_file(file_image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                             4),
                  "overlap tensor 'a'");
}

TEST_CASE("safetensors: bad: hole between tensors") {
  expect_bad_file(file_image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}})",
                             10),
                  "tensor 'b': data_offsets [6, 10] leave a hole of 2 bytes after tensor 'a'");
}

TEST_CASE("safetensors: bad: data not starting at offset 0") {
  expect_bad_file(file_image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6),
                  "the first tensor must start at offset 0");
}

TEST_CASE("safetensors: bad: trailing bytes after the last tensor") {
  expect_bad_file(file_image(kOneTensorHeader, 9),
                  "1 trailing bytes after the last tensor (expected the file to end at byte");
  expect_bad_file(file_image("{}", 3), "3 trailing bytes");
}

TEST_CASE("safetensors: bad: __metadata__ not a map of strings") {
  expect_bad_file(file_image(R"({"__metadata__":{"format":1}})", 0),
                  "__metadata__ value of 'format' must be a string");
  expect_bad_file(file_image(R"({"__metadata__":["pt"]})", 0), "__metadata__ must be an object");
}

TEST_CASE("safetensors: bad: more dimensions than kMaxTensorRank") {
  std::string dims;
  for (size_t i = 0; i <= kMaxTensorRank; ++i) dims += i ? ",1" : "1";
  expect_bad_file(
      file_image(R"({"a":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})", 1),
      "shape has 65 dimensions, more than the limit of 64");
  dims.resize(dims.size() - 2);  // exactly the limit is fine
  CHECK(parse_safetensors_file_bytes(
            file_image(R"({"a":{"dtype":"U8","shape":[)" + dims + R"(],"data_offsets":[0,1]}})", 1),
            "ok")
            .tensors[0]
            .shape.size() == kMaxTensorRank);
}

TEST_CASE("safetensors: bad: error messages name the file") {
  TempDir dir;
  write_bytes(dir.path() / "w.safetensors", file_image("{", 0));
  expect_error([&] { read_safetensors(dir.path() / "w.safetensors"); }, ErrorKind::kBadInput,
               (dir.path() / "w.safetensors").string() + ": header is not valid JSON");
}

}  // namespace ckconv
