#include "verify/roundtrip.h"

#include <cctype>
#include <chrono>
#include <future>

#include "formats/checkpoint_reader.h"
#include "pipeline/band_cache.h"
#include "pipeline/block_builder.h"
#include "pipeline/output_directory.h"
#include "verify/compare.h"
#include "verify/scratch_space.h"
#include "verify/written_ranges.h"

namespace ckconv {
namespace {

void absorb(VerifyReport& report, const Comparison& comparison, const std::string& label) {
  for (const auto& difference : comparison.differences)
    report.differences.push_back(label + ": " + difference);
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
// A regex matching exactly `key` (HF keys hold letters, digits, '_' and '.').
std::string literal_pattern(const std::string& key) {
  std::string pattern;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') pattern += '\\';
    pattern += c;
  }
  return pattern;
}

std::vector<Exclusion> exclusions_of(const FamilyRules& rules) {
  std::vector<Exclusion> out;
  for (const Rule& rule : rules.rules)
    if (rule.op == RuleOp::kDroppedZeros)
      out.push_back({std::regex(regex_escape(rule.native[0].name)),
                     rule.reason + ": to_hf drops it, from_hf re-creates zeros"});
  return out;
}

// The options of verify's scratch conversions. Scratch outputs are deleted afterwards, so they
// are not fsynced. Each is read back once, by the next conversion: when the ones this round
// trip writes (`scratch_count`, each about the size of the input) fit in memory, they are
// written through the page cache so that the reads come from memory, else around it like any
// output (verify/scratch_space.h). A native input is written back in its own format, so that
// its own writer is exercised.
WriteOptions scratch_write_options(Direction start, const MappedCheckpoint& input,
                                   const WriteOptions& options, int scratch_count) {
  WriteOptions write = options;
  write.block_digests = nullptr;
  write.sync = false;
  uint64_t input_bytes = 0;
  for (uint32_t i = 0; i < input.catalog().files.size(); ++i) input_bytes += input.file(i).size();
  write.buffered =
      scratch_through_page_cache(scratch_count * input_bytes, available_memory_bytes());
  if (start == Direction::kToHf && input.catalog().format != CheckpointFormat::kSafetensors)
    write.native_format = input.catalog().format;
  else if (start == Direction::kToHf)
    write.native_format = CheckpointFormat::kSafetensors;
  return write;
}

// What verify checks once the conversions ran: names, dtypes and shapes of the second output
// as the reader sees it, the values compared while it was written, the dropped-zeros tensors,
// and, when the third conversion did not reproduce the first output, where they differ.
struct RoundTripOutputs {
  const MappedCheckpoint& input;
  const MappedCheckpoint& back;
  const std::filesystem::path& first;
  const std::shared_ptr<ScratchDirectory>& again;  // the third output, written only on a mismatch
  bool third_matches = false;
};

void report_round_trip(VerifyReport& report, Direction start, const RoundTripOutputs& outputs,
                       const Comparison& back_values, const std::vector<Exclusion>& exclusions,
                       const std::vector<std::regex>& ignore) {
  const std::string files_label = start == Direction::kToHf ? "HF files" : "native files";
  auto compare_files = [&]() {
    Comparison files = compare_directories(outputs.first, outputs.again->path());
    if (files.equal())  // the output changed between two runs on the same input
      files.differences.push_back(
          "the third conversion differed from the first when compared, "
          "but not when written again (non-deterministic output)");
    absorb(report, files, files_label);
  };
  // Every kept tensor is a bijective function of an input tensor, so a value the reader saw
  // differently in the second output would have changed the third conversion's bytes.
  if (start == Direction::kToHf) {
    absorb(report, compare_key_sets(outputs.input, outputs.back), "native tensors");
    absorb(report, back_values, "native tensors");
    // Excluded tensors are not in the HF files: check them as read back.
    absorb(report, check_excluded_zeros(outputs.back, exclusions), "native tensors");
    if (!outputs.third_matches) compare_files();
    return;
  }
  absorb(report, compare_key_sets(outputs.input, outputs.back, ignore), "HF tensors");
  absorb(report, back_values, "HF tensors");
  MappedCheckpoint first_native(read_checkpoint(outputs.first));
  if (outputs.third_matches) {
    // Same bytes, so the same tensors: only the exclusions' notes and zero check remain.
    absorb(report, check_excluded_zeros(first_native, exclusions), "native tensors");
  } else {
    MappedCheckpoint again_native(read_checkpoint(outputs.again->path()));
    absorb(report, compare_tensors(first_native, again_native, exclusions), "native tensors");
    compare_files();
  }
}

// A cast conversion (--dtype, or from_hf of a quantized release) cannot give its input back:
// its round trip starts from its output (the
// opposite direction, no cast), checking that the checkpoint written converts back and forth
// exactly. The output is the caller's `first_output`, else written to scratch here.
VerifyReport verify_cast(Direction start, const ModelConfig& config, const FamilyRules& rules,
                         const MappedCheckpoint& input, const std::filesystem::path& scratch_near,
                         const WriteOptions& options,
                         const std::optional<std::filesystem::path>& first_output) {
  std::optional<ScratchDirectory> cast_scratch;
  std::filesystem::path cast_output = first_output.value_or(std::filesystem::path());
  if (!first_output) {
    cast_scratch.emplace(scratch_near, "verify0");
    cast_output = cast_scratch->path();
    WriteOptions write = options;
    write.block_digests = nullptr;
    write.sync = false;
    write_conversion(start, config, rules, input, cast_output, write);
  }
  MappedCheckpoint output(read_checkpoint(cast_output));
  WriteOptions again = options;
  again.dtype.reset();
  again.block_digests = nullptr;
  VerifyReport report =
      verify_roundtrip(start == Direction::kToHf ? Direction::kFromHf : Direction::kToHf, config,
                       rules, output, scratch_near, again);
  report.notes.push_back(
      "a value-changing conversion (--dtype, dequantization, or a float32-only tensor such as "
      "expert_bias_E widened): the round trip starts from its output");
  return report;
}

// Whether a to_hf from `input` widens a tensor torchtitan keeps in float32 (a BF16/F16
// expert_bias_E of a last_save_model_only export): the round trip cannot give that dtype back.
bool widens_float32_only(Direction start, const FamilyRules& rules, const Catalog& input) {
  if (start != Direction::kToHf) return false;
  for (const Rule& rule : rules.rules)
    for (const NativeTensor& tensor : rule.native)
      if (const CatalogTensor* found = tensor.float32_only ? input.find(tensor.name) : nullptr;
          found != nullptr && found->dtype != DType::kF32)
        return true;
  return false;
}

// Wall time of one step of the round trip (VerifyReport::step_seconds).
class StepClock {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// The second and third conversions of a round trip: `second` converts `first` back into
// `back`; the third converts `back` again and is compared with `first`.
struct LaterConversions {
  const ModelConfig& config;
  const FamilyRules& rules;
  const std::filesystem::path& first;
  const std::vector<uint64_t>& first_digests;  // empty: compare with the files
  const std::filesystem::path& back;
  const WriteOptions& write;
};

// The third conversion compared with the first output, reading `back` while the second
// conversion still writes it (verify/written_ranges.h): false when it did not match, or when
// it could not run alongside (then the caller runs it again after the second).
bool third_alongside_second(Direction start, const LaterConversions& later,
                            const WrittenRanges& written) {
  try {
    if (!written.wait_for_headers()) return false;
    MappedCheckpoint back(read_checkpoint(later.back));
    WriteOptions third = later.write;
    third.source_gate = &written;
    third.progress = nullptr;  // the second conversion's progress is the one shown
    return conversion_matches(start, later.config, later.rules, back, later.first, third,
                              later.first_digests.empty() ? nullptr : &later.first_digests);
  } catch (...) {
    return false;  // e.g. interrupted: the sequential run after the second decides
  }
}

// Runs the second conversion (its values compared by `back_values` as it is built) and the
// third one alongside it, so that the third reads each part of the second output back as
// soon as it is written instead of after the whole second conversion. Only a third conversion
// run after the second one can fail the verdict: when the one alongside did not match, it is
// run again once the second is complete, exactly as it was before the overlap.
bool second_and_third(Direction start, const LaterConversions& later,
                      StreamingComparison& back_values, VerifyReport& report) {
  const Direction second = start == Direction::kToHf ? Direction::kFromHf : Direction::kToHf;
  WrittenRanges written(later.back);
  WrittenRangesInspector inspector(back_values, written);
  WriteOptions second_write = later.write;
  second_write.inspector = &inspector;
  second_write.block_written = [&written](uint32_t file, uint64_t offset, uint64_t size) {
    written.written(file, offset, size);
  };
  const StepClock clock;
  double third_seconds = 0;
  std::future<bool> third = std::async(std::launch::async, [&] {
    const bool matches = third_alongside_second(start, later, written);
    third_seconds = clock.seconds();
    return matches;
  });
  try {
    MappedCheckpoint first_checkpoint(read_checkpoint(later.first));
    write_conversion(second, later.config, later.rules, first_checkpoint, later.back, second_write);
  } catch (...) {
    written.fail();
    third.wait();
    throw;
  }
  written.finish();
  const double second_seconds = clock.seconds();
  const bool alongside = third.get();
  report.step_seconds.push_back({"second conversion", second_seconds});
  // From the start of the second conversion, so that the part of the third after the second
  // is the difference.
  report.step_seconds.push_back({"third conversion alongside the second", third_seconds});
  if (alongside) return true;
  const StepClock again;
  MappedCheckpoint back(read_checkpoint(later.back));
  const bool matches =
      conversion_matches(start, later.config, later.rules, back, later.first, later.write,
                         later.first_digests.empty() ? nullptr : &later.first_digests);
  report.step_seconds.push_back({"third conversion after the second", again.seconds()});
  return matches;
}
}  // namespace

bool round_trip_starts_from_output(Direction start, const FamilyRules& rules,
                                   const MappedCheckpoint& input, const WriteOptions& options) {
  return options.dtype || (start == Direction::kFromHf && has_quantized_tensors(input.catalog())) ||
         widens_float32_only(start, rules, input.catalog());
}

VerifyReport verify_roundtrip(Direction start, const ModelConfig& config, const FamilyRules& rules,
                              const MappedCheckpoint& input,
                              const std::filesystem::path& scratch_near,
                              const WriteOptions& options,
                              const std::optional<std::filesystem::path>& first_output) {
  if (round_trip_starts_from_output(start, rules, input, options))
    return verify_cast(start, config, rules, input, scratch_near, options, first_output);
  VerifyReport report;
  // The second and third conversions run at once and keep their bands each: one band memory
  // keeps their band builds to those of one conversion, and bands of 4 blocks instead of 6
  // keep the four kept bands within the memory of one conversion's (docs/benchmarks.md).
  // Three conversions on the same cores make verify bound by CPU, not by the device: its
  // stripes are twice a conversion's, for half the calls that map and release source pages
  // (8 MiB more per builder; docs/benchmarks.md).
  constexpr uint64_t kStripeBytes = 2 * kMaxSparseSpanBytes;
  BandMemory band_memory(BlockBuilder::kBandBuilders, 4 * options.block_bytes, kStripeBytes);
  WriteOptions write = scratch_write_options(start, input, options, first_output ? 1 : 2);
  write.band_memory = &band_memory;

  std::shared_ptr<ScratchDirectory> first_scratch;
  std::filesystem::path first = first_output.value_or(std::filesystem::path());
  std::vector<uint64_t> first_digests;  // of the first conversion's blocks
  if (first_output) {
    if (options.block_digests) first_digests = *options.block_digests;
  } else {
    first_scratch = std::make_shared<ScratchDirectory>(scratch_near, "verify1");
    first = first_scratch->path();
    WriteOptions first_write = write;
    // Written through the page cache, the first output is compared in place by the third
    // conversion: one read of memory instead of hashing both conversions' blocks
    // (docs/benchmarks.md). Written around it, it would have to be read back from the
    // device: its blocks are hashed as they are written instead.
    if (!write.buffered) first_write.block_digests = &first_digests;
    const StepClock clock;
    write_conversion(start, config, rules, input, first, first_write);
    report.step_seconds.push_back({"first conversion", clock.seconds()});
  }
  // The second conversion must give back the input's tensors. Their values are compared as
  // its blocks are built (against the input, which is usually still in the page cache), so
  // this output is read back only by the third conversion, which runs alongside it.
  const std::vector<Exclusion> exclusions = exclusions_of(rules);
  std::vector<std::regex> ignore;
  if (start == Direction::kFromHf) {
    for (const auto& pattern : rules.hf_ignored_patterns) ignore.emplace_back(pattern);
    // HF-only tensors from_hf drops (an MTP layer) cannot come back either.
    for (const Rule& rule : rules.rules)
      if (rule.op == RuleOp::kDroppedHf) ignore.emplace_back(literal_pattern(rule.hf[0]));
  }
  // The comparison is the input's last reader: its pages leave the page cache as they are
  // compared, which leaves room there for the scratch checkpoints (two more copies of the
  // model) instead of the kernel evicting scratch pages that are still to be read
  // (docs/benchmarks.md).
  StreamingComparison back_values(
      input, start == Direction::kToHf ? exclusions : std::vector<Exclusion>{}, ignore,
      /*forget_compared=*/true);
  auto back = std::make_shared<ScratchDirectory>(scratch_near, "verify2");
  const bool third_matches = second_and_third(
      start, {config, rules, first, first_digests, back->path(), write}, back_values, report);
  MappedCheckpoint back_checkpoint(read_checkpoint(back->path()));
  std::shared_ptr<ScratchDirectory> again;
  if (!third_matches) {
    again = std::make_shared<ScratchDirectory>(scratch_near, "verify3");
    write_conversion(start, config, rules, back_checkpoint, again->path(), write);
  }
  report_round_trip(report, start, {input, back_checkpoint, first, again, third_matches},
                    back_values.result(), exclusions, ignore);
  for (const auto& scratch : {first_scratch, back, again})
    if (scratch) report.scratch.push_back(scratch);
  return report;
}

std::vector<std::filesystem::path> release_scratch(VerifyReport& report) {
  std::vector<std::filesystem::path> paths;
  for (const auto& scratch : report.scratch) paths.push_back(scratch->release());
  report.scratch.clear();
  return paths;
}

}  // namespace ckconv
