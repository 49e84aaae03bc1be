// The planner's input checks: every kind of coverage problem is reported by key, all
// together, as kBadInput (exit 3); ignored HF buffers and non-model items are reported as
// skipped; the report names what to_hf drops and from_hf creates.
#include "pipeline/plan.h"

#include <doctest/doctest.h>

#include <string>

#include "core/error.h"
#include "families/family.h"

using namespace ckconv;

namespace {

Catalog native_catalog(const FamilyRules& rules) {
  Catalog catalog;
  catalog.format = CheckpointFormat::kSafetensors;
  catalog.path = "native.safetensors";
  for (const auto& tensor : expected_native_tensors(rules))
    catalog.tensors.push_back({tensor.name, DType::kBF16, tensor.shape, {}});
  return catalog;
}

Catalog hf_catalog(const FamilyRules& rules) {
  Catalog catalog;
  catalog.format = CheckpointFormat::kSafetensors;
  catalog.path = "hf";
  for (const auto& spec : expected_hf_tensors(rules))
    catalog.tensors.push_back({spec.name, DType::kBF16, spec.shape, {}});
  return catalog;
}

// The kBadInput message of planning `input`, checking the error kind and exit code.
std::string bad_input_message(Direction direction, const ModelConfig& config,
                              const FamilyRules& rules, const Catalog& input) {
  try {
    plan_conversion(direction, config, rules, input);
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    CHECK(error.exit_code() == 3);
    return error.what();
  }
  FAIL("planning did not fail");
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct Llama3 {
  ModelConfig config = load_model_config("llama3", "debugmodel", {});
  FamilyRules rules = build_family_rules(config);
};

}  // namespace

TEST_CASE("plan: a complete native checkpoint plans to_hf with no report lines") {
  Llama3 llama3;
  const TensorPlan plan =
      plan_conversion(Direction::kToHf, llama3.config, llama3.rules, native_catalog(llama3.rules));
  CHECK(plan.outputs.size() == expected_hf_tensors(llama3.rules).size());
  CHECK(plan.report.dropped.empty());
  CHECK(plan.report.created.empty());
}

TEST_CASE("plan: missing, unexpected and mis-shaped tensors are reported together by key") {
  Llama3 llama3;
  Catalog input = native_catalog(llama3.rules);
  input.tensors.erase(input.tensors.begin() + 1);  // layers.0.attention.qkv_linear.wq.weight
  input.tensors.push_back({"layers.0.extra.weight", DType::kBF16, {4}, {}});
  input.tensors[0].shape = {7, 7};  // tok_embeddings.weight
  const std::string message =
      bad_input_message(Direction::kToHf, llama3.config, llama3.rules, input);
  CHECK(contains(message, "does not match llama3/debugmodel (native side)"));
  CHECK(contains(message,
                 "missing tensors (1):\n    layers.0.attention.qkv_linear.wq.weight [256, 256]"));
  CHECK(contains(message, "unexpected tensors (1):\n    layers.0.extra.weight [4]"));
  CHECK(contains(
      message,
      "shape mismatches (1):\n    tok_embeddings.weight: expected [2048, 256], found [7, 7]"));
}

TEST_CASE("plan: unsupported dtypes, and float32-only buffers in another float type") {
  Llama3 llama3;
  Catalog input = native_catalog(llama3.rules);
  input.tensors[0].dtype = DType::kI32;
  std::string message = bad_input_message(Direction::kToHf, llama3.config, llama3.rules, input);
  CHECK(contains(
      message,
      "unsupported dtypes (1):\n    tok_embeddings.weight: I32 (expected F32, BF16, F16 or F64)"));

  // A last_save_model_only export casts expert_bias_E too: BF16/F16 widen exactly, F64 not.
  const ModelConfig config = load_model_config("qwen3", "debugmodel_moe", {});
  const FamilyRules rules = build_family_rules(config);
  Catalog moe = native_catalog(rules);
  CHECK_NOTHROW(plan_conversion(Direction::kToHf, config, rules, moe));
  for (CatalogTensor& tensor : moe.tensors)
    if (tensor.name == "layers.1.moe.expert_bias_E") tensor.dtype = DType::kF64;
  message = bad_input_message(Direction::kToHf, config, rules, moe);
  CHECK(contains(message,
                 "layers.1.moe.expert_bias_E: F64 (must be F32, or BF16/F16 widened exactly)"));
}

TEST_CASE("plan: a BF16 expert_bias_E (export_dtype) is written as its F32 HF tensor") {
  const ModelConfig config = load_model_config("deepseek_v3", "debugmodel", {});
  const FamilyRules rules = build_family_rules(config);
  const TensorPlan plan = plan_conversion(Direction::kToHf, config, rules, native_catalog(rules));
  bool found = false;
  for (const TensorRecipe& recipe : plan.recipes)
    if (recipe.name.find("e_score_correction_bias") != std::string::npos) {
      found = true;
      CHECK(recipe.dtype == DType::kF32);
      CHECK(recipe.cast_from == DType::kBF16);
    }
  CHECK(found);
}

TEST_CASE("plan: skipped keys are counted under their named rule") {
  Llama3 llama3;
  Catalog input = native_catalog(llama3.rules);
  for (const char* key :
       {"optimizer.state.norm.weight.exp_avg", "optimizer.param_groups.norm.weight.lr",
        "lr_scheduler.last_epoch", "dataloader.dp_rank_0", "train_state.step", "misc"})
    input.skipped.push_back({key, "not a tensor"});
  const TensorPlan plan = plan_conversion(Direction::kToHf, llama3.config, llama3.rules, input);
  CHECK(plan.report.skipped_by_rule ==
        std::vector<std::pair<std::string, size_t>>{{"training_state.optimizer", 2},
                                                    {"training_state.lr_scheduler", 1},
                                                    {"training_state.dataloader", 1},
                                                    {"training_state.train_state", 1},
                                                    {"non_tensor", 1}});
}

TEST_CASE("plan: duplicate keys are reported") {
  Llama3 llama3;
  Catalog input = native_catalog(llama3.rules);
  input.tensors.push_back(input.tensors.back());
  const std::string message =
      bad_input_message(Direction::kToHf, llama3.config, llama3.rules, input);
  CHECK(contains(message, "duplicate keys (1):\n    lm_head.weight"));
}

TEST_CASE("plan: HF buffers the family ignores are skipped, others are unexpected") {
  Llama3 llama3;
  Catalog input = hf_catalog(llama3.rules);
  input.tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::kF32, {32}, {}});
  input.skipped.push_back({"train_state.step", "not a tensor"});
  const TensorPlan plan = plan_conversion(Direction::kFromHf, llama3.config, llama3.rules, input);
  CHECK(plan.report.skipped ==
        std::vector<std::string>{
            "train_state.step: not a tensor",
            "model.layers.0.self_attn.rotary_emb.inv_freq: HF-only buffer, ignored by from_hf"});
  // Only from_hf ignores them: on the native side the same key is unexpected.
  Catalog native = native_catalog(llama3.rules);
  native.tensors.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::kF32, {32}, {}});
  CHECK(contains(bad_input_message(Direction::kToHf, llama3.config, llama3.rules, native),
                 "unexpected tensors (1):\n    model.layers.0.self_attn.rotary_emb.inv_freq [32]"));
}

TEST_CASE("plan: dropped, zero-filled and tied tensors are named in the report") {
  const ModelConfig config = load_model_config(
      "qwen3", "0.6B",
      {{"n_layers", "1"}, {"num_experts", "2"}, {"top_k", "1"}, {"moe_hidden_dim", "8"}});
  const FamilyRules rules = build_family_rules(config);
  Catalog native = native_catalog(rules);
  for (auto& tensor : native.tensors)
    if (tensor.name.find("expert_bias_E") != std::string::npos) tensor.dtype = DType::kF32;
  const TensorPlan to_hf = plan_conversion(Direction::kToHf, config, rules, native);
  CHECK(to_hf.report.dropped ==
        std::vector<std::string>{
            "layers.0.moe.expert_bias_E: no HF counterpart (re-created as zeros by from_hf)",
            "lm_head.weight: tied to tok_embeddings.weight, omitted (tie_word_embeddings)"});
  REQUIRE(to_hf.must_be_equal.size() == 1);
  CHECK(to_hf.must_be_equal[0].a->name == "lm_head.weight");
  CHECK(to_hf.must_be_equal[0].b->name == "tok_embeddings.weight");
  const TensorPlan from_hf = plan_conversion(Direction::kFromHf, config, rules, hf_catalog(rules));
  CHECK(from_hf.report.created ==
        std::vector<std::string>{
            "layers.0.moe.expert_bias_E: float32 zeros (HF has no such tensor)",
            "lm_head.weight: copy of model.embed_tokens.weight (tied embeddings)"});
  CHECK(from_hf.outputs.size() == expected_native_tensors(rules).size());
}

TEST_CASE("plan: a broken rule table is a kInternal error before any input check") {
  Llama3 llama3;
  FamilyRules rules = llama3.rules;
  rules.rules.back().hf.push_back("extra");  // a rename with two HF keys
  try {
    plan_conversion(Direction::kToHf, llama3.config, rules, native_catalog(llama3.rules));
    FAIL("no error");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kInternal);
    CHECK(contains(error.what(), "lm_head.weight"));
  }
}
