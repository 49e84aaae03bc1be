#include "pipeline/init_checkpoint.h"

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "core/float_convert.h"
#include "families/family.h"
#include "pipeline/executor.h"

namespace ckconv {

namespace {

uint64_t mix(uint64_t value) {  // splitmix64 finaliser
  value += 0x9e3779b97f4a7c15ull;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
  return value ^ (value >> 31);
}

uint64_t hash_name(const std::string& name) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ull;
  return hash;
}

// Tied flavors hold one tensor under two names, with the same values: the native tensor
// written as a tied rule's HF key takes the values generated for the tied one (lm_head).
std::map<std::string, std::string> tied_value_names(const FamilyRules& rules) {
  std::map<std::string, std::string> out;
  for (const Rule& tied : rules.rules) {
    if (tied.op != RuleOp::kTied) continue;
    for (const Rule& rule : rules.rules)
      if (rule.op != RuleOp::kTied && rule.hf.size() == 1 && rule.hf[0] == tied.hf[0])
        out[rule.native[0].name] = tied.native[0].name;
  }
  return out;
}

enum class Fill { kUniform, kOnes, kZeros };

// Float32-only buffers (MoE expert biases) start at zero, as in torchtitan.
Fill fill_of(const NativeTensor& tensor) {
  const std::string& name = tensor.name;
  if (tensor.float32_only) return Fill::kZeros;
  const bool is_norm = name.find("norm") != std::string::npos;
  if (is_norm && tensor.shape.size() == 1) return Fill::kOnes;
  return Fill::kUniform;
}

void store(DType dtype, float value, uint8_t* out) {
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out, &value, 4);
      break;
    case DType::kF64: {
      double wide = value;
      std::memcpy(out, &wide, 8);
      break;
    }
    case DType::kBF16: {
      uint16_t bits = bf16_from_f32(value);
      std::memcpy(out, &bits, 2);
      break;
    }
    case DType::kF16: {
      uint16_t bits = f16_from_f32(value);
      std::memcpy(out, &bits, 2);
      break;
    }
    default:
      fail(ErrorKind::kUsage, "init supports f32, bf16, f16 and f64");
  }
}

}  // namespace

ConversionSummary write_initial_checkpoint(const FamilyRules& rules, const InitOptions& init,
                                           const std::filesystem::path& directory,
                                           const WriteOptions& options, bool dry_run) {
  const std::vector<NativeTensor> tensors = expected_native_tensors(rules);
  const std::map<std::string, std::string> value_names = tied_value_names(rules);
  std::vector<OutputTensorSpec> specs;
  ExecutionPlan plan;
  for (const NativeTensor& tensor : tensors) {
    const DType dtype = tensor.float32_only ? DType::kF32 : init.dtype;
    specs.push_back({tensor.name, dtype, tensor.shape});
    TensorRecipe recipe = recipe_identity(tensor.name, "init:" + tensor.name, tensor.shape, dtype);
    const Fill fill = fill_of(tensor);
    const auto tied = value_names.find(tensor.name);
    const std::string& value_name = tied == value_names.end() ? tensor.name : tied->second;
    const uint64_t key = mix(init.seed ^ hash_name(value_name));
    const int element_size = dtype_size(dtype);
    SourceRef source;
    source.generate = [fill, key, dtype, element_size](int64_t first, int64_t count, uint8_t* out) {
      // Uniform on [-a, a] with a = 0.02 * sqrt(3): standard deviation 0.02.
      constexpr float kHalfWidth = 0.0346410162f;
      for (int64_t i = 0; i < count; ++i) {
        float value = fill == Fill::kOnes ? 1.0f : 0.0f;
        if (fill == Fill::kUniform) {
          const uint64_t bits = mix(key + static_cast<uint64_t>(first + i));
          const float unit = static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);  // [0, 1)
          value = (2.0f * unit - 1.0f) * kHalfWidth;
        }
        store(dtype, value, out + i * element_size);
      }
    };
    plan.recipes.push_back(std::move(recipe));
    plan.sources.push_back({std::move(source)});
  }
  ConversionSummary summary;
  summary.output_tensors = specs.size();
  for (const auto& spec : specs) summary.output_tensor_bytes += spec.size_bytes();
  summary.output_format = options.native_format;
  FilePlan file_plan = plan_native_output(specs, options);
  for (const auto& file : file_plan.files)
    summary.files.push_back({file.relative_path, file.size_bytes});
  if (dry_run) return summary;
  ExecuteOptions execute_options;
  execute_options.threads = options.threads;
  execute_options.block_bytes = options.block_bytes;
  execute_options.sync = options.sync;
  execute_options.progress = options.progress;
  execute(plan, file_plan, directory, execute_options);
  return summary;
}

}  // namespace ckconv
