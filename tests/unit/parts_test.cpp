// Conversions split into parts: the block runs of part_block_range tile the blocks in order
// with about equal bytes, the --part spellings and the launchers' variables, and the staging
// directory's name, plan record and markers.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "cli/part_option.h"
#include "core/error.h"
#include "pipeline/part_staging.h"
#include "pipeline/part_writer.h"

using namespace ckconv;

namespace {

std::vector<Block> blocks_of(const std::vector<uint64_t>& sizes) {
  std::vector<Block> blocks;
  for (uint64_t size : sizes) blocks.push_back(Block{0, 0, size});
  return blocks;
}

PartSpec parse(const std::string& text, const std::map<std::string, std::string>& variables = {}) {
  return cli::parse_part_option(text, [&](const char* name) -> const char* {
    auto it = variables.find(name);
    return it == variables.end() ? nullptr : it->second.c_str();
  });
}

void expect_usage(const std::string& text, const std::map<std::string, std::string>& variables,
                  const std::string& fragment) {
  try {
    parse(text, variables);
    FAIL("--part " << text << " should fail");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kUsage);
    CHECK_MESSAGE(std::string(error.what()).find(fragment) != std::string::npos, error.what());
  }
}

}  // namespace

TEST_CASE("part_block_range: contiguous runs covering every block once, balanced by bytes") {
  for (const auto& sizes :
       {std::vector<uint64_t>{4, 4, 4, 4, 4, 4, 4, 1}, std::vector<uint64_t>{1},
        std::vector<uint64_t>{}, std::vector<uint64_t>{100, 1, 1, 1, 1, 100, 3}}) {
    const std::vector<Block> blocks = blocks_of(sizes);
    for (uint32_t count : {1u, 2u, 3u, 4u, 7u, 16u}) {
      size_t next = 0;
      for (uint32_t i = 0; i < count; ++i) {
        const auto [first, end] = part_block_range(blocks, PartSpec{i, count});
        CHECK(first == next);
        CHECK(end >= first);
        next = end;
      }
      CHECK(next == blocks.size());
    }
  }
  const std::vector<Block> eight = blocks_of({4, 4, 4, 4, 4, 4, 4, 4});
  CHECK(part_block_range(eight, {0, 4}) == std::pair<size_t, size_t>{0, 2});
  CHECK(part_block_range(eight, {3, 4}) == std::pair<size_t, size_t>{6, 8});
  CHECK(part_block_range(eight, {1, 3}) == std::pair<size_t, size_t>{3, 6});
}

TEST_CASE("--part I/N is 1-based; auto, torchrun and slurm read only their variables") {
  CHECK(parse("1/1").index == 0);
  CHECK(parse("3/4").index == 2);
  CHECK(parse("3/4").count == 4);
  CHECK(parse("3/4").label() == "3/4");
  expect_usage("0/4", {}, "expected I/N");
  expect_usage("5/4", {}, "is beyond 4 parts");
  expect_usage("1/0", {}, "must be 1 to");
  expect_usage("1/99999999", {}, "must be 1 to");
  expect_usage("x/4", {}, "expected I/N");
  expect_usage("2", {}, "expected I/N");
  expect_usage("1/2/3", {}, "expected I/N");

  const std::map<std::string, std::string> torchrun = {{"RANK", "3"}, {"WORLD_SIZE", "8"}};
  CHECK(parse("torchrun", torchrun).index == 3);
  CHECK(parse("auto", torchrun).count == 8);
  expect_usage("torchrun", {{"RANK", "1"}}, "must both be set");
  expect_usage("torchrun", {{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "is not a number");
  expect_usage("torchrun", {{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "is beyond 2 parts");

  const std::map<std::string, std::string> slurm = {{"SLURM_ARRAY_TASK_ID", "12"},
                                                    {"SLURM_ARRAY_TASK_MIN", "10"},
                                                    {"SLURM_ARRAY_TASK_COUNT", "4"}};
  CHECK(parse("slurm", slurm).index == 2);
  CHECK(parse("auto", slurm).index == 2);
  auto stepped = slurm;
  stepped["SLURM_ARRAY_TASK_STEP"] = "2";
  CHECK(parse("slurm", stepped).index == 1);
  stepped["SLURM_ARRAY_TASK_ID"] = "11";
  expect_usage("slurm", stepped, "is not a task of the array");
  expect_usage("slurm", {{"SLURM_ARRAY_TASK_ID", "1"}}, "must be set");

  auto both = torchrun;
  both.insert(slurm.begin(), slurm.end());
  expect_usage("auto", both, "--part torchrun or --part slurm");
  expect_usage("auto", {}, "neither");
  CHECK(parse("slurm", both).index == 2);  // named explicitly: no ambiguity
}

TEST_CASE("part staging: named from the output, plan recorded once, markers round trip") {
  const auto root =
      std::filesystem::temp_directory_path() / ("ckconv-parts-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  CHECK(part_staging_path(root / "out") == root / ".out.ckconv-parts");
  CHECK(part_staging_path(root / "out/") == root / ".out.ckconv-parts");
  CHECK(part_staging_target(root / ".out.ckconv-parts") == root / "out");
  CHECK(!part_staging_target(root / "out").has_value());

  FilePlan file_plan;
  file_plan.files.push_back(PlannedFile{"a.bin", 10, {LiteralBytes{0, "xy"}}});
  file_plan.crc_patches.push_back(Crc32Patch{0, 0, 4});
  const PartPlan plan = make_part_plan(file_plan, 4096, 1, 2);
  FilePlan other = file_plan;
  other.files[0].literals[0].bytes = "xz";
  CHECK(make_part_plan(other, 4096, 1, 2).fingerprint != plan.fingerprint);
  CHECK(make_part_plan(file_plan, 8192, 1, 2).fingerprint != plan.fingerprint);

  const PartStaging staging(part_staging_path(root / "out"));
  staging.adopt(plan);
  staging.adopt(plan);  // a second part agrees
  PartPlan three = plan;
  three.parts = 3;
  CHECK_THROWS_AS(staging.adopt(three), Error);
  CHECK(staging.read_plan().files == plan.files);
  CHECK(staging.read_plan().crc_patches.size() == 1);

  CHECK(staging.markers_present(2) == 0);
  staging.write_marker(PartMarker{plan.fingerprint, {1, 2}, 1, 1, {CrcPart{0, 0xdeadbeef, 3}}});
  CHECK(staging.markers_present(2) == 1);
  const auto marker = staging.read_marker({1, 2});
  REQUIRE(marker.has_value());
  CHECK(marker->crc_parts.at(0).crc == 0xdeadbeef);
  CHECK(!staging.read_marker({0, 2}).has_value());
  staging.remove_marker({1, 2});
  CHECK(staging.markers_present(2) == 0);

  CHECK(staging.claim());
  CHECK(!staging.claim());  // held by this (live) process
  staging.release_claim();
  CHECK(staging.claim_holder().empty());
  std::filesystem::remove_all(root);
}
