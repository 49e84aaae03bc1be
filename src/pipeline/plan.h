// Plan building: from a model config, its adapter and the input checkpoint's catalog, decide
// every output tensor as a recipe over input tensors, and check coverage strictly: every
// input tensor is consumed, dropped or ignored by a named rule, every expected output is
// produced, shapes and dtypes match the flavor. All problems are reported together, naming
// the keys, before a byte is written.
#pragma once

#include <string>
#include <vector>

#include "adapters/adapter.h"
#include "formats/catalog.h"
#include "formats/file_plan.h"
#include "layout/recipe.h"
#include "model/model_config.h"

namespace ckconv {

enum class Direction { kToHf, kFromHf };

struct ConversionReport {
  std::vector<std::string> dropped;  // "key: why" (consumed on purpose, not written)
  std::vector<std::string> created;  // "key: how" (zeros, tied copies)
  std::vector<std::string> skipped;  // "key: why" (non-model items, ignored HF buffers)
};

struct TensorPlan {
  std::vector<OutputTensorSpec> outputs;
  std::vector<TensorRecipe> recipes;                     // parallel to outputs
  std::vector<std::vector<const CatalogTensor*>> sources;  // parallel to recipes[i].sources
  // Pairs of input tensors that must be bit-equal (tied lm_head and embeddings on to_hf).
  std::vector<std::pair<const CatalogTensor*, const CatalogTensor*>> must_be_equal;
  ConversionReport report;
};

// The HF tensors a flavor's to_hf produces (names and shapes, in output order).
std::vector<OutputTensorSpec> expected_hf_tensors(const ModelConfig& config, const Adapter& adapter);

TensorPlan plan_conversion(Direction direction, const ModelConfig& config, const Adapter& adapter,
                           const Catalog& input);

}  // namespace ckconv
