// Stored-zip reading and planning: PyTorch-written archives read back, the planner
// reproduces them byte for byte, zip64 layouts, archives embedded at an offset, and every
// kind of corrupt directory (issue 5).
#include <doctest/doctest.h>

#include <string>

#include "core/error.h"
#include "core/file.h"
#include "error_checks.h"
#include "format_test_helpers.h"
#include "formats/torch_save/zip_reader.h"
#include "formats/torch_save/zip_writer.h"

namespace ckconv {
namespace {

using test::kFixtures;
using test::kTorchVersions;
using test::read_file;
using test::TempDir;
using test::write_file;

uint32_t le32(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[at + i])) << (8 * i);
  return value;
}

void put_le(std::string& bytes, size_t at, uint64_t value, int size) {
  for (int i = 0; i < size; ++i) bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

// Entries of the zip at `path` with their contents.
std::vector<ZipEntrySpec> read_entries(const test::fs::path& path) {
  File file = File::open_read(path);
  ZipReader zip(file, 0, file.size(), path.string());
  std::vector<ZipEntrySpec> entries;
  for (const ZipEntry& entry : zip.entries())
    entries.push_back(ZipEntrySpec{entry.name, entry.size_bytes, zip.read(entry, 1 << 20)});
  return entries;
}

void expect_zip_refused(const test::fs::path& path, uint64_t offset, uint64_t length,
                        const std::string& fragment) {
  File file = File::open_read(path);
  try {
    ZipReader zip(file, offset, length, "bad.zip");
    for (const ZipEntry& entry : zip.entries()) zip.data_offset(entry);
    FAIL("accepted a corrupt zip; expected: " << fragment);
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    CHECK_MESSAGE(std::string(error.what()).find(fragment) != std::string::npos,
                  std::string(error.what()));
  }
}

TEST_CASE("zip: torch.save archives of PyTorch 2.6 and 2.14 are read") {
  for (const std::string& version : kTorchVersions) {
    CAPTURE(version);
    const auto path = kFixtures / "formats" / version / "sd.pt";
    File file = File::open_read(path);
    ZipReader zip(file, 0, file.size(), path.string());
    REQUIRE(zip.find("sd/data.pkl") != nullptr);
    REQUIRE(zip.find("sd/version") != nullptr);
    CHECK(zip.read(*zip.find("sd/version"), 16) == "3\n");
    CHECK(zip.read(*zip.find("sd/byteorder"), 16) == "little");
    CHECK(zip.find("sd/data/3")->size_bytes == 24);
    for (const ZipEntry& entry : zip.entries()) CHECK(zip.data_offset(entry) % 64 == 0);
    CHECK(zip.find("missing") == nullptr);
  }
  // Python zipfile's layout: sizes in local headers, no descriptors, no alignment.
  auto entries = read_entries(kFixtures / "formats" / "torch2.14_py3.14" / "min_plain.pt");
  REQUIRE(entries.size() == 3);
  CHECK(entries[2].name == "mymodel/version");
  CHECK(*entries[2].content == "3\n");

  // An archive comment longer than the first tail the reader tries.
  std::string commented = read_file(kFixtures / "formats" / "torch2.14_py3.14" / "min_plain.pt");
  put_le(commented, commented.rfind("PK\x05\x06") + 20, 3000, 2);
  commented += std::string(3000, 'c');
  TempDir dir;
  write_file(dir / "commented.pt", commented);
  CHECK(read_entries(dir / "commented.pt").size() == 3);
}

TEST_CASE("zip: the planner reproduces PyTorch's archives byte for byte") {
  for (const std::string& version : kTorchVersions) {
    for (const char* name : {"sd.pt", "param.pt", "ck.pt"}) {
      CAPTURE(version);
      CAPTURE(name);
      const auto path = kFixtures / "formats" / version / name;
      const std::string original = read_file(path);
      PlannedZip plan = plan_stored_zip(read_entries(path));
      REQUIRE(plan.size_bytes == original.size());
      std::string rebuilt(plan.size_bytes, '\0');
      for (const LiteralBytes& literal : plan.literals)
        rebuilt.replace(literal.offset, literal.bytes.size(), literal.bytes);
      CHECK(rebuilt == original);
      CHECK(plan.literals.size() == 1);  // nothing left to the executor
    }
  }
}

TEST_CASE("zip: holes for tensor data, CRC patch points and reading back at an offset") {
  std::vector<ZipEntrySpec> specs = {{"a/data.pkl", 3, std::string("abc")},
                                     {"a/data/0", 100, std::nullopt},
                                     {"a/data/1", 0, std::nullopt},
                                     {"a/version", 2, std::string("3\n")}};
  PlannedZip plan = plan_stored_zip(specs);
  REQUIRE(plan.data_offsets.size() == 4);
  CHECK(plan.crc_offsets[0].empty());
  CHECK(plan.crc_offsets[1].size() == 2);
  const std::string data = test::pattern_bytes(100, 1);
  // Materialise behind a 1000-byte prefix, as a DCP item inside a .distcp file.
  std::string archive(plan.size_bytes, '\0');
  for (const LiteralBytes& literal : plan.literals)
    archive.replace(literal.offset, literal.bytes.size(), literal.bytes);
  archive.replace(plan.data_offsets[1], data.size(), data);
  uint32_t crc = test::crc32_of(data);
  for (uint64_t offset : plan.crc_offsets[1]) put_le(archive, offset, crc, 4);
  TempDir dir;
  write_file(dir / "item.bin", std::string(1000, 'x') + archive + "trailing");
  File file = File::open_read(dir / "item.bin");
  ZipReader zip(file, 1000, archive.size(), "item");
  REQUIRE(zip.entries().size() == 4);
  CHECK(zip.find("a/data/0")->crc32 == crc);
  CHECK(zip.find("a/data/1")->crc32 == 0);
  CHECK(zip.data_offset(*zip.find("a/data/0")) == 1000 + plan.data_offsets[1]);
  CHECK(plan.data_offsets[1] % 64 == 0);
  CHECK(zip.read(*zip.find("a/data/0"), 1000) == data);
  CHECK(zip.read(*zip.find("a/data.pkl"), 1000) == "abc");
  CHECK_THROWS_KIND_WITH(zip.read(*zip.find("a/data/0"), 99), ErrorKind::kBadInput,
                         "exceeds the limit");
  CHECK(test::crc32_of("123456789") == 0xcbf43926u);  // CRC-32's standard check value
}

TEST_CASE("zip: zip64 records for a 5 GiB entry and entries beyond 4 GiB") {
  const uint64_t huge = uint64_t{5} << 30;
  std::vector<ZipEntrySpec> specs = {{"big/data.pkl", 1, std::string("x")},
                                     {"big/data/0", huge, std::nullopt},
                                     {"big/version", 2, std::string("3\n")}};
  PlannedZip plan = plan_stored_zip(specs);
  CHECK(plan.data_offsets[1] % 64 == 0);
  CHECK(plan.data_offsets[2] % 64 == 0);
  CHECK(plan.data_offsets[2] > huge);
  // A sparse file holding only the literals: the holes read as zeros.
  TempDir dir;
  {
    File out = File::create(dir / "big.pt");
    out.truncate(plan.size_bytes);
    for (const LiteralBytes& literal : plan.literals)
      out.write_at(literal.bytes.data(), literal.bytes.size(), literal.offset);
  }
  File file = File::open_read(dir / "big.pt");
  ZipReader zip(file, 0, file.size(), "big.pt");
  REQUIRE(zip.entries().size() == 3);
  CHECK(zip.find("big/data/0")->size_bytes == huge);
  CHECK(zip.find("big/version")->local_header_offset > 0xffffffffu);
  CHECK(zip.data_offset(*zip.find("big/data/0")) == plan.data_offsets[1]);
  CHECK(zip.read(*zip.find("big/version"), 16) == "3\n");
  // The entry after the big one carries its header offset in a local zip64 extra field.
  std::string header(64, '\0');
  file.read_at(header.data(), header.size(), zip.find("big/version")->local_header_offset);
  CHECK(header.substr(30, 11) == "big/version");
  CHECK(le32(header, 41) == 0x00080001u);  // id 1, size 8
}

TEST_CASE("zip: corrupt and hostile archives are refused") {
  TempDir dir;
  const std::string good = read_file(kFixtures / "formats" / "torch2.6_py3.13" / "sd.pt");
  const auto path = dir / "bad.pt";
  auto with = [&](const std::string& bytes) {
    write_file(path, bytes);
    return path;
  };
  const size_t end = good.rfind("PK\x05\x06");
  const size_t directory = le32(good, end + 16);

  // Every truncation: no crash, a kBadInput error.
  for (size_t length = 0; length < good.size(); ++length) {
    CAPTURE(length);
    write_file(path, good.substr(0, length));
    File file = File::open_read(path);
    CHECK_THROWS_KIND(
        [&] {
          ZipReader zip(file, 0, length, "cut");
          for (const ZipEntry& entry : zip.entries()) zip.data_offset(entry);
        }(),
        ErrorKind::kBadInput);
  }
  expect_zip_refused(with(good), 0, good.size() + 1, "beyond the file end");
  expect_zip_refused(with("PK"), 0, 2, "too short");
  expect_zip_refused(with(std::string(100, 'z')), 0, 100, "no end-of-central-directory");

  std::string bad = good;
  put_le(bad, end + 16, good.size(), 4);  // central directory offset past the end
  // The zip64 end record is authoritative when present; corrupt that copy too.
  const size_t end64 = good.rfind("PK\x06\x06");
  put_le(bad, end64 + 48, good.size() + 5, 8);
  expect_zip_refused(with(bad), 0, bad.size(), "overlaps the end records");

  bad = good;
  put_le(bad, end64 + 32, 1000000000, 8);  // entry count
  put_le(bad, end64 + 24, 1000000000, 8);
  expect_zip_refused(with(bad), 0, bad.size(), "entries");

  bad = good;
  put_le(bad, good.rfind("PK\x06\x07") + 8, 1u << 30, 8);  // locator pointing nowhere
  expect_zip_refused(with(bad), 0, bad.size(), "zip64 end record offset");

  bad = good;
  put_le(bad, directory + 10, 8, 2);  // first entry deflated
  expect_zip_refused(with(bad), 0, bad.size(), "compressed (method 8)");

  bad = good;
  put_le(bad, directory + 8, 0x0809, 2);  // encrypted
  expect_zip_refused(with(bad), 0, bad.size(), "encrypted");

  bad = good;
  put_le(bad, directory + 42, 1, 4);  // local header offset into the middle of a header
  expect_zip_refused(with(bad), 0, bad.size(), "no local header");

  bad = good;
  put_le(bad, directory + 24, 1u << 20, 4);  // size beyond the archive
  put_le(bad, directory + 20, 1u << 20, 4);
  expect_zip_refused(with(bad), 0, bad.size(), "runs past the archive end");

  bad = good;
  put_le(bad, directory + 28, 60000, 2);  // name length beyond the directory
  expect_zip_refused(with(bad), 0, bad.size(), "runs past the directory");

  bad = good;
  put_le(bad, directory + 46 + 11, 0x12345678, 4);  // second entry's signature
  expect_zip_refused(with(bad), 0, bad.size(), "entry 1 is corrupt");

  PlannedZip twice = plan_stored_zip({{"a/x", 1, std::string("1")}, {"a/x", 1, std::string("2")}});
  expect_zip_refused(with(twice.literals.front().bytes), 0, twice.size_bytes,
                     "duplicate entry 'a/x'");
}

}  // namespace
}  // namespace ckconv
