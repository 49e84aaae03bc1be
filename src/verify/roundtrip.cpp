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

std::string regex_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

// Native tensors whose values do not survive a round trip: those of the dropped-zeros rules
// (verify compares their key, shape and dtype, and checks they come back as zeros).
std::vector<Exclusion> exclusions_of(const FamilyRules& rules) {
  std::vector<Exclusion> out;
  for (const Rule& rule : rules.rules)
    if (rule.op == RuleOp::kDroppedZeros)
      out.push_back({std::regex(regex_escape(rule.native[0].name)),
                     rule.reason + ": to_hf drops it, from_hf re-creates zeros"});
  return out;
}

}  // namespace

VerifyReport verify_roundtrip(Direction start, const ModelConfig& config, const FamilyRules& rules,
                              const MappedCheckpoint& input,
                              const std::filesystem::path& scratch_near,
                              const WriteOptions& options,
                              const std::optional<std::filesystem::path>& first_output) {
  VerifyReport report;
  const Direction second = start == Direction::kToHf ? Direction::kFromHf : Direction::kToHf;
  WriteOptions write = options;
  write.block_digests = nullptr;
  // Scratch outputs are deleted afterwards: no fsync. They are still written around the page
  // cache (O_DIRECT): on the measured VM, filling fresh page-cache pages costs more than the
  // later unbuffered read (a 3.85 GB verify took 14.5 s with buffered scratch, 26.7 s of it
  // system time, against 10.6 s unbuffered).
  write.sync = false;
  if (start == Direction::kToHf && input.catalog().format != CheckpointFormat::kSafetensors)
    write.native_format = input.catalog().format;  // exercise the input's own native writer
  else if (start == Direction::kToHf)
    write.native_format = CheckpointFormat::kSafetensors;

  std::optional<ScratchDirectory> first_scratch;
  std::filesystem::path first = first_output.value_or(std::filesystem::path());
  std::vector<uint64_t> first_digests;  // of the first conversion's blocks
  if (first_output) {
    if (options.block_digests) first_digests = *options.block_digests;
  } else {
    first_scratch.emplace(scratch_near, "verify1");
    first = first_scratch->path();
    WriteOptions first_write = write;
    first_write.block_digests = &first_digests;
    write_conversion(start, config, rules, input, first, first_write);
  }
  // The second conversion must give back the input's tensors. Their values are compared as
  // its blocks are built (against the input, which is usually still in the page cache), so
  // this output is read back only once, by the third conversion.
  const std::vector<Exclusion> exclusions = exclusions_of(rules);
  std::vector<std::regex> ignore;
  if (start == Direction::kFromHf)
    for (const auto& pattern : rules.hf_ignored_patterns) ignore.emplace_back(pattern);
  StreamingComparison back_values(input, start == Direction::kToHf ? exclusions : std::vector<Exclusion>{},
                                  ignore);
  ScratchDirectory back(scratch_near, "verify2");
  {
    MappedCheckpoint first_checkpoint(read_checkpoint(first));
    WriteOptions second_write = write;
    second_write.inspector = &back_values;
    write_conversion(second, config, rules, first_checkpoint, back.path(), second_write);
  }
  MappedCheckpoint back_checkpoint(read_checkpoint(back.path()));
  // The third conversion must reproduce the first one's files byte for byte, so it is only
  // compared with them (by block digests when the first conversion recorded them, so the
  // first output is not even read back), never written: no third copy on disk and no third
  // write. Should it differ, it is written after all, so that the report can say where.
  const bool third_matches = conversion_matches(start, config, rules, back_checkpoint, first, write,
                                                first_digests.empty() ? nullptr : &first_digests);
  std::optional<ScratchDirectory> again;
  if (!third_matches) {
    again.emplace(scratch_near, "verify3");
    write_conversion(start, config, rules, back_checkpoint, again->path(), write);
  }
  const std::string files_label = start == Direction::kToHf ? "HF files" : "native files";
  auto compare_files = [&]() {
    Comparison files = compare_directories(first, again->path());
    if (files.equal())  // the output changed between two runs on the same input
      files.differences.push_back(
          "the third conversion differed from the first when compared, "
          "but not when written again (non-deterministic output)");
    absorb(report, files, files_label);
  };

  // Names, dtypes and shapes as the reader sees the second output; the values were compared
  // while it was written, and the third conversion, which reads it back, reproduced the first
  // output (every kept tensor is a bijective function of an input tensor, so a value the
  // reader saw differently would have changed it).
  if (start == Direction::kToHf) {
    absorb(report, compare_key_sets(input, back_checkpoint), "native tensors");
    absorb(report, back_values.result(), "native tensors");
    // Excluded tensors are not in the HF files: check them as read back.
    absorb(report, check_excluded_zeros(back_checkpoint, exclusions), "native tensors");
    if (!third_matches) compare_files();
  } else {
    absorb(report, compare_key_sets(input, back_checkpoint, ignore), "HF tensors");
    absorb(report, back_values.result(), "HF tensors");
    MappedCheckpoint first_native(read_checkpoint(first));
    if (third_matches) {
      // Same bytes, so the same tensors: only the exclusions' notes and zero check remain.
      absorb(report, check_excluded_zeros(first_native, exclusions), "native tensors");
    } else {
      MappedCheckpoint again_native(read_checkpoint(again->path()));
      absorb(report, compare_tensors(first_native, again_native, exclusions), "native tensors");
      compare_files();
    }
  }
  return report;
}

}  // namespace ckconv
