// Flavor resolution: defaults, flavor fields, overrides and derived fields (docs/mappings.md
// llama3 and qwen3 flavor tables), and the native key lists of those families.
#include <doctest/doctest.h>

#include "core/error.h"
#include "error_checks.h"
#include "families/family.h"
#include "pipeline/plan.h"

using namespace ckconv;

TEST_CASE("llama3 FFN hidden dims follow compute_ffn_hidden_dim") {
  CHECK(load_model_config("llama3", "debugmodel", {}).get_int("hidden_dim") == 768);
  CHECK(load_model_config("llama3", "1B", {}).get_int("hidden_dim") == 8192);
  CHECK(load_model_config("llama3", "3B", {}).get_int("hidden_dim") == 8192);
  CHECK(load_model_config("llama3", "8B", {}).get_int("hidden_dim") == 14336);
  CHECK(load_model_config("llama3", "70B", {}).get_int("hidden_dim") == 28672);
  CHECK(load_model_config("llama3", "405B", {}).get_int("hidden_dim") == 53248);
  ModelConfig config = load_model_config("llama3", "8B", {{"n_layers", "2"}});
  CHECK(config.get_int("head_dim") == 128);
  CHECK(config.get_int("n_kv_heads") == 8);
  CHECK(config.get_int("n_layers") == 2);
}

TEST_CASE("native key counts of the debug flavors match docs/mappings.md") {
  auto native_count = [](const char* family, const char* flavor) {
    return expected_native_tensors(build_family_rules(load_model_config(family, flavor, {})))
        .size();
  };
  CHECK(native_count("llama3", "debugmodel") == 57);
  CHECK(native_count("llama3", "debugmodel_fused_qkv") == 45);
  CHECK(native_count("qwen3", "debugmodel") == 91);
  CHECK(native_count("qwen3", "debugmodel_fused_qkv") == 75);
  CHECK(native_count("qwen3", "debugmodel_moe") == 107);
  auto hf_count = [](const char* family, const char* flavor) {
    return expected_hf_tensors(build_family_rules(load_model_config(family, flavor, {}))).size();
  };
  CHECK(hf_count("llama3", "debugmodel") == 57);
  CHECK(hf_count("llama3", "debugmodel_fused_qkv") == 57);
  CHECK(hf_count("qwen3", "debugmodel") == 90);
  CHECK(hf_count("qwen3", "debugmodel_fused_qkv") == 90);
  CHECK(hf_count("qwen3", "debugmodel_moe") == 1611);
}

TEST_CASE("overrides are checked by name and type") {
  CHECK_THROWS_KIND(load_model_config("llama3", "8B", {{"n_layer", "2"}}), ErrorKind::kUsage);
  CHECK_THROWS_KIND(load_model_config("llama3", "8B", {{"n_layers", "2.5"}}), ErrorKind::kUsage);
  CHECK_THROWS_KIND(load_model_config("llama3", "8B", {{"enable_weight_tying", "1"}}),
                    ErrorKind::kUsage);
  CHECK_THROWS_KIND(load_model_config("llama3", "nope", {}), ErrorKind::kUsage);
  CHECK_THROWS_KIND(load_model_config("nope", "8B", {}), ErrorKind::kUsage);
  CHECK_THROWS_KIND(parse_override("novalue"), ErrorKind::kUsage);
  ModelConfig config =
      load_model_config("qwen3", "debugmodel_moe", {{"load_balance_coeff", "null"}});
  for (const auto& tensor : expected_native_tensors(build_family_rules(config)))
    CHECK(tensor.name.find("expert_bias_E") == std::string::npos);
}
