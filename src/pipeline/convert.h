// One conversion, end to end: read the input's catalog, plan it against the flavor, lay out
// the output files, stream the bytes, and publish the output directory atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "families/family.h"
#include "formats/checkpoint_format.h"
#include "formats/dcp/dcp_writer.h"
#include "formats/file_plan.h"
#include "model/model_config.h"
#include "pipeline/executor.h"
#include "pipeline/hf_assets.h"
#include "pipeline/mapped_checkpoint.h"
#include "pipeline/plan.h"
#include "pipeline/quantized_input.h"

namespace ckconv {

// Sees a conversion's output as it is written (verify compares tensor bytes this way).
class OutputInspector {
 public:
  virtual ~OutputInspector() = default;
  // Once, before any block: the output tensors and the file plan placing them.
  virtual void begin(const std::vector<OutputTensorSpec>& tensors, const FilePlan& file_plan) = 0;
  // Every block of output bytes, possibly from several threads at once.
  virtual void block(uint32_t file, uint64_t offset, const uint8_t* data, uint64_t size) = 0;
};

struct WriteOptions {
  CheckpointFormat native_format = CheckpointFormat::kDcp;  // from_hf (and init) output
  std::optional<uint64_t> max_shard_size_bytes;             // HF output sharding
  // The DCP output's data file (DcpWriteOptions::data_file_name): dcp_data_file_name_for the
  // output directory, so that the file never has an old checkpoint file's name.
  std::string dcp_data_file_name = kDcpDataFileName;
  // Output dtype of floating tensors (--dtype); unset keeps each input's (CastOptions).
  std::optional<DType> dtype;
  // from_hf of a quantized release (pipeline/quantized_input.h).
  QuantizationOptions quantization;
  // Files written beside an HF output's config.json (tokenizer, generation_config.json).
  std::vector<CompanionFile> hf_companions;
  int threads = 1;
  uint64_t block_bytes = uint64_t{4} << 20;
  bool sync = true;
  // Write through the page cache instead of around it (ExecuteOptions::buffered).
  bool buffered = false;
  std::function<void(uint64_t, uint64_t)> progress;
  // When set, receives digests of the output's blocks (ExecuteOptions::block_digests), so
  // that verify can compare a later conversion with this one without reading it back.
  std::vector<uint64_t>* block_digests = nullptr;
  // When set, sees the planned output (tensors, and where the file plan puts them) before any
  // byte is written, then every block of bytes as ExecuteOptions::inspect_block.
  OutputInspector* inspector = nullptr;
  // ExecuteOptions::block_written and ::source_gate (the latter for conversion_matches).
  std::function<void(uint32_t file, uint64_t offset, uint64_t size)> block_written;
  const SourceGate* source_gate = nullptr;
  BandMemory* band_memory = nullptr;  // ExecuteOptions::band_memory
};

struct ConversionSummary {
  Direction direction = Direction::kToHf;
  std::optional<CheckpointFormat> input_format;  // none for init, which reads nothing
  CheckpointFormat output_format = CheckpointFormat::kSafetensors;
  size_t input_tensors = 0;
  size_t output_tensors = 0;
  uint64_t output_tensor_bytes = 0;
  std::vector<std::pair<std::string, uint64_t>> files;  // relative path, size
  ConversionReport report;
};

// Plans the conversion of `input` and writes it into the existing empty `directory`.
// With `dry_run`, only plans (nothing is written) and returns what would be written.
ConversionSummary write_conversion(Direction direction, const ModelConfig& config,
                                   const FamilyRules& rules, const MappedCheckpoint& input,
                                   const std::filesystem::path& directory,
                                   const WriteOptions& options, bool dry_run = false);

// Plans the same conversion and compares the bytes it would write with the files already in
// `directory`, writing nothing: true when they are exactly the same files and bytes. With
// `expected_digests` (the block_digests of the conversion that wrote `directory`, same
// options), the files are not read again. With options.source_gate, `input` may still be
// being written: every source byte is waited for before it is read.
bool conversion_matches(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                        const MappedCheckpoint& input, const std::filesystem::path& directory,
                        const WriteOptions& options,
                        const std::vector<uint64_t>* expected_digests = nullptr);

// Everything write_conversion decides before writing a byte: the summary, the file plan and
// the recipes bound to `input`'s tensors (which must outlive it). Conversions split into
// parts (pipeline/conversion_parts.h) run a share of its blocks.
struct PlannedConversion {
  ConversionSummary summary;
  FilePlan file_plan;
  ExecutionPlan execution;
  // A quantized input's decoded view: `execution`'s sources point into its catalog.
  std::shared_ptr<const DecodedInput> decoded;
};

// Plans as write_conversion does, and checks the tied tensors (kBadInput when they differ).
PlannedConversion plan_conversion_output(Direction direction, const ModelConfig& config,
                                         const FamilyRules& rules, const MappedCheckpoint& input,
                                         const WriteOptions& options);

// The executor options write_conversion derives from `options`.
ExecuteOptions execute_options(const WriteOptions& options);

// The file plan of a native checkpoint of `tensors` in options.native_format.
FilePlan plan_native_output(const std::vector<OutputTensorSpec>& tensors,
                            const WriteOptions& options);

}  // namespace ckconv
