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
  config["torch_dtype"] = dtype == DType::kBF16  ? "bfloat16"
                          : dtype == DType::kF16 ? "float16"
                          : dtype == DType::kF64 ? "float64"
                                                 : "float32";
  return config.dump(2) + "\n";
}

FilePlan plan_output(Direction direction, const std::vector<OutputTensorSpec>& tensors,
                     const FamilyRules& rules, const WriteOptions& options) {
  if (direction == Direction::kToHf) {
    SafetensorsWriteOptions write;
    write.max_shard_size_bytes = options.max_shard_size_bytes;
    write.metadata = {{"format", "pt"}};
    FilePlan file_plan = plan_safetensors(tensors, write);
    DType dtype = tensors.empty() ? DType::kF32 : tensors.front().dtype;
    std::string json = hf_config_json(rules, dtype);
    file_plan.files.push_back(PlannedFile{"config.json", json.size(), {LiteralBytes{0, json}}});
    return file_plan;
  }
  return plan_native_output(tensors, options);
}

// Tied tensors (enable_weight_tying: the embedding and lm_head) must hold the same bytes, since
// only one of them is written; kBadInput naming both when they differ in dtype, shape or any
// byte. Reads both in 8 MiB steps.
void check_tied_tensors_bit_equal(const MappedCheckpoint& input, const CatalogTensor& a,
                                  const CatalogTensor& b) {
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
      equal =
          std::memcmp(left.data(), right.data(), static_cast<size_t>(count * element_size)) == 0;
    }
  }
  if (!equal)
    fail_input("'" + a.name + "' differs from '" + b.name +
               "', but the flavor ties them (enable_weight_tying): the HF checkpoint would lose '" +
               a.name + "'; check the flavor");
}

}  // namespace

FilePlan plan_native_output(const std::vector<OutputTensorSpec>& tensors,
                            const WriteOptions& options) {
  switch (options.native_format) {
    case CheckpointFormat::kSafetensors:
      return plan_safetensors(tensors, SafetensorsWriteOptions{});
    case CheckpointFormat::kDcp:
      return plan_dcp(tensors, DcpWriteOptions{});
    case CheckpointFormat::kTorchSave:
      return plan_torch_save(tensors, "model");
  }
  fail(ErrorKind::kInternal, "unknown native format");
}

namespace {

ExecutionPlan execution_plan(TensorPlan& plan, const MappedCheckpoint& input) {
  ExecutionPlan execution;
  execution.recipes = std::move(plan.recipes);
  for (const auto& sources : plan.sources) {
    std::vector<SourceRef> refs;
    for (const CatalogTensor* tensor : sources) refs.push_back(SourceRef{&input, tensor, {}});
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
  execute.progress = options.progress;
  execute.block_digests = options.block_digests;
  return execute;
}

PlannedConversion plan_conversion_output(Direction direction, const ModelConfig& config,
                                         const FamilyRules& rules, const MappedCheckpoint& input,
                                         const WriteOptions& options) {
  TensorPlan plan = plan_conversion(direction, config, rules, input.catalog());
  PlannedConversion planned;
  planned.file_plan = plan_output(direction, plan.outputs, rules, options);
  planned.summary = summary_of(direction, plan, input, planned.file_plan, options);
  for (const auto& [a, b] : plan.must_be_equal) check_tied_tensors_bit_equal(input, *a, *b);
  planned.execution = execution_plan(plan, input);
  return planned;
}

ConversionSummary write_conversion(Direction direction, const ModelConfig& config,
                                   const FamilyRules& rules, const MappedCheckpoint& input,
                                   const std::filesystem::path& directory,
                                   const WriteOptions& options, bool dry_run) {
  TensorPlan plan = plan_conversion(direction, config, rules, input.catalog());
  FilePlan file_plan = plan_output(direction, plan.outputs, rules, options);
  ConversionSummary summary = summary_of(direction, plan, input, file_plan, options);
  if (dry_run) return summary;

  for (const auto& [a, b] : plan.must_be_equal) check_tied_tensors_bit_equal(input, *a, *b);
  ExecuteOptions execute_with = execute_options(options);
  if (options.inspector) {
    options.inspector->begin(plan.outputs, file_plan);
    execute_with.inspect_block = [inspector = options.inspector](
                                     uint32_t file, uint64_t offset, const uint8_t* data,
                                     uint64_t size) { inspector->block(file, offset, data, size); };
  }
  execute(execution_plan(plan, input), file_plan, directory, execute_with);
  return summary;
}

bool conversion_matches(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                        const MappedCheckpoint& input, const std::filesystem::path& directory,
                        const WriteOptions& options,
                        const std::vector<uint64_t>* expected_digests) {
  TensorPlan plan = plan_conversion(direction, config, rules, input.catalog());
  FilePlan file_plan = plan_output(direction, plan.outputs, rules, options);
  for (const auto& [a, b] : plan.must_be_equal) check_tied_tensors_bit_equal(input, *a, *b);
  ExecuteOptions execute = execute_options(options);
  execute.block_digests = nullptr;
  return matches_files(execution_plan(plan, input), file_plan, directory, execute,
                       expected_digests);
}

}  // namespace ckconv
