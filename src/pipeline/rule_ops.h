// What each RuleOp does in each direction, kept together per op: the tensor recipes it builds
// on to_hf and on from_hf, the report lines and tensor checks of the asymmetric ops (dropped
// zeros, tied), and the arity of its key lists. pipeline/plan drives every op through these
// functions without knowing any of them.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "families/family.h"
#include "layout/recipe.h"

namespace ckconv {

struct TensorInfo {
  Shape shape;
  DType dtype = DType::kF32;
};

// What a rule sees of one direction's input.
struct RuleInputs {
  // An input-side tensor the rule names (native on to_hf, HF on from_hf).
  std::function<TensorInfo(const std::string&)> tensor;
  // to_hf: the native key whose rule writes HF key `hf` (kTied compares against it).
  std::function<std::string(const std::string& hf)> native_writing;
};

// Two input tensors that must be bit-equal, and what it means when they are not.
struct EqualInputs {
  std::string a;
  std::string b;
  std::string if_different;  // the end of the error message naming both
};

// One rule's share of one direction's plan.
struct RuleStep {
  std::vector<TensorRecipe> recipes;  // outputs, in the rule's order
  std::vector<std::string> dropped;   // report: "key: why" (consumed on purpose, not written)
  std::vector<std::string> created;   // report: "key: how" (zeros, tied copies)
  // Input names that must hold bit-equal tensors (to_hf tied; from_hf stored copies).
  std::vector<EqualInputs> must_be_equal;
};

RuleStep rule_to_hf(const Rule& rule, const RuleInputs& inputs);
RuleStep rule_from_hf(const Rule& rule, const RuleInputs& inputs);

// "" when `rule` has the key counts and parameters its op needs, else what is wrong.
std::string rule_problem(const Rule& rule);

// True when the rule's HF keys are written by other rules, not by its own to_hf (kTied
// refers to the embeddings the embeddings rule writes).
bool rule_refers_to_hf(const Rule& rule);

}  // namespace ckconv
