#include "verify/roundtrip.h"

#include "formats/checkpoint_reader.h"
#include "pipeline/output_directory.h"
#include "verify/compare.h"

namespace ckconv {
namespace {

void absorb(VerifyReport& report, const Comparison& comparison, const std::string& label) {
  for (const auto& difference : comparison.differences) report.differences.push_back(label + ": " + difference);
  for (const auto& note : comparison.notes) report.notes.push_back(label + ": " + note);
  if (!comparison.equal()) report.passed = false;
}

std::vector<Exclusion> exclusions_of(const Adapter& adapter) {
  std::vector<Exclusion> out;
  for (const auto& [pattern, reason] : adapter.verify_exclusions) out.push_back({std::regex(pattern), reason});
  return out;
}

}  // namespace

VerifyReport verify_roundtrip(Direction start, const ModelConfig& config, const Adapter& adapter,
                              const MappedCheckpoint& input, const std::filesystem::path& scratch_near,
                              const WriteOptions& options,
                              const std::optional<std::filesystem::path>& first_output) {
  VerifyReport report;
  const Direction second = start == Direction::kToHf ? Direction::kFromHf : Direction::kToHf;
  WriteOptions write = options;
  if (start == Direction::kToHf && input.catalog().format != "safetensors")
    write.native_format = input.catalog().format;  // exercise the input's own native writer
  else if (start == Direction::kToHf)
    write.native_format = "safetensors";

  std::optional<ScratchDirectory> first_scratch;
  std::filesystem::path first = first_output.value_or(std::filesystem::path());
  if (!first_output) {
    first_scratch.emplace(scratch_near, "verify1");
    first = first_scratch->path();
    write_conversion(start, config, adapter, input, first, write);
  }
  ScratchDirectory back(scratch_near, "verify2");
  ScratchDirectory again(scratch_near, "verify3");
  {
    MappedCheckpoint first_checkpoint(read_checkpoint(first));
    write_conversion(second, config, adapter, first_checkpoint, back.path(), write);
  }
  MappedCheckpoint back_checkpoint(read_checkpoint(back.path()));
  write_conversion(start, config, adapter, back_checkpoint, again.path(), write);

  if (start == Direction::kToHf) {
    absorb(report, compare_tensors(input, back_checkpoint, exclusions_of(adapter)), "native tensors");
    absorb(report, compare_directories(first, again.path()), "HF files");
  } else {
    std::vector<std::regex> ignore;
    for (const auto& pattern : adapter.hf_ignored_patterns) ignore.emplace_back(pattern);
    absorb(report, compare_tensors(input, back_checkpoint, {}, ignore), "HF tensors");
    MappedCheckpoint first_native(read_checkpoint(first));
    MappedCheckpoint again_native(read_checkpoint(again.path()));
    absorb(report, compare_tensors(first_native, again_native, exclusions_of(adapter)), "native tensors");
    absorb(report, compare_directories(first, again.path()), "native files");
  }
  return report;
}

}  // namespace ckconv
