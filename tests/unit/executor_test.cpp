// The block executor: output bytes do not depend on the block size or the thread count,
// elements cut by block edges and unaligned tensor offsets come out whole, literals and
// padding land where the file plan says, CRC patches match the tensor bytes, and
// matches_files accepts exactly the files execute() writes.
#include "pipeline/executor.h"

#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/error.h"
#include "core/file.h"
#include "format_test_helpers.h"
#include "layout/recipe.h"

using namespace ckconv;

namespace {

// Byte i of a generated source tensor `seed` is (seed * 131 + i * 7 + i / 251) mod 256.
uint8_t source_byte(int seed, int64_t i) {
  return static_cast<uint8_t>(seed * 131 + i * 7 + i / 251);
}

SourceRef generated(int seed, int element_size) {
  SourceRef ref;
  ref.generate = [seed, element_size](int64_t first, int64_t count, uint8_t* out) {
    for (int64_t i = 0; i < count * element_size; ++i)
      out[i] = source_byte(seed, first * element_size + i);
  };
  return ref;
}

struct Fixture {
  ExecutionPlan plan;
  FilePlan file_plan;
  std::vector<std::string> expected;  // per file
};

// Two files: "a.bin" holds a literal header of odd length, then a bf16 tensor of odd
// element count (so the next tensor is misaligned), an f32 transposed tensor, a zero-filled
// f64 tensor and a literal tail with room for a CRC; "b/c.bin" holds a small f32 copy.
Fixture make_fixture() {
  Fixture f;
  const std::string header = "HEADER-odd-length:";
  const int64_t rows = 37, cols = 129;  // transposed [rows, cols] -> [cols, rows], f32
  const int64_t bf16_count = 3001;
  const int64_t zeros_count = 700;

  f.plan.recipes.push_back(recipe_identity("copy", "s0", {bf16_count}, DType::kBF16));
  f.plan.sources.push_back({generated(1, 2)});
  f.plan.recipes.push_back(recipe_transpose_last2("transposed", "s1", {rows, cols}, DType::kF32));
  f.plan.sources.push_back({generated(2, 4)});
  f.plan.recipes.push_back(recipe_zeros("zeros", {zeros_count}, DType::kF64));
  f.plan.sources.push_back({});
  f.plan.recipes.push_back(recipe_identity("small", "s3", {5}, DType::kF32));
  f.plan.sources.push_back({generated(3, 4)});

  std::string a = header;
  const uint64_t copy_offset = a.size();
  for (int64_t i = 0; i < bf16_count * 2; ++i) a.push_back(static_cast<char>(source_byte(1, i)));
  const uint64_t transposed_offset = a.size();
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r)
      for (int b = 0; b < 4; ++b)
        a.push_back(static_cast<char>(source_byte(2, (r * cols + c) * 4 + b)));
  const uint64_t zeros_offset = a.size();
  a.append(static_cast<size_t>(zeros_count * 8), '\0');
  a.append(3, '\0');  // padding nobody writes
  const uint64_t tail_offset = a.size();
  const std::string tail = "TAIL....END";  // "...." is the CRC of `transposed`
  a += tail;
  const std::string transposed_bytes =
      a.substr(transposed_offset, static_cast<size_t>(rows * cols * 4));
  const uint32_t crc = static_cast<uint32_t>(crc32_z(
      0, reinterpret_cast<const uint8_t*>(transposed_bytes.data()), transposed_bytes.size()));
  for (int i = 0; i < 4; ++i) a[tail_offset + 4 + i] = static_cast<char>(crc >> (8 * i));

  std::string b;
  for (int64_t i = 0; i < 20; ++i) b.push_back(static_cast<char>(source_byte(3, i)));

  f.file_plan.files.push_back(
      PlannedFile{"a.bin", a.size(), {LiteralBytes{0, header}, LiteralBytes{tail_offset, tail}}});
  f.file_plan.files.push_back(PlannedFile{"b/c.bin", b.size(), {}});
  f.file_plan.placements = {TensorPlacement{0, 0, copy_offset},
                            TensorPlacement{1, 0, transposed_offset},
                            TensorPlacement{2, 0, zeros_offset}, TensorPlacement{3, 1, 0}};
  f.file_plan.crc_patches = {Crc32Patch{1, 0, tail_offset + 4}};
  f.expected = {a, b};
  return f;
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

using test::TempDir;

}  // namespace

TEST_CASE("execute writes the same bytes for every block size and thread count") {
  const Fixture f = make_fixture();
  TempDir temp;
  for (uint64_t block : {uint64_t{4096}, uint64_t{8192}, uint64_t{1} << 20}) {
    for (int threads : {1, 3}) {
      CAPTURE(block);
      CAPTURE(threads);
      const std::filesystem::path out =
          temp.path() / ("out-" + std::to_string(block) + "-" + std::to_string(threads));
      std::filesystem::create_directories(out);
      ExecuteOptions options;
      options.block_bytes = block;
      options.threads = threads;
      options.writes_in_flight = threads == 1 ? 0 : 2;
      execute(f.plan, f.file_plan, out, options);
      CHECK(read_all(out / "a.bin") == f.expected[0]);
      CHECK(read_all(out / "b/c.bin") == f.expected[1]);
      CHECK(std::filesystem::file_size(out / "a.bin") == f.expected[0].size());
    }
  }
}

TEST_CASE("matches_files accepts exactly the files execute writes") {
  const Fixture f = make_fixture();
  TempDir temp;
  ExecuteOptions options;
  options.block_bytes = 4096;
  options.threads = 2;
  execute(f.plan, f.file_plan, temp.path(), options);
  CHECK(matches_files(f.plan, f.file_plan, temp.path(), options));

  SUBCASE("a changed tensor byte") {
    std::string a = f.expected[0];
    a[5000] = static_cast<char>(a[5000] ^ 1);
    std::ofstream(temp.path() / "a.bin", std::ios::binary) << a;
    CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options));
  }
  SUBCASE("a changed CRC") {
    std::string a = f.expected[0];
    a[a.size() - 6] = static_cast<char>(a[a.size() - 6] ^ 1);
    std::ofstream(temp.path() / "a.bin", std::ios::binary) << a;
    CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options));
  }
  SUBCASE("an extra file") {
    std::ofstream(temp.path() / "extra.bin") << "x";
    CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options));
  }
  SUBCASE("a missing file") {
    std::filesystem::remove(temp.path() / "b/c.bin");
    CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options));
  }
  SUBCASE("a longer file") {
    std::ofstream(temp.path() / "b/c.bin", std::ios::binary | std::ios::app) << "x";
    CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options));
  }
}

TEST_CASE("matches_files compares by block digests without reading the bytes back") {
  const Fixture f = make_fixture();
  TempDir temp;
  ExecuteOptions options;
  options.block_bytes = 4096;
  options.threads = 2;
  std::vector<uint64_t> digests;
  options.block_digests = &digests;
  execute(f.plan, f.file_plan, temp.path(), options);
  REQUIRE(digests.size() == 9);  // a.bin: 8 blocks of 4 KiB, b/c.bin: 1
  options.block_digests = nullptr;
  CHECK(matches_files(f.plan, f.file_plan, temp.path(), options, &digests));
  std::vector<uint64_t> wrong = digests;
  wrong[1] ^= 1;
  CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options, &wrong));
  // The CRC fields are compared with the files, not by digest.
  std::string a = f.expected[0];
  a[a.size() - 6] = static_cast<char>(a[a.size() - 6] ^ 1);
  std::ofstream(temp.path() / "a.bin", std::ios::binary) << a;
  CHECK_FALSE(matches_files(f.plan, f.file_plan, temp.path(), options, &digests));
}

TEST_CASE("block digests are XXH64 with seed 0 (xxHash's published sanity-check values)") {
  // xxHash's sanity buffer (tests/sanity_test_vectors.h): byte i is the top byte of
  // 2654435761 * 11400714785074694797^i.
  std::vector<uint8_t> buffer(222);
  uint64_t generator = 2654435761u;
  for (uint8_t& byte : buffer) {
    byte = static_cast<uint8_t>(generator >> 56);
    generator *= 11400714785074694797ull;
  }
  CHECK(block_digest(buffer.data(), 0) == 0xEF46DB3751D8E999ull);
  CHECK(block_digest(buffer.data(), 1) == 0xE934A84ADB052768ull);
  CHECK(block_digest(buffer.data(), 14) == 0x8282DCC4994E35C8ull);
  CHECK(block_digest(buffer.data(), 222) == 0xB641AE8CB691C174ull);
  CHECK(block_digest(reinterpret_cast<const uint8_t*>("abc"), 3) == 0x44BC2CF5AD770999ull);
}
