// What a conversion will need on disk, checked before any work: to-hf's default sharding of a
// large model (planned only, nothing written), and verify's scratch estimate against what a
// value-changing (--dtype) round trip really writes.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "cli/size_option.h"
#include "families/family.h"
#include "format_test_helpers.h"
#include "formats/checkpoint_reader.h"
#include "pipeline/convert.h"
#include "pipeline/init_checkpoint.h"
#include "verify/roundtrip.h"
#include "verify/scratch_space.h"

using namespace ckconv;
namespace fs = std::filesystem;

namespace {

uint64_t total_bytes(const ConversionSummary& summary) {
  uint64_t total = 0;
  for (const auto& [name, size] : summary.files) total += size;
  return total;
}

uint64_t directory_bytes(const fs::path& directory) {
  uint64_t total = 0;
  for (const auto& entry : fs::recursive_directory_iterator(directory))
    if (entry.is_regular_file()) total += entry.file_size();
  return total;
}

// A llama3 debugmodel native checkpoint (safetensors, init's values) written into
// `directory`/native, opened as `input`; `write` holds the options that wrote it (no fsync).
struct DebugNative {
  explicit DebugNative(const fs::path& directory)
      : config(load_model_config("llama3", "debugmodel", {})),
        rules(build_family_rules(config)),
        write(native_options()),
        input(read_checkpoint(written(directory / "native"))) {}

  ModelConfig config;
  FamilyRules rules;
  WriteOptions write;
  MappedCheckpoint input;

 private:
  static WriteOptions native_options() {
    WriteOptions options;
    options.native_format = CheckpointFormat::kSafetensors;
    options.sync = false;
    return options;
  }
  fs::path written(const fs::path& native) const {
    fs::create_directories(native);
    write_initial_checkpoint(rules, InitOptions{}, native, write);
    return native;
  }
};

}  // namespace

TEST_CASE("to-hf's default shard size: a 12 GB model plans three HF shards and the index") {
  // The default and the documented spellings of --max-shard-size.
  CHECK(cli::kDefaultMaxShardSizeBytes == 5'000'000'000u);
  CHECK(cli::parse_size("5G") == cli::kDefaultMaxShardSizeBytes);
  CHECK(cli::parse_size("5GB") == cli::kDefaultMaxShardSizeBytes);
  CHECK(cli::parse_size("5GiB") == uint64_t{5} << 30);
  // llama3/3B in float32: 3.2 billion parameters, about 12.85 GB. A catalog is all the plan
  // reads, so no tensor byte exists anywhere.
  const ModelConfig config = load_model_config("llama3", "3B", {});
  const FamilyRules rules = build_family_rules(config);
  Catalog catalog;
  catalog.path = "native.safetensors";
  uint64_t tensor_bytes = 0;
  for (const NativeTensor& tensor : expected_native_tensors(rules)) {
    catalog.tensors.push_back({tensor.name, DType::kF32, tensor.shape, {}});
    tensor_bytes += static_cast<uint64_t>(num_elements(tensor.shape)) * 4;
  }
  CHECK(tensor_bytes > 12'000'000'000u);
  CHECK(tensor_bytes < 15'000'000'000u);
  const MappedCheckpoint input(catalog);
  WriteOptions write;
  write.max_shard_size_bytes = cli::kDefaultMaxShardSizeBytes;
  const ConversionSummary summary =
      write_conversion(Direction::kToHf, config, rules, input, {}, write, true);
  std::vector<std::string> shards;
  bool has_index = false;
  for (const auto& [name, size] : summary.files) {
    if (name == "model.safetensors.index.json") has_index = true;
    if (name.size() < 12 || name.substr(name.size() - 12) != ".safetensors") continue;
    shards.push_back(name);
    CHECK(size <= cli::kDefaultMaxShardSizeBytes + (1 << 20));  // tensors + header
  }
  CHECK(shards == std::vector<std::string>{"model-00001-of-00003.safetensors",
                                           "model-00002-of-00003.safetensors",
                                           "model-00003-of-00003.safetensors"});
  CHECK(has_index);
}

TEST_CASE("verify's scratch estimate holds every copy a --dtype round trip writes") {
  test::TempDir dir;
  const DebugNative native(dir.path());
  const ModelConfig& config = native.config;
  const FamilyRules& rules = native.rules;
  const MappedCheckpoint& input = native.input;
  WriteOptions write = native.write;
  write.dtype = DType::kBF16;  // a cast: the round trip starts from the bf16 output
  const uint64_t first = total_bytes(
      write_conversion(Direction::kToHf, config, rules, input, {}, write, /*dry_run=*/true));
  CHECK(first > (uint64_t{8} << 20));  // large enough that the 1 MiB allowances do not decide
  const bool from_output = round_trip_starts_from_output(Direction::kToHf, rules, input, write);
  CHECK(from_output);
  const uint64_t estimate = round_trip_scratch_bytes(first, false, from_output);
  fs::create_directories(dir / "scratch");
  VerifyReport report =
      verify_roundtrip(Direction::kToHf, config, rules, input, dir / "scratch" / "native", write);
  CHECK(report.passed);
  // The cast output (removed when verify_roundtrip returned; its plan gives its exact size)
  // and the two checkpoints of its own round trip, all on disk at once before that.
  uint64_t written = first;
  for (const auto& scratch : report.scratch) written += directory_bytes(scratch->path());
  CHECK(report.scratch.size() == 2);
  CHECK(written <= estimate);
  // Counting the round trip of the input alone would not have been enough.
  CHECK(written > round_trip_scratch_bytes(first, false, false));
  // to-hf --verify-roundtrip writes the cast output itself: the rest must still fit.
  CHECK(written - first <= round_trip_scratch_bytes(first, true, from_output));
}

TEST_CASE("verify writes its scratch checkpoints through the page cache when they fit") {
  // At most three quarters of the available memory: the input, half their size, stays
  // cached beside them too when they fill it.
  CHECK(scratch_through_page_cache(12'000'000'000u, 22'000'000'000u));
  CHECK(scratch_through_page_cache(16'500'000'000u, 22'000'000'000u));
  CHECK_FALSE(scratch_through_page_cache(16'500'000'001u, 22'000'000'000u));
  CHECK_FALSE(scratch_through_page_cache(1, 0));  // unknown memory: around the cache
  CHECK(available_memory_bytes() > 0);
  // A small round trip: both scratch checkpoints are in the page cache once written and read
  // back (written unbuffered, the device would hold their pages, not the cache).
  test::TempDir dir;
  const DebugNative native(dir.path());
  fs::create_directories(dir / "scratch");
  VerifyReport report = verify_roundtrip(Direction::kToHf, native.config, native.rules,
                                         native.input, dir / "scratch" / "native", native.write);
  CHECK(report.passed);
  // The third conversion compared its blocks with the cached first output in place (no
  // digests were taken) and matched on its first run, alongside the second.
  for (const auto& [step, seconds] : report.step_seconds)
    CHECK(step != "third conversion after the second");
  REQUIRE(report.scratch.size() == 2);
  size_t files = 0;
  for (const auto& scratch : report.scratch)
    for (const auto& entry : fs::recursive_directory_iterator(scratch->path()))
      if (entry.is_regular_file() && entry.file_size() > (uint64_t{1} << 20)) {
        const MappedFile file(entry.path());
        CHECK_MESSAGE(file.resident_share(0, file.size()) == 1.0, entry.path());
        ++files;
      }
  CHECK(files == 2);
}

TEST_CASE("available memory counts the memory limits of the process's cgroups") {
  test::TempDir dir;
  auto write = [](const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  };
  const uint64_t gib = uint64_t{1} << 30;
  // cgroup v2: the job's cgroup is limited; its parent is not ("max"); the grandparent is,
  // less tightly.
  const fs::path v2 = dir / "v2";
  write(v2 / "cgroup.controllers", "cpu memory\n");
  write(dir / "self_v2", "0::/slurm/job_7/step_0\n");
  write(v2 / "slurm/job_7/step_0/memory.max", std::to_string(16 * gib) + "\n");
  write(v2 / "slurm/job_7/step_0/memory.current", std::to_string(4 * gib) + "\n");
  write(v2 / "slurm/job_7/memory.max", "max\n");
  write(v2 / "slurm/job_7/memory.current", std::to_string(4 * gib) + "\n");
  write(v2 / "slurm/memory.max", std::to_string(100 * gib) + "\n");
  write(v2 / "slurm/memory.current", std::to_string(50 * gib) + "\n");
  CHECK(cgroup_memory_headroom(dir / "self_v2", v2) == 12 * gib);
  write(v2 / "slurm/memory.current", std::to_string(95 * gib) + "\n");  // the ancestor decides
  CHECK(cgroup_memory_headroom(dir / "self_v2", v2) == 5 * gib);
  write(v2 / "slurm/job_7/step_0/memory.current", std::to_string(17 * gib) + "\n");  // over
  CHECK(cgroup_memory_headroom(dir / "self_v2", v2) == 0);
  // cgroup v1: the memory hierarchy, named among other controllers.
  const fs::path v1 = dir / "v1";
  write(dir / "self_v1", "5:cpu,cpuacct:/\n4:memory:/batch/job_8\n0::/\n");
  write(v1 / "memory/batch/job_8/memory.limit_in_bytes", std::to_string(8 * gib) + "\n");
  write(v1 / "memory/batch/job_8/memory.usage_in_bytes", std::to_string(3 * gib) + "\n");
  write(v1 / "memory/memory.limit_in_bytes", "9223372036854771712\n");
  write(v1 / "memory/memory.usage_in_bytes", std::to_string(20 * gib) + "\n");
  CHECK(cgroup_memory_headroom(dir / "self_v1", v1) == 5 * gib);
  // No limit files, or no /proc/self/cgroup: no cgroup bound.
  CHECK(cgroup_memory_headroom(dir / "self_v1", dir / "nothing") == UINT64_MAX);
  CHECK(cgroup_memory_headroom(dir / "missing", v2) == UINT64_MAX);
  // A 16 GiB job on a large machine: its scratch goes around the page cache.
  CHECK_FALSE(scratch_through_page_cache(2 * 10 * gib, std::min(1000 * gib, 12 * gib)));
}
