// Plan building, in three steps: check the family's rule table against itself (a ckconv bug
// if not: kInternal), check the input checkpoint's coverage strictly (every input tensor is
// consumed, dropped or ignored by a named rule, every expected input is present, shapes and
// dtypes match the flavor: kBadInput, all problems reported together by key, before a byte is
// written), then decide every output tensor as a recipe over input tensors. What each rule op
// does in each direction lives in pipeline/rule_ops.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "families/family.h"
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
  // How many skipped keys each named rule skipped, in first-seen order; every skipped key is
  // counted under one rule: "training_state.<group>" (formats/training_state.h), "non_tensor"
  // (a pickled value that is not a tensor), "hf_ignored" (an HF buffer the family ignores).
  std::vector<std::pair<std::string, size_t>> skipped_by_rule;
  void add_skipped(const std::string& key, const std::string& why, const std::string& rule);
};

struct TensorPlan {
  std::vector<OutputTensorSpec> outputs;
  std::vector<TensorRecipe> recipes;                       // parallel to outputs
  std::vector<std::vector<const CatalogTensor*>> sources;  // parallel to recipes[i].sources
  // Input tensors that must be bit-equal (tied lm_head and embeddings on to_hf, stored
  // copies of shared tensors on from_hf), and the end of the message when they are not.
  struct EqualTensors {
    const CatalogTensor* a = nullptr;
    const CatalogTensor* b = nullptr;
    std::string if_different;
  };
  std::vector<EqualTensors> must_be_equal;
  ConversionReport report;
};

// The HF tensors a flavor's to_hf produces (names and shapes, in output order; dtype F32).
std::vector<OutputTensorSpec> expected_hf_tensors(const FamilyRules& rules);

// Checks a rule table against itself; kInternal naming the key: every rule has the key counts
// its op needs, every native key is consumed by exactly one rule and listed once in the
// native order, every HF key is written by one rule (a tied rule refers to a written one),
// and both directions' recipes are valid, from_hf giving back the native shapes.
void check_family_rules(const FamilyRules& rules);

// Output dtypes (docs/formats.md "Casts"). Without `dtype`, each output keeps its input's
// dtype; with it, every floating output is cast to it. Either way, the tensors torchtitan
// keeps in float32 (NativeTensor::float32_only, and the HF tensors of their rules) are
// written as float32.
struct CastOptions {
  std::optional<DType> dtype;
  // Input tensors decoded from a quantized format (pipeline/quantized_input.h): float32
  // sources whose outputs are written as `dequantized_dtype` unless `dtype` is set.
  std::set<std::string> dequantized;
  DType dequantized_dtype = DType::kBF16;
};

// `config` names the flavor in error messages; `rules` is its rule table.
TensorPlan plan_conversion(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                           const Catalog& input, const CastOptions& cast = {});

}  // namespace ckconv
