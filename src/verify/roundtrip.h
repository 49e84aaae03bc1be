// Round-trip verification (to_hf -> from_hf -> to_hf, as torchtitan's own round-trip test). From a
// native checkpoint N0: H1 = to_hf(N0), N1 = from_hf(H1), H2 = to_hf(N1); then N0 and N1 must have
// the same keys, shapes, dtypes and bits (except the tensors of the family's dropped-zeros rules,
// which must come back as zeros) and H1, H2 must be byte-identical file by file. From an HF
// checkpoint H0: N1 = from_hf(H0), H1 = to_hf(N1), N2 = from_hf(H1); H0 and H1 tensors bit-equal,
// N1 and N2 bit-equal and byte-identical. The third conversion runs alongside the second,
// reading each part of the second's output back once it is written (verify/written_ranges.h).
// Intermediates live in scratch directories in the directory the caller chose
// (verify/scratch_space.h) and are removed afterwards, also when an interruption or an error
// unwinds through here.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/convert.h"
#include "pipeline/output_directory.h"

namespace ckconv {

struct VerifyReport {
  bool passed = true;
  std::vector<std::string> differences;
  std::vector<std::string> notes;
  // Wall time of each step of the round trip, in the order they ran (--verbose prints them).
  std::vector<std::pair<std::string, double>> step_seconds;
  // The scratch directories, kept until the caller has printed the verdict and published:
  // removing them frees GBs, which callers leave to remove_in_background
  // (verify/scratch_removal.h) through release_scratch. The report removes whatever it
  // still holds when destroyed (errors and interruptions unwind through here).
  std::vector<std::shared_ptr<ScratchDirectory>> scratch;
};

// Takes the scratch directories out of `report` for the caller to remove.
std::vector<std::filesystem::path> release_scratch(VerifyReport& report);

// Whether the round trip of this conversion starts from its output instead of its input: a
// value-changing conversion (options.dtype, or from_hf of quantized tensors) cannot give its
// input back, and neither can a to_hf that widens a float32-only buffer stored narrower; so
// its output is round-tripped (one more intermediate checkpoint).
bool round_trip_starts_from_output(Direction start, const FamilyRules& rules,
                                   const MappedCheckpoint& input, const WriteOptions& options);

// `scratch_near`: a path whose parent directory holds the scratch directories (named
// ".<name>.ckconv-verify<N>-<pid>" after it).
// `first_output`: the first conversion's output if the caller already wrote it (to-hf
// --verify-roundtrip verifies its own staging directory); if the caller wrote it with
// options.block_digests set, those digests spare reading it back.
VerifyReport verify_roundtrip(Direction start, const ModelConfig& config, const FamilyRules& rules,
                              const MappedCheckpoint& input,
                              const std::filesystem::path& scratch_near,
                              const WriteOptions& options,
                              const std::optional<std::filesystem::path>& first_output = {});

}  // namespace ckconv
