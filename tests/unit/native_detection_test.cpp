// Native detection: a catalog with exactly the native tensors of a flavor (shapes only)
// yields the flavor's family and, for every field detection reads, the flavor's value; the
// flavor is among those that match; llama3's head count is left open with its candidates.
#include "families/native_detection.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "families/model_aliases.h"
#include "families/model_resolution.h"
#include "families/native_scheme.h"

using namespace ckconv;

namespace {

Catalog catalog_of(const ModelConfig& config) {
  Catalog catalog;
  for (const NativeTensor& tensor : expected_native_tensors(build_family_rules(config)))
    catalog.tensors.push_back({tensor.name, DType::kF32, tensor.shape, {}});
  return catalog;
}

// The native tensors of `config` as torchtitan's generation `layout` names them.
Catalog catalog_of(const ModelConfig& config, const NativeLayout& layout) {
  Catalog catalog;
  for (const NativeTensor& tensor : expected_native_tensors(build_native_rules(config, layout)))
    catalog.tensors.push_back({tensor.name, DType::kF32, tensor.shape, {}});
  return catalog;
}

// Every w13 name of the fused SwiGLU pairs `layout`'s tensors would have.
std::set<std::string> w13_names(const ModelConfig& config, const NativeLayout& layout) {
  std::set<std::string> names;
  for (const CatalogTensor& tensor : catalog_of(config, layout).tensors) {
    const std::string& name = tensor.name;
    for (const std::string w1 : {".w1.weight", ".w1_EFD"})
      if (name.size() > w1.size() && name.compare(name.size() - w1.size(), w1.size(), w1) == 0)
        names.insert(name.substr(0, name.size() - w1.size()) +
                     (w1 == ".w1_EFD" ? ".w13" : ".w13.weight"));
  }
  return names;
}

// Detection reads the same fields from `layout`'s names as from the canonical ones: each equal
// to the config's (fused_qkv: to the layout's, as v0.2 and 2026-08 save a fused QKV split),
// and every shape-determined size present.
void check_detected(const ModelConfig& config, const NativeLayout& layout) {
  const bool tied = config.has("enable_weight_tying") && config.get_bool("enable_weight_tying");
  const std::optional<DetectedModel> detected =
      detect_native_model(catalog_of(config, layout),
                          [tied](const CatalogTensor&, const CatalogTensor&) { return tied; });
  REQUIRE(detected.has_value());
  CHECK(detected->family == config.family());
  for (const auto& field : detected->fields.items()) {
    CAPTURE(field.key());
    if (field.key() == "fused_qkv")
      CHECK(field.value() == layout.fused_qkv);
    else
      CHECK(same_field_value(config.fields()[field.key()], field.value()));
  }
  const bool moe = config.has("num_experts") &&
                   config.fields()["num_experts"].is_number_integer() &&
                   config.get_int("num_experts") > 0;
  std::vector<std::string> shown = {"moe_hidden_dim", "dense_hidden_dim",
                                    "shared_experts_hidden_dim", "num_mtp_layers"};
  shown.push_back(moe ? "num_experts" : "hidden_dim");
  for (const std::string& name : shown)
    if (config.has(name) && config.fields()[name].is_number_integer() && config.get_int(name) > 0) {
      CAPTURE(name);
      CHECK(detected->fields.contains(name));
    }
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

}  // namespace

TEST_CASE("every built-in flavor is detected from its own tensors") {
  for (const std::string& family : builtin_family_names())
    for (const std::string& flavor : list_flavors(family)) {
      CAPTURE(family);
      CAPTURE(flavor);
      const ModelConfig config = load_model_config(family, flavor, {});
      const bool tied = config.has("enable_weight_tying") && config.get_bool("enable_weight_tying");
      const std::optional<DetectedModel> detected = detect_native_model(
          catalog_of(config), [tied](const CatalogTensor&, const CatalogTensor&) { return tied; });
      REQUIRE(detected.has_value());
      CHECK(detected->family == family);
      for (const auto& field : detected->fields.items()) {
        CAPTURE(field.key());
        CHECK(same_field_value(config.fields()[field.key()], field.value()));
      }
      CHECK(contains(flavors_matching(*detected), flavor));
      if (!detected->fields.contains("n_heads")) {
        CHECK(std::find(detected->head_candidates.begin(), detected->head_candidates.end(),
                        config.get_int("n_heads")) != detected->head_candidates.end());
      }
    }
}

TEST_CASE("llama3 heads: every even split into whole kv heads is a candidate") {
  const ModelConfig config =
      load_model_config("llama3", "debugmodel",
                        {{"dim", "64"}, {"n_heads", "4"}, {"n_kv_heads", "2"}, {"n_layers", "2"}});
  const std::optional<DetectedModel> detected = detect_native_model(catalog_of(config), {});
  REQUIRE(detected.has_value());
  CHECK(detected->q_width == 64);
  CHECK(detected->kv_width == 32);
  CHECK(detected->head_candidates == std::vector<int64_t>{2, 4, 8, 16, 32});
  CHECK(head_fields(*detected, 4) ==
        nlohmann::json{{"n_heads", 4}, {"n_kv_heads", 2}, {"head_dim", 16}});
  CHECK_FALSE(head_fields(*detected, 3).has_value());
  CHECK(describe_detected(*detected).find("dim 64, 2 layers") != std::string::npos);
}

TEST_CASE("resolve_detected refuses to guess an open head count") {
  const ModelConfig config = load_model_config("llama3", "debugmodel", {{"dim", "64"}});
  const std::optional<DetectedModel> detected = detect_native_model(catalog_of(config), {});
  REQUIRE(detected.has_value());
  ModelRequest request;
  CHECK_THROWS_AS(resolve_detected(request, *detected), Error);
  request.overrides = {{"n_heads", "4"}};
  const ResolvedModel model = resolve_detected(request, *detected);
  CHECK(model.config.get_int("head_dim") == 16);
  CHECK(model.field_sources["n_heads"] == "--set");
  CHECK(model.field_sources["dim"] == "detected");
}

TEST_CASE("HF names resolve to family and flavor") {
  CHECK(resolve_model_alias("Qwen3-30B-A3B")->flavor == "30B-A3B");
  CHECK(resolve_model_alias("qwen3_moe")->family == "qwen3");
  CHECK(resolve_model_alias("meta-llama/Llama-3.1-8B")->flavor == "8B");
  CHECK(resolve_model_alias("deepseek-v3")->family == "deepseek_v3");
  CHECK(resolve_model_alias("gpt-oss-20b")->flavor == "20b");
  CHECK_FALSE(resolve_model_alias("mistral").has_value());
}

TEST_CASE("every torchtitan generation's names are detected alike") {
  for (const std::string& family : builtin_family_names())
    for (const std::string& flavor : list_flavors(family))
      for (NativeScheme scheme : all_native_schemes()) {
        if (flavor.rfind("debugmodel", 0) != 0 || !scheme_has_family(scheme, family)) continue;
        CAPTURE(flavor);
        CAPTURE(native_scheme_name(scheme));
        std::vector<Override> overrides;
        if (family == "deepseek_v3" && scheme_has_mtp(scheme))
          overrides = {{"num_mtp_layers", "1"}};
        const ModelConfig config = load_model_config(family, flavor, overrides);
        NativeLayout layout = writing_layout(scheme, config);
        check_detected(config, layout);
        if (scheme != NativeScheme::k2026_06) continue;
        layout.fused_swiglu_keys = w13_names(config, layout);  // 2026-06's fused SwiGLU
        check_detected(config, layout);
      }
}
