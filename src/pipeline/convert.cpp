#include "pipeline/convert.h"

#include <cstring>

#include "core/error.h"
#include "formats/dcp/dcp_writer.h"
#include "formats/safetensors/safetensors_writer.h"
#include "formats/torch_save/torch_save_writer.h"
#include "pipeline/executor.h"

namespace ckconv {
namespace {

// config.json as transformers writes it: 2-space indent, sorted keys are not required.
std::string hf_config_json(const FamilyRules& rules, DType dtype) {
  nlohmann::json config = rules.hf_config;
  const char* name = dtype == DType::kBF16  ? "bfloat16"
                     : dtype == DType::kF16 ? "float16"
                     : dtype == DType::kF64 ? "float64"
                                            : "float32";
  config["torch_dtype"] = name;
  if (config.contains("dtype")) config["dtype"] = name;  // transformers 5 spelling
  return config.dump(2) + "\n";
}

FilePlan plan_output(Direction direction, const std::vector<OutputTensorSpec>& tensors,
                     const FamilyRules& rules, const WriteOptions& options) {
  if (direction == Direction::kToHf) {
    SafetensorsWriteOptions write;
    write.max_shard_size_bytes = options.max_shard_size_bytes;
    write.metadata = {{"format", "pt"}};
    FilePlan file_plan = plan_safetensors(tensors, write);
    DType dtype = options.dtype     ? *options.dtype
                  : tensors.empty() ? DType::kF32
                                    : tensors.front().dtype;
    std::string json = hf_config_json(rules, dtype);
    file_plan.files.push_back(PlannedFile{"config.json", json.size(), {LiteralBytes{0, json}}});
    for (const CompanionFile& file : options.hf_companions)
      file_plan.files.push_back(
          PlannedFile{file.name, file.bytes.size(), {LiteralBytes{0, file.bytes}}});
    return file_plan;
  }
  return plan_native_output(tensors, options);
}

// Tensors of which only one is written (tied embedding and lm_head; an HF copy of a shared
// tensor) must hold the same bytes; kBadInput naming both when they differ in dtype, shape or
// any byte. Reads both in 8 MiB steps, releasing the pages read (the pair is usually two
// embedding-sized tensors, which would otherwise stay in the resident set all run long).
void check_bit_equal(const MappedCheckpoint& input, const TensorPlan::EqualTensors& pair) {
  const CatalogTensor& a = *pair.a;
  const CatalogTensor& b = *pair.b;
  const bool same_type = a.dtype == b.dtype && a.shape == b.shape;
  bool equal = same_type;
  if (same_type) {
    const int64_t total = num_elements(a.shape);
    const int64_t element_size = dtype_size(a.dtype);
    const int64_t step = std::max<int64_t>(1, (int64_t{8} << 20) / element_size);
    std::vector<uint8_t> left(static_cast<size_t>(step * element_size));
    std::vector<uint8_t> right(left.size());
    for (int64_t first = 0; first < total && equal; first += step) {
      const int64_t count = std::min(step, total - first);
      input.read_elements(a, first, count, left.data());
      input.read_elements(b, first, count, right.data());
      input.release_elements(a, first, count);
      input.release_elements(b, first, count);
      equal =
          std::memcmp(left.data(), right.data(), static_cast<size_t>(count * element_size)) == 0;
    }
  }
  if (!equal) fail_input("'" + a.name + "' differs from '" + b.name + "', " + pair.if_different);
}

}  // namespace

FilePlan plan_native_output(const std::vector<OutputTensorSpec>& tensors,
                            const WriteOptions& options) {
  switch (options.native_format) {
    case CheckpointFormat::kSafetensors:
      return plan_safetensors(tensors, SafetensorsWriteOptions{});
    case CheckpointFormat::kDcp: {
      DcpWriteOptions dcp;
      dcp.data_file_name = options.dcp_data_file_name;
      return plan_dcp(tensors, dcp);
    }
    case CheckpointFormat::kTorchSave:
      return plan_torch_save(tensors, "model");
  }
  fail(ErrorKind::kInternal, "unknown native format");
}

namespace {

// The plan over the input as the rules see it: from_hf decodes quantized tensors first
// (pipeline/quantized_input.h); the decoded tensors are generated sources.
struct PlannedInput {
  std::shared_ptr<const DecodedInput> decoded;  // the plan's sources point into its catalog
  TensorPlan plan;
};

PlannedInput plan_input(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                        const MappedCheckpoint& input, const WriteOptions& options) {
  PlannedInput planned;
  CastOptions cast{options.dtype, {}, DType::kBF16};
  const Catalog* catalog = &input.catalog();
  if (direction == Direction::kFromHf && has_quantized_tensors(*catalog)) {
    planned.decoded =
        std::make_shared<const DecodedInput>(decode_quantized_input(input, options.quantization));
    catalog = &planned.decoded->catalog;
    for (const auto& [name, generator] : planned.decoded->generators) cast.dequantized.insert(name);
  }
  planned.plan = plan_conversion(direction, config, rules, *catalog, cast);
  if (planned.decoded)
    for (const std::string& line : planned.decoded->consumed)
      planned.plan.report.dropped.push_back(line);
  return planned;
}

ExecutionPlan execution_plan(PlannedInput& planned, const MappedCheckpoint& input) {
  ExecutionPlan execution;
  execution.recipes = std::move(planned.plan.recipes);
  for (const auto& sources : planned.plan.sources) {
    std::vector<SourceRef> refs;
    for (const CatalogTensor* tensor : sources) {
      if (planned.decoded) {
        auto generator = planned.decoded->generators.find(tensor->name);
        if (generator != planned.decoded->generators.end()) {
          refs.push_back(SourceRef{nullptr, nullptr, generator->second});
          continue;
        }
      }
      refs.push_back(SourceRef{&input, tensor, {}});
    }
    execution.sources.push_back(std::move(refs));
  }
  return execution;
}

ConversionSummary summary_of(Direction direction, const TensorPlan& plan,
                             const MappedCheckpoint& input, const FilePlan& file_plan,
                             const WriteOptions& options) {
  ConversionSummary summary;
  summary.direction = direction;
  summary.input_format = input.catalog().format;
  summary.input_tensors = input.catalog().tensors.size();
  summary.output_tensors = plan.outputs.size();
  for (const auto& spec : plan.outputs) summary.output_tensor_bytes += spec.size_bytes();
  summary.output_format =
      direction == Direction::kToHf ? CheckpointFormat::kSafetensors : options.native_format;
  for (const auto& file : file_plan.files)
    summary.files.push_back({file.relative_path, file.size_bytes});
  summary.report = plan.report;
  return summary;
}

}  // namespace

ExecuteOptions execute_options(const WriteOptions& options) {
  ExecuteOptions execute;
  execute.threads = options.threads;
  execute.block_bytes = options.block_bytes;
  execute.sync = options.sync;
  execute.buffered = options.buffered;
  execute.progress = options.progress;
  execute.block_digests = options.block_digests;
  execute.block_written = options.block_written;
  execute.source_gate = options.source_gate;
  execute.band_memory = options.band_memory;
  return execute;
}

PlannedConversion plan_conversion_output(Direction direction, const ModelConfig& config,
                                         const FamilyRules& rules, const MappedCheckpoint& input,
                                         const WriteOptions& options) {
  PlannedInput input_plan = plan_input(direction, config, rules, input, options);
  const TensorPlan& plan = input_plan.plan;
  PlannedConversion planned;
  planned.file_plan = plan_output(direction, plan.outputs, rules, options);
  planned.summary = summary_of(direction, plan, input, planned.file_plan, options);
  for (const auto& pair : plan.must_be_equal) check_bit_equal(input, pair);
  planned.execution = execution_plan(input_plan, input);
  planned.decoded = input_plan.decoded;
  return planned;
}

ConversionSummary write_conversion(Direction direction, const ModelConfig& config,
                                   const FamilyRules& rules, const MappedCheckpoint& input,
                                   const std::filesystem::path& directory,
                                   const WriteOptions& options, bool dry_run) {
  PlannedInput planned = plan_input(direction, config, rules, input, options);
  TensorPlan& plan = planned.plan;
  FilePlan file_plan = plan_output(direction, plan.outputs, rules, options);
  ConversionSummary summary = summary_of(direction, plan, input, file_plan, options);
  if (dry_run) return summary;

  for (const auto& pair : plan.must_be_equal) check_bit_equal(input, pair);
  ExecuteOptions execute_with = execute_options(options);
  if (options.inspector) {
    options.inspector->begin(plan.outputs, file_plan);
    execute_with.inspect_block = [inspector = options.inspector](
                                     uint32_t file, uint64_t offset, const uint8_t* data,
                                     uint64_t size) { inspector->block(file, offset, data, size); };
  }
  execute(execution_plan(planned, input), file_plan, directory, execute_with);
  return summary;
}

bool conversion_matches(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                        const MappedCheckpoint& input, const std::filesystem::path& directory,
                        const WriteOptions& options,
                        const std::vector<uint64_t>* expected_digests) {
  PlannedInput planned = plan_input(direction, config, rules, input, options);
  const TensorPlan& plan = planned.plan;
  FilePlan file_plan = plan_output(direction, plan.outputs, rules, options);
  for (const auto& pair : plan.must_be_equal) {
    if (options.source_gate) {
      wait_for_tensor(*options.source_gate, input, *pair.a);
      wait_for_tensor(*options.source_gate, input, *pair.b);
    }
    check_bit_equal(input, pair);
  }
  ExecuteOptions execute = execute_options(options);
  execute.block_digests = nullptr;
  return matches_files(execution_plan(planned, input), file_plan, directory, execute,
                       expected_digests);
}

}  // namespace ckconv
