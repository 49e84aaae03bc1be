#include "pipeline/plan.h"

#include <functional>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/float_convert.h"
#include "formats/training_state.h"
#include "pipeline/rule_ops.h"

namespace ckconv {
namespace {

// Both sides of a flavor, derived from its rule table.
struct FlavorSides {
  std::vector<NativeTensor> native;                   // torchtitan's state_dict order
  std::vector<OutputTensorSpec> hf;                   // to_hf output order
  std::map<std::string, std::string> native_writing;  // HF key -> native key of its rule
};

std::string first_key(const Rule& rule) {
  if (!rule.native.empty()) return rule.native[0].name;
  return rule.hf.empty() ? std::string("(no keys)") : rule.hf[0];
}

// Every native key consumed once and listed once in the native order.
std::map<std::string, const NativeTensor*> check_native_keys(const FamilyRules& table) {
  auto bug = [&](const std::string& message) {
    fail(ErrorKind::kInternal, table.family + " rules: " + message);
  };
  std::map<std::string, const NativeTensor*> natives;
  for (const Rule& rule : table.rules) {
    const std::string problem = rule_problem(rule);
    if (!problem.empty())
      bug(rule_op_name(rule.op) + " rule of '" + first_key(rule) + "' " + problem);
    for (const NativeTensor& tensor : rule.native)
      if (!natives.emplace(tensor.name, &tensor).second)
        bug("native key '" + tensor.name + "' is consumed by more than one rule");
  }
  std::set<std::string> ordered;
  for (const std::string& name : table.native_order) {
    if (!natives.count(name)) bug("the native order names '" + name + "', which no rule consumes");
    if (!ordered.insert(name).second) bug("the native order names '" + name + "' twice");
  }
  for (const auto& [name, tensor] : natives)
    if (!ordered.count(name)) bug("native key '" + name + "' is missing from the native order");
  return natives;
}

void validate_against(const TensorRecipe& recipe,
                      const std::function<Shape(const std::string&)>& shape_of) {
  std::vector<Shape> shapes;
  for (const auto& source : recipe.sources) shapes.push_back(shape_of(source));
  validate_recipe(recipe, shapes);
}

// check_family_rules, returning both sides: to_hf on the flavor's native shapes gives the HF
// side, from_hf on those HF shapes must give the native shapes back.
FlavorSides check_rules(const FamilyRules& table) {
  auto bug = [&](const std::string& message) {
    fail(ErrorKind::kInternal, table.family + " rules: " + message);
  };
  const std::map<std::string, const NativeTensor*> natives = check_native_keys(table);
  FlavorSides sides;
  sides.native = expected_native_tensors(table);
  auto native_shape = [&](const std::string& name) { return natives.at(name)->shape; };
  const RuleInputs native_inputs{
      [&](const std::string& name) { return TensorInfo{native_shape(name)}; }, {}};
  std::map<std::string, Shape> hf_shapes;
  for (const Rule& rule : table.rules) {
    if (rule_refers_to_hf(rule)) continue;
    for (const TensorRecipe& recipe : rule_to_hf(rule, native_inputs).recipes) {
      validate_against(recipe, native_shape);
      if (!sides.native_writing.emplace(recipe.name, rule.native[0].name).second)
        bug("HF key '" + recipe.name + "' is written by more than one rule");
      hf_shapes[recipe.name] = recipe.shape;
      sides.hf.push_back({recipe.name, recipe.dtype, recipe.shape});
    }
  }
  auto hf_shape = [&](const std::string& name) {
    auto found = hf_shapes.find(name);
    if (found == hf_shapes.end())
      bug("HF key '" + name + "' is read by from_hf but no rule writes it");
    return found->second;
  };
  const RuleInputs hf_inputs{[&](const std::string& name) { return TensorInfo{hf_shape(name)}; },
                             {}};
  std::set<std::string> written;
  for (const Rule& rule : table.rules)
    for (const TensorRecipe& recipe : rule_from_hf(rule, hf_inputs).recipes) {
      validate_against(recipe, hf_shape);
      auto native = natives.find(recipe.name);
      if (native == natives.end() || native->second->shape != recipe.shape)
        bug("from_hf of the " + rule_op_name(rule.op) + " rule of '" + first_key(rule) +
            "' writes '" + recipe.name + "' " + shape_to_string(recipe.shape) +
            ", not a native tensor of the flavor");
      if (!written.insert(recipe.name).second) bug("from_hf writes '" + recipe.name + "' twice");
    }
  for (const auto& [name, tensor] : natives)
    if (!written.count(name)) bug("from_hf does not write native key '" + name + "'");
  for (const Rule& rule : table.rules) {
    if (rule.op != RuleOp::kDroppedHf) continue;
    if (hf_shapes.count(rule.hf[0])) bug("dropped HF key '" + rule.hf[0] + "' is also written");
    if (!rule.equal_to.empty() && !hf_shapes.count(rule.equal_to))
      bug("dropped HF key '" + rule.hf[0] + "' copies '" + rule.equal_to +
          "', which no rule writes");
  }
  return sides;
}

bool allowed_dtype(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kBF16 || dtype == DType::kF16 ||
         dtype == DType::kF64;
}

// Collects problems and throws one kBadInput error listing them by category.
class Problems {
 public:
  void add(const std::string& category, const std::string& item) {
    items_[category].push_back(item);
  }
  void throw_if_any(const std::string& context) const {
    if (items_.empty()) return;
    std::string message = context + ":";
    for (const auto& [category, list] : items_) {
      message += "\n  " + category + " (" + std::to_string(list.size()) + "):";
      for (size_t i = 0; i < list.size() && i < 20; ++i) message += "\n    " + list[i];
      if (list.size() > 20)
        message += "\n    ... and " + std::to_string(list.size() - 20) +
                   " more (--verbose or --json lists all)";
    }
    throw Error(ErrorKind::kBadInput, message, items_);
  }

 private:
  std::map<std::string, std::vector<std::string>> items_;
};

using InputIndex = std::map<std::string, const CatalogTensor*>;

// from_hf: the HF-only tensors the table drops (kDroppedHf) are optional as a whole: an input
// holds all of them (each checked like an expected tensor) or none.
std::vector<OutputTensorSpec> present_dropped_hf(const FamilyRules& table,
                                                 const InputIndex& inputs) {
  std::vector<OutputTensorSpec> dropped;
  bool any_present = false;
  for (const Rule& rule : table.rules) {
    if (rule.op != RuleOp::kDroppedHf) continue;
    dropped.push_back({rule.hf[0], DType::kF32, rule.hf_shape});
    any_present = any_present || inputs.count(rule.hf[0]) > 0;
  }
  if (!any_present) dropped.clear();
  return dropped;
}

}  // namespace

void ConversionReport::add_skipped(const std::string& key, const std::string& why,
                                   const std::string& rule) {
  skipped.push_back(key + ": " + why);
  for (auto& [name, count] : skipped_by_rule)
    if (name == rule) {
      ++count;
      return;
    }
  skipped_by_rule.emplace_back(rule, 1);
}

namespace {

// The input checkpoint against this direction's expected inputs: duplicate, missing,
// mis-shaped, unsupported-dtype and unexpected keys go to `problems`; HF keys the family
// ignores and the catalog's non-model items go to the report as skipped.
InputIndex check_input_coverage(Direction direction, const FamilyRules& table,
                                const FlavorSides& sides, const Catalog& input,
                                ConversionReport& report, Problems& problems) {
  InputIndex inputs;
  for (const auto& item : input.skipped)
    report.add_skipped(item.name, item.reason, skip_rule_for(item.name, "non_tensor"));
  for (const auto& tensor : input.tensors)
    if (!inputs.emplace(tensor.name, &tensor).second) problems.add("duplicate keys", tensor.name);

  std::vector<OutputTensorSpec> expected = sides.hf;
  std::set<std::string> float32_only;
  std::vector<std::regex> ignored;
  if (direction == Direction::kToHf) {
    expected.clear();
    for (const auto& tensor : sides.native) {
      expected.push_back({tensor.name, DType::kF32, tensor.shape});
      if (tensor.float32_only) float32_only.insert(tensor.name);
    }
  } else {
    for (const auto& pattern : table.hf_ignored_patterns) ignored.emplace_back(pattern);
    for (auto& spec : present_dropped_hf(table, inputs)) expected.push_back(std::move(spec));
  }

  std::set<std::string> expected_names;
  for (const auto& spec : expected) {
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
    // A float32-only tensor may come narrower (a last_save_model_only export cast every
    // floating tensor to export_dtype); BF16/F16 widen to F32 exactly, F64 would round.
    const bool must_be_f32 = float32_only.count(spec.name) > 0;
    const bool widens_exactly =
        tensor.dtype == DType::kF32 || tensor.dtype == DType::kBF16 || tensor.dtype == DType::kF16;
    if (!allowed_dtype(tensor.dtype) || (must_be_f32 && !widens_exactly))
      problems.add("unsupported dtypes",
                   spec.name + ": " + std::string(dtype_name(tensor.dtype)) +
                       (must_be_f32 ? " (must be F32, or BF16/F16 widened exactly)"
                                    : " (expected F32, BF16, F16 or F64)"));
  }
  for (const auto& tensor : input.tensors) {
    if (expected_names.count(tensor.name)) continue;
    bool is_ignored = false;
    for (const auto& pattern : ignored)
      is_ignored = is_ignored || std::regex_match(tensor.name, pattern);
    if (is_ignored)
      report.add_skipped(tensor.name, "HF-only buffer, ignored by from_hf", "hf_ignored");
    else
      problems.add("unexpected tensors", tensor.name + " " + shape_to_string(tensor.shape));
  }
  return inputs;
}

// The output dtype of `recipe` (whose dtype is its inputs'): float32 for the tensors torchtitan
// keeps in float32 (exactly widened from a narrower input), else the requested dtype for
// floating inputs, else bf16 for dequantized inputs, else the input's.
void set_output_dtype(TensorRecipe& recipe, bool float32_only, const CastOptions& cast) {
  DType target = recipe.dtype;
  bool dequantized = false;
  for (const std::string& source : recipe.sources)
    dequantized = dequantized || cast.dequantized.count(source) > 0;
  if (float32_only)
    target = DType::kF32;
  else if (cast.dtype && is_castable_float(recipe.dtype))
    target = *cast.dtype;
  else if (dequantized)
    target = cast.dequantized_dtype;
  if (target == recipe.dtype) return;
  recipe.cast_from = recipe.dtype;
  recipe.dtype = target;
}

// Every output tensor as a recipe over the (covered) inputs, through each rule's op; native
// outputs in torchtitan's order.
void build_recipes(Direction direction, const FamilyRules& table, const FlavorSides& sides,
                   const InputIndex& inputs, const CastOptions& cast, TensorPlan& plan,
                   Problems& problems) {
  const RuleInputs rule_inputs{[&](const std::string& name) {
                                 return TensorInfo{inputs.at(name)->shape, inputs.at(name)->dtype};
                               },
                               [&](const std::string& hf) { return sides.native_writing.at(hf); }};
  std::set<std::string> float32_only;  // outputs kept in float32 whatever the input dtype
  for (const Rule& rule : table.rules)
    for (const NativeTensor& tensor : rule.native)
      if (tensor.float32_only) {
        float32_only.insert(tensor.name);
        for (const std::string& hf : rule.hf) float32_only.insert(hf);
      }
  auto add_recipe = [&](TensorRecipe recipe) {
    set_output_dtype(recipe, float32_only.count(recipe.name) > 0, cast);
    std::vector<const CatalogTensor*> sources;
    std::vector<Shape> source_shapes;
    for (const auto& name : recipe.sources) {
      const CatalogTensor* source = inputs.at(name);
      sources.push_back(source);
      source_shapes.push_back(source->shape);
      if (source->dtype != piece_dtype(recipe))
        problems.add("mixed dtypes", recipe.name + " combines " + recipe.sources[0] + " (" +
                                         std::string(dtype_name(piece_dtype(recipe))) + ") and " +
                                         name + " (" + std::string(dtype_name(source->dtype)) +
                                         ")");
    }
    validate_recipe(recipe, source_shapes);
    plan.outputs.push_back({recipe.name, recipe.dtype, recipe.shape});
    plan.sources.push_back(std::move(sources));
    plan.recipes.push_back(std::move(recipe));
  };
  std::map<std::string, TensorRecipe> by_native;
  for (const Rule& rule : table.rules) {
    if (rule.op == RuleOp::kDroppedHf && !inputs.count(rule.hf[0])) continue;
    RuleStep step = direction == Direction::kToHf ? rule_to_hf(rule, rule_inputs)
                                                  : rule_from_hf(rule, rule_inputs);
    for (auto& line : step.dropped) plan.report.dropped.push_back(std::move(line));
    for (auto& line : step.created) plan.report.created.push_back(std::move(line));
    for (const auto& equal : step.must_be_equal)
      plan.must_be_equal.push_back({inputs.at(equal.a), inputs.at(equal.b), equal.if_different});
    for (TensorRecipe& recipe : step.recipes) {
      if (direction == Direction::kToHf)
        add_recipe(std::move(recipe));
      else
        by_native[recipe.name] = std::move(recipe);
    }
  }
  if (direction == Direction::kToHf) return;
  for (const auto& tensor : sides.native) {
    TensorRecipe& recipe = by_native.at(tensor.name);
    if (recipe.shape != tensor.shape)
      fail(ErrorKind::kInternal, "from_hf recipe for '" + tensor.name + "' has shape " +
                                     shape_to_string(recipe.shape) + ", flavor says " +
                                     shape_to_string(tensor.shape));
    add_recipe(std::move(recipe));
  }
}

}  // namespace

std::vector<OutputTensorSpec> expected_hf_tensors(const FamilyRules& rules) {
  return check_rules(rules).hf;
}

void check_family_rules(const FamilyRules& rules) {
  check_rules(rules);
}

TensorPlan plan_conversion(Direction direction, const ModelConfig& config, const FamilyRules& rules,
                           const Catalog& input, const CastOptions& cast) {
  const FlavorSides sides = check_rules(rules);
  const std::string side = direction == Direction::kToHf ? "native" : "HF";
  const std::string context = "input " + input.path.string() + " does not match " +
                              config.family() + "/" + config.flavor() + " (" + side + " side)";
  TensorPlan plan;
  Problems problems;
  const InputIndex inputs =
      check_input_coverage(direction, rules, sides, input, plan.report, problems);
  problems.throw_if_any(context);
  build_recipes(direction, rules, sides, inputs, cast, plan, problems);
  problems.throw_if_any(context);
  return plan;
}

}  // namespace ckconv
