// Native detection: a catalog with exactly the native tensors of a flavor (shapes only)
// yields the flavor's family and, for every field detection reads, the flavor's value; the
// flavor is among those that match; llama3's head count is left open with its candidates.
#include "families/native_detection.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "core/error.h"
#include "families/model_aliases.h"
#include "families/model_resolution.h"

using namespace ckconv;

namespace {

Catalog catalog_of(const ModelConfig& config) {
  Catalog catalog;
  for (const NativeTensor& tensor : expected_native_tensors(build_family_rules(config)))
    catalog.tensors.push_back({tensor.name, DType::kF32, tensor.shape, {}});
  return catalog;
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
