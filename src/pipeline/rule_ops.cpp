#include "pipeline/rule_ops.h"

#include <cstdint>
#include <limits>

namespace ckconv {
namespace {

constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();

struct KeyCount {
  size_t min = 1;
  size_t max = 1;
};

// One op: how many keys it takes on each side and its two directions.
struct OpBehaviour {
  KeyCount native;
  KeyCount hf;
  void (*to_hf)(const Rule& rule, const RuleInputs& inputs, RuleStep& step);
  void (*from_hf)(const Rule& rule, const RuleInputs& inputs, RuleStep& step);
};

// kRename: bytes unchanged both ways.
void rename_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo source = inputs.tensor(rule.native[0].name);
  step.recipes.push_back(
      recipe_identity(rule.hf[0], rule.native[0].name, source.shape, source.dtype));
}
void rename_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo source = inputs.tensor(rule.hf[0]);
  step.recipes.push_back(
      recipe_identity(rule.native[0].name, rule.hf[0], source.shape, source.dtype));
}

// kRopePermute: interleaved rows -> rotate-half on to_hf, and back.
void rope_permute_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo source = inputs.tensor(rule.native[0].name);
  step.recipes.push_back(recipe_rope_permute(rule.hf[0], rule.native[0].name, rule.heads,
                                             rule.head_dim, source.shape, source.dtype, false));
}
void rope_permute_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo source = inputs.tensor(rule.hf[0]);
  step.recipes.push_back(recipe_rope_permute(rule.native[0].name, rule.hf[0], rule.heads,
                                             rule.head_dim, source.shape, source.dtype, true));
}

// kFusedQkv: one wqkv split into q, k, v on to_hf, packed from them on from_hf.
void fused_qkv_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo fused = inputs.tensor(rule.native[0].name);
  for (int part = 0; part < 3; ++part)
    step.recipes.push_back(recipe_fused_qkv_part(rule.hf[part], rule.native[0].name, part,
                                                 rule.heads, rule.kv_heads, rule.head_dim,
                                                 fused.shape, fused.dtype, rule.permute));
}
void fused_qkv_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo q = inputs.tensor(rule.hf[0]);
  Shape fused = q.shape;
  fused[0] = (rule.heads + 2 * rule.kv_heads) * rule.head_dim;
  step.recipes.push_back(recipe_fused_qkv_pack(rule.native[0].name, rule.hf[0], rule.hf[1],
                                               rule.hf[2], rule.heads, rule.kv_heads, rule.head_dim,
                                               fused, q.dtype, rule.permute));
}

// kUnstackExperts: stacked [E, ...] -> one HF tensor per expert, and back.
void unstack_experts_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo stacked = inputs.tensor(rule.native[0].name);
  for (size_t e = 0; e < rule.hf.size(); ++e)
    step.recipes.push_back(recipe_unstack(rule.hf[e], rule.native[0].name, static_cast<int64_t>(e),
                                          stacked.shape, stacked.dtype));
}
void unstack_experts_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo first = inputs.tensor(rule.hf[0]);
  Shape stacked = first.shape;
  stacked.insert(stacked.begin(), static_cast<int64_t>(rule.hf.size()));
  step.recipes.push_back(recipe_stack(rule.native[0].name, rule.hf, stacked, first.dtype));
}

// kTransposeLast2: its own inverse. A set `hf_shape` reshapes the HF side (torchtitan v0.1.0's
// one-expert [1, D, F] shared expert is HF's [F, D] weight): the element order is the same, so
// only the shape written changes.
void transpose_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo source = inputs.tensor(rule.native[0].name);
  step.recipes.push_back(
      recipe_transpose_last2(rule.hf[0], rule.native[0].name, source.shape, source.dtype));
  if (!rule.hf_shape.empty()) step.recipes.back().shape = rule.hf_shape;
}
void transpose_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo source = inputs.tensor(rule.hf[0]);
  step.recipes.push_back(
      recipe_transpose_last2(rule.native[0].name, rule.hf[0], source.shape, source.dtype));
  if (!rule.hf_shape.empty()) step.recipes.back().shape = rule.native[0].shape;
}

// The concatenation ops differ only in their recipes. to_hf concatenates the native parts
// into the one HF tensor; from_hf splits that tensor at the parts' native shapes, which only
// the native side knows, so they come from the rule.
using ConcatRecipe = TensorRecipe (*)(const std::string&, const std::vector<std::string>&,
                                      const std::vector<Shape>&, DType);
using SplitRecipe = TensorRecipe (*)(const std::string&, const std::string&, int,
                                     const std::vector<Shape>&, DType);

void concat_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step, ConcatRecipe concat) {
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  for (const NativeTensor& part : rule.native) {
    names.push_back(part.name);
    shapes.push_back(inputs.tensor(part.name).shape);
  }
  step.recipes.push_back(
      concat(rule.hf[0], names, shapes, inputs.tensor(rule.native[0].name).dtype));
}
void split_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step, SplitRecipe split) {
  std::vector<Shape> parts;
  for (const NativeTensor& part : rule.native) parts.push_back(part.shape);
  const DType dtype = inputs.tensor(rule.hf[0]).dtype;
  for (size_t k = 0; k < rule.native.size(); ++k)
    step.recipes.push_back(
        split(rule.native[k].name, rule.hf[0], static_cast<int>(k), parts, dtype));
}

// kConcatTransposed: cat(native[k]^T, dim=-1).
void concat_transposed_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  concat_to_hf(rule, inputs, step, recipe_concat_transposed);
}
void concat_transposed_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  split_from_hf(rule, inputs, step, recipe_split_transposed);
}

// kConcatRows: cat(native[k], dim=-2).
void concat_rows_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  concat_to_hf(rule, inputs, step, recipe_concat_rows);
}
void concat_rows_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  split_from_hf(rule, inputs, step, recipe_split_rows);
}

// kConcatColumns: cat(native[k], dim=-1).
void concat_columns_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  concat_to_hf(rule, inputs, step, recipe_concat_columns);
}
void concat_columns_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  split_from_hf(rule, inputs, step, recipe_split_columns);
}

// kDroppedZeros: no HF tensor; from_hf writes float32 zeros.
void dropped_zeros_to_hf(const Rule& rule, const RuleInputs&, RuleStep& step) {
  step.dropped.push_back(rule.native[0].name +
                         ": no HF counterpart (re-created as zeros by from_hf)");
}
void dropped_zeros_from_hf(const Rule& rule, const RuleInputs&, RuleStep& step) {
  step.recipes.push_back(recipe_zeros(rule.native[0].name, rule.native[0].shape, DType::kF32));
  step.created.push_back(rule.native[0].name + ": float32 zeros (HF has no such tensor)");
}

// kTied: omitted on to_hf, where it must equal the native tensor written as hf[0]; from_hf
// copies hf[0].
void tied_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const std::string embeddings = inputs.native_writing(rule.hf[0]);
  step.must_be_equal.push_back(
      {rule.native[0].name, embeddings,
       "but the flavor ties them (enable_weight_tying): the HF checkpoint would lose '" +
           rule.native[0].name + "'; check the flavor"});
  step.dropped.push_back(rule.native[0].name + ": tied to " + embeddings +
                         ", omitted (tie_word_embeddings)");
}
void tied_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  rename_from_hf(rule, inputs, step);
  step.created.push_back(rule.native[0].name + ": copy of " + rule.hf[0] + " (tied embeddings)");
}

// kFusedSwiglu: an interleaved w13 pair split into its part-0 and part-1 tensors on to_hf,
// interleaved again on from_hf (the pair's shape comes from the rule).
void fused_swiglu_to_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  const TensorInfo pair = inputs.tensor(rule.native[0].name);
  const int64_t batch = static_cast<int64_t>(rule.hf.size() / 2);
  for (size_t h = 0; h < rule.hf.size(); ++h)
    step.recipes.push_back(recipe_pair_part(
        rule.hf[h], rule.native[0].name, static_cast<int>(static_cast<int64_t>(h) / batch),
        static_cast<int64_t>(h) % batch, pair.shape, pair.dtype));
}
void fused_swiglu_from_hf(const Rule& rule, const RuleInputs& inputs, RuleStep& step) {
  step.recipes.push_back(recipe_pair_pack(rule.native[0].name, rule.hf, rule.native[0].shape,
                                          inputs.tensor(rule.hf[0]).dtype));
}

// kDroppedHf: nothing on to_hf; from_hf (called only when the input holds hf[0]) drops it,
// after checking a stored copy against the tensor it copies.
void dropped_hf_to_hf(const Rule&, const RuleInputs&, RuleStep&) {}
void dropped_hf_from_hf(const Rule& rule, const RuleInputs&, RuleStep& step) {
  step.dropped.push_back(rule.hf[0] + ": " + rule.reason);
  if (!rule.equal_to.empty())
    step.must_be_equal.push_back({rule.hf[0], rule.equal_to,
                                  "and '" + rule.hf[0] +
                                      "' is stored as a copy of it: dropping the copy would lose " +
                                      "weights; the checkpoint is inconsistent"});
}

const OpBehaviour& behaviour_of(RuleOp op) {
  static const OpBehaviour kRename{{}, {}, rename_to_hf, rename_from_hf};
  static const OpBehaviour kRopePermute{{}, {}, rope_permute_to_hf, rope_permute_from_hf};
  static const OpBehaviour kFusedQkv{{}, {3, 3}, fused_qkv_to_hf, fused_qkv_from_hf};
  static const OpBehaviour kUnstackExperts{
      {}, {1, kUnbounded}, unstack_experts_to_hf, unstack_experts_from_hf};
  static const OpBehaviour kTranspose{{}, {}, transpose_to_hf, transpose_from_hf};
  static const OpBehaviour kConcatTransposed{
      {1, kUnbounded}, {}, concat_transposed_to_hf, concat_transposed_from_hf};
  static const OpBehaviour kConcatRows{{1, kUnbounded}, {}, concat_rows_to_hf, concat_rows_from_hf};
  static const OpBehaviour kConcatColumns{
      {1, kUnbounded}, {}, concat_columns_to_hf, concat_columns_from_hf};
  static const OpBehaviour kDroppedZeros{{}, {0, 0}, dropped_zeros_to_hf, dropped_zeros_from_hf};
  static const OpBehaviour kTied{{}, {}, tied_to_hf, tied_from_hf};
  static const OpBehaviour kFusedSwiglu{
      {}, {2, kUnbounded}, fused_swiglu_to_hf, fused_swiglu_from_hf};
  static const OpBehaviour kDroppedHf{{0, 0}, {}, dropped_hf_to_hf, dropped_hf_from_hf};
  switch (op) {
    case RuleOp::kRename:
      return kRename;
    case RuleOp::kRopePermute:
      return kRopePermute;
    case RuleOp::kFusedQkv:
      return kFusedQkv;
    case RuleOp::kUnstackExperts:
      return kUnstackExperts;
    case RuleOp::kTransposeLast2:
      return kTranspose;
    case RuleOp::kConcatTransposed:
      return kConcatTransposed;
    case RuleOp::kConcatRows:
      return kConcatRows;
    case RuleOp::kConcatColumns:
      return kConcatColumns;
    case RuleOp::kDroppedZeros:
      return kDroppedZeros;
    case RuleOp::kTied:
      return kTied;
    case RuleOp::kFusedSwiglu:
      return kFusedSwiglu;
    case RuleOp::kDroppedHf:
      return kDroppedHf;
  }
  return kRename;
}

}  // namespace

RuleStep rule_to_hf(const Rule& rule, const RuleInputs& inputs) {
  RuleStep step;
  behaviour_of(rule.op).to_hf(rule, inputs, step);
  return step;
}

RuleStep rule_from_hf(const Rule& rule, const RuleInputs& inputs) {
  RuleStep step;
  behaviour_of(rule.op).from_hf(rule, inputs, step);
  return step;
}

std::string rule_problem(const Rule& rule) {
  const OpBehaviour& behaviour = behaviour_of(rule.op);
  auto count_problem = [](const char* side, size_t count, KeyCount allowed) -> std::string {
    if (count >= allowed.min && count <= allowed.max) return "";
    return "takes " + std::to_string(count) + " " + side + " keys";
  };
  std::string problem = count_problem("native", rule.native.size(), behaviour.native);
  if (problem.empty()) problem = count_problem("HF", rule.hf.size(), behaviour.hf);
  const bool needs_heads = rule.op == RuleOp::kRopePermute || rule.op == RuleOp::kFusedQkv;
  if (problem.empty() && needs_heads && (rule.heads <= 0 || rule.head_dim <= 0))
    problem = "needs positive heads and head_dim";
  if (problem.empty() && rule.op == RuleOp::kFusedQkv && rule.kv_heads <= 0)
    problem = "needs positive kv_heads";
  if (problem.empty() && rule.op == RuleOp::kFusedSwiglu) {
    const Shape& pair = rule.native[0].shape;
    const size_t rank = pair.size();
    int64_t batch = 1;
    for (size_t d = 0; d + 3 < rank; ++d) batch *= pair[d];
    if (rank < 3 || pair[rank - 2] != 2 || rule.hf.size() != static_cast<size_t>(2 * batch))
      problem = "needs a [batch..., F, 2, D] pair and 2 x batch HF keys";
  }
  return problem;
}

bool rule_refers_to_hf(const Rule& rule) {
  return rule.op == RuleOp::kTied;
}

}  // namespace ckconv
