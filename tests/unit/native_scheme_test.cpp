// The native scheme layer: detection from key sets (one scheme, several with the same keys,
// mixed generations, no marker), every built-in flavor's rule table renamed into every scheme
// that has its family staying consistent, the names each scheme spells, the fused-SwiGLU
// (w13) read variant and the MTP blocks of 2026-08 deepseek_v3.
#include "families/native_scheme.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "error_checks.h"
#include "pipeline/plan.h"

using namespace ckconv;

namespace {

std::vector<std::string> native_names(const FamilyRules& rules) {
  std::vector<std::string> names;
  for (const auto& tensor : expected_native_tensors(rules)) names.push_back(tensor.name);
  return names;
}

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

FamilyRules rules_in(const char* family, const char* flavor, NativeScheme scheme,
                     const std::vector<Override>& overrides = {}) {
  const ModelConfig config = load_model_config(family, flavor, overrides);
  return build_native_rules(config, writing_layout(scheme, config));
}

}  // namespace

TEST_CASE("detect_native_scheme tells the generation from marker keys") {
  using enum NativeScheme;
  SchemeDetection v02 = detect_native_scheme(
      {"tok_embeddings.weight", "layers.0.attention.wk.weight", "output.weight",
       "layers.0.moe.experts.w1", "layers.0.moe.expert_bias"});
  // v0.1.0 saved the same names (only its llama4 MoE differs).
  CHECK(v02.candidates == std::vector<NativeScheme>{kV0_1, kV0_2});
  CHECK(has(v02.deciding_keys, "output.weight"));
  CHECK(reading_layout(v02, "qwen3", nullptr).scheme == kV0_2);
  CHECK(reading_layout(v02, "llama3", nullptr).scheme == kV0_2);

  SchemeDetection v01 =
      detect_native_scheme({"output.weight", "layers.0.moe.experts.w1",
                            "layers.0.moe.tokens_per_expert", "layers.0.moe.shared_expert.w1"});
  CHECK(v01.candidates == std::vector<NativeScheme>{kV0_1});
  CHECK(reading_layout(v01, "llama4", nullptr).scheme == kV0_1);
  CHECK_THROWS_KIND_WITH(reading_layout(v01, "qwen3", nullptr), ErrorKind::kBadInput,
                         "no qwen3 model");

  SchemeDetection dense = detect_native_scheme(
      {"lm_head.weight", "layers.0.attention.qkv_linear.wq.weight", "norm.weight"});
  CHECK(dense.candidates == std::vector<NativeScheme>{k2026_06, k2026_08});
  CHECK(reading_layout(dense, "llama3", nullptr).scheme == k2026_08);
  CHECK(reading_layout(dense, "llama4", nullptr).scheme == k2026_06);

  SchemeDetection fused =
      detect_native_scheme({"lm_head.weight", "layers.0.attention.qkv_linear.wqkv.weight",
                            "layers.0.feed_forward.w13.weight"});
  CHECK(fused.candidates == std::vector<NativeScheme>{k2026_06});
  CHECK(fused.fused_qkv);
  CHECK(fused.fused_swiglu_keys == std::set<std::string>{"layers.0.feed_forward.w13.weight"});

  SchemeDetection mtp =
      detect_native_scheme({"lm_head.weight", "layers.1.moe.routed_experts.inner_experts.w1_EFD",
                            "mtp_layers.0.eh_proj.weight"});
  CHECK(mtp.candidates == std::vector<NativeScheme>{k2026_08});

  CHECK_THROWS_KIND_WITH(
      detect_native_scheme({"output.weight", "layers.0.moe.routed_experts.inner_experts.w1_EFD"}),
      ErrorKind::kBadInput, "output.weight (v0.1, v0.2)");
  CHECK_THROWS_KIND_WITH(detect_native_scheme({"model.embed_tokens.weight"}), ErrorKind::kBadInput,
                         "no key tells");
  const SchemeDetection old_llama4 = detect_native_scheme(
      {"output.weight", "layers.0.attention.wq.weight", "layers.0.attention.wk.weight"});
  CHECK(reading_layout(old_llama4, "llama4", nullptr).scheme == kV0_2);
  CHECK_THROWS_KIND_WITH(reading_layout(mtp, "llama4", nullptr), ErrorKind::kBadInput,
                         "no llama4 model");
}

TEST_CASE("every built-in flavor's rules stay consistent in every scheme with its family") {
  for (const std::string& family : builtin_family_names())
    for (const std::string& flavor : list_flavors(family)) {
      // Every layer past the fourth repeats a pattern the first four already show (dense and
      // MoE layers, llama4's interleave, deepseek 671B's three dense layers); capping keeps
      // ~40 flavors x 3 schemes short under the sanitizers.
      std::vector<Override> capped;
      if (load_model_config(family, flavor, {}).get_int("n_layers") > 4)
        capped.push_back({"n_layers", "4"});
      const auto canonical =
          expected_hf_tensors(build_family_rules(load_model_config(family, flavor, capped)));
      for (NativeScheme scheme : all_native_schemes()) {
        if (!scheme_has_family(scheme, family)) continue;
        CAPTURE(family);
        CAPTURE(flavor);
        CAPTURE(native_scheme_name(scheme));
        const FamilyRules rules = rules_in(family.c_str(), flavor.c_str(), scheme, capped);
        CHECK_NOTHROW(check_family_rules(rules));
        // The HF side never depends on the scheme.
        CHECK(expected_hf_tensors(rules).size() == canonical.size());
      }
    }
}

TEST_CASE("each scheme spells the native keys as its torchtitan generation saves them") {
  using enum NativeScheme;
  const auto old = native_names(rules_in("qwen3", "debugmodel_moe", kV0_2));
  CHECK(has(old, "output.weight"));
  CHECK(has(old, "layers.0.attention.wq.weight"));
  CHECK(has(old, "layers.0.moe.experts.w1"));
  CHECK(has(old, "layers.0.moe.expert_bias"));
  const auto now = native_names(rules_in("qwen3", "debugmodel_moe", k2026_08));
  CHECK(has(now, "lm_head.weight"));
  CHECK(has(now, "layers.0.attention.qkv_linear.wq.weight"));
  CHECK(has(now, "layers.0.moe.routed_experts.inner_experts.w2_EDF"));
  CHECK(has(now, "layers.0.moe.expert_bias_E"));
  // deepseek_v3's MLA attention.wq never moved under qkv_linear.
  CHECK(has(native_names(rules_in("deepseek_v3", "debugmodel", kV0_2)),
            "layers.0.attention.wq.weight"));
  // Fused QKV is saved as wqkv only by 2026-06.
  CHECK(has(native_names(rules_in("llama3", "debugmodel_fused_qkv", k2026_06)),
            "layers.0.attention.qkv_linear.wqkv.weight"));
  CHECK(has(native_names(rules_in("llama3", "debugmodel_fused_qkv", k2026_08)),
            "layers.0.attention.qkv_linear.wq.weight"));
  CHECK_THROWS_KIND_WITH(rules_in("llama4", "debugmodel", k2026_08), ErrorKind::kUsage,
                         "2026-08 has no llama4");
  CHECK_THROWS_KIND_WITH(rules_in("deepseek_v3", "debugmodel", kV0_1), ErrorKind::kUsage,
                         "v0.1 has no deepseek_v3");
}

TEST_CASE("v0.1 stores llama4's experts x @ W and its one shared expert as [1, D, F]") {
  using enum NativeScheme;
  // llama3's v0.1.0 model-only export is v0.2's key set.
  CHECK(native_names(rules_in("llama3", "debugmodel", kV0_1)) ==
        native_names(rules_in("llama3", "debugmodel", kV0_2)));
  const FamilyRules rules = rules_in("llama4", "debugmodel", kV0_1);
  const int64_t experts = 8, dim = 256, hidden = 512;
  std::map<std::string, const Rule*> by_native;
  for (const Rule& rule : rules.rules)
    for (const NativeTensor& tensor : rule.native) by_native[tensor.name] = &rule;
  const Rule& w1 = *by_native.at("layers.1.moe.experts.w1");
  CHECK(w1.op == RuleOp::kConcatColumns);
  CHECK(w1.native[0].shape == Shape{experts, dim, hidden});
  CHECK(w1.native[1].name == "layers.1.moe.experts.w3");
  const Rule& w2 = *by_native.at("layers.1.moe.experts.w2");
  CHECK(w2.op == RuleOp::kRename);
  CHECK(w2.native[0].shape == Shape{experts, hidden, dim});
  const Rule& shared = *by_native.at("layers.1.moe.shared_expert.w2");
  CHECK(shared.op == RuleOp::kTransposeLast2);
  CHECK(shared.native[0].shape == Shape{1, hidden, dim});
  CHECK(shared.hf_shape == Shape{dim, hidden});
  CHECK(shared.hf[0] ==
        "language_model.model.layers.1.feed_forward.shared_expert.down_proj.weight");
  const Rule& counts = *by_native.at("layers.1.moe.tokens_per_expert");
  CHECK(counts.op == RuleOp::kDroppedZeros);
  CHECK(counts.native[0].float32_only);
  // torchtitan's order: the MoE's own buffers first, then experts, router, shared expert.
  const auto names = native_names(rules);
  const auto at = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) - names.begin();
  };
  CHECK(at("layers.1.moe.expert_bias") + 1 == at("layers.1.moe.tokens_per_expert"));
  CHECK(at("layers.1.moe.tokens_per_expert") < at("layers.1.moe.experts.w1"));
  CHECK(at("layers.1.moe.router.gate.weight") < at("layers.1.moe.shared_expert.w1"));
  // The HF side is the canonical one.
  const auto hf = expected_hf_tensors(rules);
  const auto v02_hf = expected_hf_tensors(rules_in("llama4", "debugmodel", kV0_2));
  REQUIRE(hf.size() == v02_hf.size());
  for (size_t i = 0; i < hf.size(); ++i) {
    CHECK(hf[i].name == v02_hf[i].name);
    CHECK(hf[i].shape == v02_hf[i].shape);
  }
}

TEST_CASE("a w13 read variant fuses exactly the listed SwiGLU pairs") {
  const ModelConfig config = load_model_config("deepseek_v3", "debugmodel", {});
  NativeLayout layout = writing_layout(NativeScheme::k2026_08, config);
  layout.fused_swiglu_keys = {"layers.0.feed_forward.w13.weight",
                              "layers.1.moe.routed_experts.inner_experts.w13"};
  const FamilyRules rules = build_native_rules(config, layout);
  CHECK_NOTHROW(check_family_rules(rules));
  const auto tensors = expected_native_tensors(rules);
  auto shape_of = [&](const std::string& name) {
    for (const auto& tensor : tensors)
      if (tensor.name == name) return tensor.shape;
    return Shape{};
  };
  CHECK(shape_of("layers.0.feed_forward.w13.weight") == Shape{1024, 2, 256});
  CHECK(shape_of("layers.1.moe.routed_experts.inner_experts.w13") == Shape{8, 256, 2, 256});
  CHECK(shape_of("layers.0.feed_forward.w1.weight").empty());
  CHECK(!shape_of("layers.2.moe.routed_experts.inner_experts.w1_EFD").empty());
  CHECK(!shape_of("layers.1.moe.shared_experts.w1.weight").empty());
}

TEST_CASE("2026-08 deepseek_v3 MTP blocks map to HF layers after the main ones") {
  const std::vector<Override> mtp = {parse_override("num_mtp_layers=1")};
  const FamilyRules rules = rules_in("deepseek_v3", "debugmodel", NativeScheme::k2026_08, mtp);
  CHECK_NOTHROW(check_family_rules(rules));
  const auto names = native_names(rules);
  CHECK(names.back() == "mtp_layers.0.moe.shared_experts.w3.weight");
  CHECK(has(names, "mtp_layers.0.moe.routed_experts.inner_experts.w1_EFD"));
  std::vector<std::string> hf;
  for (const auto& spec : expected_hf_tensors(rules)) hf.push_back(spec.name);
  CHECK(has(hf, "model.layers.6.eh_proj.weight"));
  CHECK(has(hf, "model.layers.6.shared_head.norm.weight"));
  CHECK(has(hf, "model.layers.6.mlp.experts.7.down_proj.weight"));
  // Schemes without MTP write none.
  const auto old = native_names(rules_in("deepseek_v3", "debugmodel", NativeScheme::k2026_06, mtp));
  CHECK(std::none_of(old.begin(), old.end(),
                     [](const std::string& name) { return name.rfind("mtp_layers.", 0) == 0; }));
}

TEST_CASE("deepseek_v3 config.json names YaRN only where the generation applies it") {
  // v0.2 and 2026-06 apply YaRN only beyond the original 4096-token context; 2026-08 always.
  for (const auto& [scheme, max_seq_len, yarn] :
       std::vector<std::tuple<NativeScheme, const char*, bool>>{
           {NativeScheme::kV0_2, "4096", false},
           {NativeScheme::kV0_2, "4097", true},
           {NativeScheme::k2026_06, "2048", false},
           {NativeScheme::k2026_06, "16384", true},
           {NativeScheme::k2026_08, "2048", true},
           {NativeScheme::k2026_08, "16384", true},
       }) {
    CAPTURE(native_scheme_name(scheme));
    CAPTURE(max_seq_len);
    const ModelConfig config =
        load_model_config("deepseek_v3", "debugmodel", {{"max_seq_len", max_seq_len}});
    const nlohmann::json hf = build_native_rules(config, writing_layout(scheme, config)).hf_config;
    CHECK(hf.contains("rope_scaling") == yarn);
    CHECK(hf["max_position_embeddings"] == std::stoi(max_seq_len));
    if (yarn) CHECK(hf["rope_scaling"]["rope_type"] == "yarn");
  }
}
