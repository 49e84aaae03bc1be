// verify's comparisons: StreamingComparison (values checked on the blocks of an output while it
// is written) must find every differing element wherever block boundaries fall, and say which.
#include "verify/compare.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "format_test_helpers.h"
#include "formats/checkpoint_reader.h"

namespace ckconv {
namespace {

using test::TempDir;

// A safetensors file with "a" (f32 [3, 5]) then "b" (bf16 [7]); element i of each is i + 1.
std::string two_tensor_file(std::string* a_bytes, std::string* b_bytes) {
  a_bytes->clear();
  b_bytes->clear();
  for (int i = 0; i < 15; ++i) {
    float value = static_cast<float>(i + 1);
    a_bytes->append(reinterpret_cast<const char*>(&value), 4);
  }
  for (int i = 0; i < 7; ++i) {
    float value = static_cast<float>(i + 1);
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    const uint16_t high = static_cast<uint16_t>(bits >> 16);
    b_bytes->append(reinterpret_cast<const char*>(&high), 2);
  }
  std::string header = R"({"a":{"dtype":"F32","shape":[3,5],"data_offsets":[0,60]},)"
                       R"("b":{"dtype":"BF16","shape":[7],"data_offsets":[60,74]}})";
  while (header.size() % 8 != 0) header += ' ';
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return length + header + *a_bytes + *b_bytes;
}

// An output file holding "b" at offset 100 and "a" at offset 200 (other bytes: literals).
struct Output {
  std::vector<OutputTensorSpec> tensors = {{"a", DType::kF32, {3, 5}}, {"b", DType::kBF16, {7}}};
  FilePlan file_plan;
  std::string bytes = std::string(300, 'x');
  Output(const std::string& a, const std::string& b) {
    file_plan.files.push_back({"out.bin", bytes.size(), {}});
    file_plan.placements = {{1, 0, 100}, {0, 0, 200}};
    bytes.replace(100, b.size(), b);
    bytes.replace(200, a.size(), a);
  }
};

Comparison stream(const MappedCheckpoint& expected, const Output& output, uint64_t block_size,
                  const std::vector<Exclusion>& exclusions = {}, bool forget_compared = false) {
  StreamingComparison comparison(expected, exclusions, {}, forget_compared);
  comparison.begin(output.tensors, output.file_plan);
  for (uint64_t offset = 0; offset < output.bytes.size(); offset += block_size) {
    const uint64_t size = std::min<uint64_t>(block_size, output.bytes.size() - offset);
    comparison.block(0, offset, reinterpret_cast<const uint8_t*>(output.bytes.data()) + offset,
                     size);
  }
  return comparison.result();
}

}  // namespace

TEST_CASE("StreamingComparison finds differing elements wherever blocks split the tensors") {
  TempDir dir;
  std::string a, b;
  test::write_file(dir / "x.safetensors", two_tensor_file(&a, &b));
  const MappedCheckpoint expected(read_checkpoint(dir / "x.safetensors"));

  for (bool forget : {false, true})  // dropping compared pages changes no result
    for (uint64_t block_size : {1, 3, 7, 16, 64, 300}) {
      CAPTURE(forget);
      CAPTURE(block_size);
      Output same(a, b);
      CHECK(stream(expected, same, block_size, {}, forget).equal());

      Output changed(a, b);
      changed.bytes[200 + 4 * 6 + 1] ^= 1;      // a[6] (row 1, column 1)
      changed.bytes[200 + 4 * 13 + 3] ^= 0x40;  // a[13], sign/exponent byte
      changed.bytes[100 + 2 * 5] ^= 1;          // b[5]
      const Comparison result = stream(expected, changed, block_size, {}, forget);
      REQUIRE(result.differences.size() == 2);
      // Sorted by name.
      CHECK(result.differences[0].rfind("a: ", 0) == 0);
      CHECK(result.differences[0].find("elements differ, first at element 6") != std::string::npos);
      CHECK(result.differences[1].rfind("b: ", 0) == 0);
      CHECK(result.differences[1].find("first at element 5") != std::string::npos);
      // Each changed element has one changed byte, so no split can count it twice.
      CHECK(result.differences[0].find("a: 2 of 15 elements") == 0);
      CHECK(result.differences[1].find("b: 1 of 7 elements") == 0);
    }
}

TEST_CASE("StreamingComparison skips excluded tensors and ones of another shape") {
  TempDir dir;
  std::string a, b;
  test::write_file(dir / "x.safetensors", two_tensor_file(&a, &b));
  const MappedCheckpoint expected(read_checkpoint(dir / "x.safetensors"));
  Output output(a, b);
  output.bytes[100] ^= 1;  // b[0]
  output.bytes[200] ^= 1;  // a[0]
  const std::vector<Exclusion> exclude_b = {{std::regex("b"), "test"}};
  const Comparison excluded = stream(expected, output, 64, exclude_b);
  REQUIRE(excluded.differences.size() == 1);
  CHECK(excluded.differences[0].rfind("a: ", 0) == 0);

  output.tensors[0].shape = {5, 3};  // compare_key_sets reports this one
  CHECK(stream(expected, output, 64, exclude_b).equal());
}

TEST_CASE("StreamingComparison with forget_compared drops the compared bytes from the page cache") {
  // verify's comparison is the input's last reader: its pages leave the page cache as they
  // are compared, so that the scratch checkpoints keep theirs. Without the option they stay.
  TempDir dir;
  const int64_t elements = int64_t{2} << 20;  // bf16: 4 MiB of data
  std::string data(static_cast<size_t>(2 * elements), '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4093);
  std::string header = R"({"w":{"dtype":"BF16","shape":[)" + std::to_string(elements) +
                       R"(],"data_offsets":[0,)" + std::to_string(data.size()) + "]}}";
  while (header.size() % 8 != 0) header += ' ';
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  const auto path = dir / "w.safetensors";
  test::write_file(path, length + header + data);
  {
    const int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::fsync(fd) == 0);  // clean pages: they can be dropped
    ::close(fd);
  }
  struct statfs fs_info {};
  REQUIRE(::statfs(dir.path().c_str(), &fs_info) == 0);
  const bool in_memory = fs_info.f_type == TMPFS_MAGIC || fs_info.f_type == RAMFS_MAGIC;
  const uint64_t data_offset = 8 + header.size();

  // One output file holding w at offset 0, compared in 1 MiB blocks.
  Output output("", "");
  output.tensors = {{"w", DType::kBF16, {elements}}};
  output.file_plan.files = {{"out.bin", data.size(), {}}};
  output.file_plan.placements = {{0, 0, 0}};
  output.bytes = data;
  for (bool forget : {false, true}) {
    CAPTURE(forget);
    const MappedCheckpoint expected(read_checkpoint(path));
    // Read it all back into the page cache (an earlier case may have dropped it).
    std::string copy(data.size(), '\0');
    expected.read_elements(expected.catalog().tensors.at(0), 0, elements,
                           reinterpret_cast<uint8_t*>(copy.data()));
    REQUIRE(copy == data);
    CHECK(stream(expected, output, uint64_t{1} << 20, {}, forget).equal());
    if (in_memory) continue;
    const double share = expected.file(0).resident_share(data_offset, data.size());
    if (forget)
      CHECK(share < 0.5);
    else
      CHECK(share == 1.0);
  }
  if (in_memory) MESSAGE("temp dir in memory: eviction not checked");
}

}  // namespace ckconv
