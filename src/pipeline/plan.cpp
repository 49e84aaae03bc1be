#include "pipeline/plan.h"

#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "model/native_layout.h"

namespace ckconv {
namespace {

// Recipes of one rule in one direction. `shape_of`/`dtype_of` describe the inputs.
template <typename ShapeOf, typename DTypeOf>
std::vector<TensorRecipe> rule_recipes(const Rule& rule, Direction direction, ShapeOf shape_of,
                                       DTypeOf dtype_of) {
  std::vector<TensorRecipe> out;
  const auto& n = rule.native;
  const auto& h = rule.hf;
  const bool to_hf = direction == Direction::kToHf;
  switch (rule.op) {
    case RuleOp::kRename:
      if (to_hf) out.push_back(recipe_identity(h[0], n[0], shape_of(n[0]), dtype_of(n[0])));
      else out.push_back(recipe_identity(n[0], h[0], shape_of(h[0]), dtype_of(h[0])));
      break;
    case RuleOp::kRopePermute:
      if (to_hf)
        out.push_back(recipe_rope_permute(h[0], n[0], rule.heads, rule.head_dim, shape_of(n[0]),
                                          dtype_of(n[0]), false));
      else
        out.push_back(recipe_rope_permute(n[0], h[0], rule.heads, rule.head_dim, shape_of(h[0]),
                                          dtype_of(h[0]), true));
      break;
    case RuleOp::kFusedQkv:
      if (to_hf) {
        for (int part = 0; part < 3; ++part)
          out.push_back(recipe_fused_qkv_part(h[part], n[0], part, rule.heads, rule.kv_heads,
                                              rule.head_dim, shape_of(n[0]), dtype_of(n[0]),
                                              rule.permute));
      } else {
        Shape fused = shape_of(h[0]);
        fused[0] = (rule.heads + 2 * rule.kv_heads) * rule.head_dim;
        out.push_back(recipe_fused_qkv_pack(n[0], h[0], h[1], h[2], rule.heads, rule.kv_heads,
                                            rule.head_dim, fused, dtype_of(h[0]), rule.permute));
      }
      break;
    case RuleOp::kExperts:
      if (to_hf) {
        for (size_t e = 0; e < h.size(); ++e)
          out.push_back(recipe_unstack(h[e], n[0], static_cast<int64_t>(e), shape_of(n[0]),
                                       dtype_of(n[0])));
      } else {
        Shape stacked = shape_of(h[0]);
        stacked.insert(stacked.begin(), static_cast<int64_t>(h.size()));
        out.push_back(recipe_stack(n[0], h, stacked, dtype_of(h[0])));
      }
      break;
    case RuleOp::kTransposeLast2:
      if (to_hf) out.push_back(recipe_transpose_last2(h[0], n[0], shape_of(n[0]), dtype_of(n[0])));
      else out.push_back(recipe_transpose_last2(n[0], h[0], shape_of(h[0]), dtype_of(h[0])));
      break;
    case RuleOp::kConcatTransposed: {
      if (to_hf) {
        std::vector<Shape> shapes;
        for (const auto& name : n) shapes.push_back(shape_of(name));
        out.push_back(recipe_concat_transposed(h[0], n, shapes, dtype_of(n[0])));
      }
      // from_hf needs the part shapes, which come from the expected native side; handled by
      // the caller through `native_shape_of`.
      break;
    }
    case RuleOp::kDroppedZeros:
    case RuleOp::kTied:
      break;  // no tensor recipe in the to_hf direction; from_hf handled by the caller
  }
  return out;
}

bool allowed_dtype(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16 || dtype == DType::kF64;
}

// Collects problems and throws one kBadInput error listing them by category.
class Problems {
 public:
  void add(const std::string& category, const std::string& item) { items_[category].push_back(item); }
  void throw_if_any(const std::string& context) const {
    if (items_.empty()) return;
    std::string message = context + ":";
    for (const auto& [category, list] : items_) {
      message += "\n  " + category + " (" + std::to_string(list.size()) + "):";
      for (size_t i = 0; i < list.size() && i < 20; ++i) message += "\n    " + list[i];
      if (list.size() > 20) message += "\n    ... and " + std::to_string(list.size() - 20) + " more";
    }
    fail_input(message);
  }

 private:
  std::map<std::string, std::vector<std::string>> items_;
};

}  // namespace

std::vector<OutputTensorSpec> expected_hf_tensors(const ModelConfig& config, const Adapter& adapter) {
  std::map<std::string, Shape> native;
  for (const auto& tensor : expected_native_tensors(config)) native[tensor.name] = tensor.shape;
  std::vector<OutputTensorSpec> out;
  for (const Rule& rule : adapter.rules) {
    for (const auto& name : rule.native)
      if (!native.count(name))
        fail(ErrorKind::kInternal, "adapter rule names native key '" + name +
                                       "' that the flavor does not have");
    for (const TensorRecipe& recipe : rule_recipes(
             rule, Direction::kToHf, [&](const std::string& n) { return native.at(n); },
             [](const std::string&) { return DType::kF32; }))
      out.push_back({recipe.name, recipe.dtype, recipe.shape});
  }
  return out;
}

TensorPlan plan_conversion(Direction direction, const ModelConfig& config, const Adapter& adapter,
                           const Catalog& input) {
  const std::vector<ExpectedTensor> native = expected_native_tensors(config);
  std::map<std::string, const ExpectedTensor*> native_by_name;
  for (const auto& tensor : native) native_by_name[tensor.name] = &tensor;

  // Internal consistency: each native key is consumed by exactly one rule.
  std::map<std::string, int> consumed;
  for (const Rule& rule : adapter.rules)
    for (const auto& name : rule.native) {
      if (!native_by_name.count(name))
        fail(ErrorKind::kInternal, "adapter rule names unknown native key '" + name + "'");
      ++consumed[name];
    }
  for (const auto& tensor : native)
    if (consumed[tensor.name] != 1)
      fail(ErrorKind::kInternal, "native key '" + tensor.name + "' is consumed by " +
                                     std::to_string(consumed[tensor.name]) + " adapter rules");

  std::map<std::string, const CatalogTensor*> inputs;
  TensorPlan plan;
  for (const auto& item : input.skipped) plan.report.skipped.push_back(item.name + ": " + item.reason);
  Problems problems;
  for (const auto& tensor : input.tensors)
    if (!inputs.emplace(tensor.name, &tensor).second) problems.add("duplicate keys", tensor.name);

  const std::string side = direction == Direction::kToHf ? "native" : "HF";
  const std::string context = "input " + input.path.string() + " does not match " + config.family() +
                              "/" + config.flavor() + " (" + side + " side)";

  // Expected input tensors of this direction.
  std::vector<OutputTensorSpec> expected_inputs;
  std::set<std::string> float32_only;
  if (direction == Direction::kToHf) {
    for (const auto& tensor : native) {
      expected_inputs.push_back({tensor.name, DType::kF32, tensor.shape});
      if (tensor.float32_only) float32_only.insert(tensor.name);
    }
  } else {
    expected_inputs = expected_hf_tensors(config, adapter);
  }
  std::vector<std::regex> ignored;
  if (direction == Direction::kFromHf)
    for (const auto& pattern : adapter.hf_ignored_patterns) ignored.emplace_back(pattern);

  std::set<std::string> expected_names;
  for (const auto& spec : expected_inputs) {
    expected_names.insert(spec.name);
    auto found = inputs.find(spec.name);
    if (found == inputs.end()) {
      problems.add("missing tensors", spec.name + " " + shape_to_string(spec.shape));
      continue;
    }
    const CatalogTensor& tensor = *found->second;
    if (tensor.shape != spec.shape)
      problems.add("shape mismatches", spec.name + ": expected " + shape_to_string(spec.shape) +
                                           ", found " + shape_to_string(tensor.shape));
    if (!allowed_dtype(tensor.dtype) ||
        (float32_only.count(spec.name) && tensor.dtype != DType::kF32))
      problems.add("unsupported dtypes",
                   spec.name + ": " + std::string(dtype_name(tensor.dtype)) +
                       (float32_only.count(spec.name) ? " (must be F32)" : " (expected F32, BF16, F16 or F64)"));
  }
  for (const auto& tensor : input.tensors) {
    if (expected_names.count(tensor.name)) continue;
    bool is_ignored = false;
    for (const auto& pattern : ignored) is_ignored = is_ignored || std::regex_match(tensor.name, pattern);
    if (is_ignored)
      plan.report.skipped.push_back(tensor.name + ": HF-only buffer, ignored by from_hf");
    else
      problems.add("unexpected tensors", tensor.name + " " + shape_to_string(tensor.shape));
  }
  problems.throw_if_any(context);

  auto shape_of = [&](const std::string& name) { return inputs.at(name)->shape; };
  auto dtype_of = [&](const std::string& name) { return inputs.at(name)->dtype; };
  auto add_recipe = [&](TensorRecipe recipe) {
    std::vector<const CatalogTensor*> sources;
    std::vector<Shape> source_shapes;
    for (const auto& name : recipe.sources) {
      sources.push_back(inputs.at(name));
      source_shapes.push_back(inputs.at(name)->shape);
      if (inputs.at(name)->dtype != recipe.dtype)
        problems.add("mixed dtypes", recipe.name + " combines " + recipe.sources[0] + " (" +
                                         std::string(dtype_name(recipe.dtype)) + ") and " + name +
                                         " (" + std::string(dtype_name(inputs.at(name)->dtype)) + ")");
    }
    validate_recipe(recipe, source_shapes);
    plan.outputs.push_back({recipe.name, recipe.dtype, recipe.shape});
    plan.sources.push_back(std::move(sources));
    plan.recipes.push_back(std::move(recipe));
  };

  if (direction == Direction::kToHf) {
    for (const Rule& rule : adapter.rules) {
      if (rule.op == RuleOp::kDroppedZeros) {
        plan.report.dropped.push_back(rule.native[0] + ": no HF counterpart (re-created as zeros by from_hf)");
        continue;
      }
      if (rule.op == RuleOp::kTied) {
        plan.must_be_equal.push_back({inputs.at(rule.native[0]), inputs.at("tok_embeddings.weight")});
        plan.report.dropped.push_back(rule.native[0] + ": tied to tok_embeddings.weight, omitted (tie_word_embeddings)");
        continue;
      }
      for (TensorRecipe& recipe : rule_recipes(rule, direction, shape_of, dtype_of)) add_recipe(std::move(recipe));
    }
  } else {
    // Output in torchtitan's native order.
    std::map<std::string, TensorRecipe> by_native;
    for (const Rule& rule : adapter.rules) {
      switch (rule.op) {
        case RuleOp::kDroppedZeros:
          by_native[rule.native[0]] = recipe_zeros(rule.native[0], native_by_name.at(rule.native[0])->shape, DType::kF32);
          plan.report.created.push_back(rule.native[0] + ": float32 zeros (HF has no such tensor)");
          break;
        case RuleOp::kTied:
          by_native[rule.native[0]] = recipe_identity(rule.native[0], rule.hf[0], shape_of(rule.hf[0]), dtype_of(rule.hf[0]));
          plan.report.created.push_back(rule.native[0] + ": copy of " + rule.hf[0] + " (tied embeddings)");
          break;
        case RuleOp::kConcatTransposed: {
          std::vector<Shape> parts;
          for (const auto& name : rule.native) parts.push_back(native_by_name.at(name)->shape);
          for (size_t k = 0; k < rule.native.size(); ++k)
            by_native[rule.native[k]] = recipe_split_transposed(rule.native[k], rule.hf[0], static_cast<int>(k), parts, dtype_of(rule.hf[0]));
          break;
        }
        default:
          for (TensorRecipe& recipe : rule_recipes(rule, direction, shape_of, dtype_of))
            by_native[recipe.name] = std::move(recipe);
      }
    }
    for (const auto& tensor : native) {
      TensorRecipe& recipe = by_native.at(tensor.name);
      if (recipe.shape != tensor.shape)
        fail(ErrorKind::kInternal, "from_hf recipe for '" + tensor.name + "' has shape " +
                                       shape_to_string(recipe.shape) + ", flavor says " + shape_to_string(tensor.shape));
      add_recipe(std::move(recipe));
    }
  }
  problems.throw_if_any(context);
  return plan;
}

}  // namespace ckconv
