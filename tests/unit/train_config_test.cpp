// --train-config: what a torchtitan training config says about the model (TOML job configs,
// JSON configs saved by a run), how it joins the flags, and the Python configs it refuses.
#include "families/train_config.h"

#include <doctest/doctest.h>

#include "core/error.h"
#include "error_checks.h"
#include "families/model_resolution.h"
#include "format_test_helpers.h"

using namespace ckconv;

namespace {

const std::filesystem::path kConfigs = test::kFixtures / "train_configs";

ModelRequest request_of(const std::string& family, const std::string& flavor,
                        std::vector<Override> overrides = {}) {
  ModelRequest request;
  request.family = family;
  request.flavor = flavor;
  request.overrides = std::move(overrides);
  return request;
}

}  // namespace

TEST_CASE("train config: the model of a TOML job config and of a saved JSON config") {
  const TrainConfig toml = read_train_config(kConfigs / "llama3_debugmodel.toml");
  CHECK(toml.kind == "toml");
  CHECK(toml.family == "llama3");
  CHECK(toml.flavor == "debugmodel");
  CHECK(toml.flavor_field == "model.flavor");
  CHECK(toml.export_dtype == std::optional<std::string>("float32"));
  CHECK(toml.hf_assets_path == "./tests/assets/tokenizer");
  CHECK(!export_cast("float32"));
  const TrainConfig json = read_train_config(kConfigs / "llama3_debugmodel_saved.json");
  CHECK(json.kind == "json");
  CHECK(json.family == "llama3");
  CHECK(json.flavor == "debugmodel");
  CHECK(json.family_field == "model_spec.name");
  CHECK(export_cast(*json.export_dtype) == DType::kBF16);
  CHECK(export_cast("float16") == DType::kF16);
}

TEST_CASE("train config: Python configs, missing or mistyped fields are refused") {
  CHECK_THROWS_KIND_WITH(read_train_config(kConfigs / "config_registry.py"), ErrorKind::kUsage,
                         "cannot execute");
  test::TempDir dir;
  const auto refused = [&](const std::string& text, ErrorKind kind, const std::string& fragment) {
    test::write_file(dir / "c.toml", text);
    CHECK_THROWS_KIND_WITH(read_train_config(dir / "c.toml"), kind, fragment);
  };
  // A config_registry.py under another name is still recognised as Python.
  refused("import torch\n\ndef f():\n    return 1\n", ErrorKind::kUsage, "cannot execute");
  refused("[model]\nname = \"llama3\"\n", ErrorKind::kBadInput, "names no model");
  refused("[model]\nname = \"llama3\"\nflavor = 8\n", ErrorKind::kBadInput,
          "model.flavor must be a string, found 8");
  refused("[model]\nname = \"llama3\"\nflavor = \"8B\"\n[checkpoint]\nexport_dtype = \"fp8\"\n",
          ErrorKind::kBadInput, "export_dtype \"fp8\" is none of");
  refused("[model]\nname = {x = 1}\n", ErrorKind::kBadInput, "c.toml:2: inline tables");
  refused("{\"model_spec\": {\"name\": \"llama3\"}}", ErrorKind::kBadInput,
          "model_spec.name and model_spec.flavor");
}

TEST_CASE("train config: agrees with the flags or names the field and both values") {
  const TrainConfig train = read_train_config(kConfigs / "llama3_debugmodel.toml");
  std::vector<std::string> warnings;
  const ModelRequest joined = with_train_config(request_of("", ""), train, warnings);
  CHECK(joined.family == "llama3");
  CHECK(joined.flavor == "debugmodel");
  CHECK(joined.flavor_origin == "train-config");
  CHECK(with_train_config(request_of("llama3", "debugmodel", {{"n_layers", "6"}}), train, warnings)
            .flavor == "debugmodel");
  CHECK(warnings.empty());
  CHECK_THROWS_KIND_WITH(with_train_config(request_of("qwen3", ""), train, warnings),
                         ErrorKind::kBadInput, "model.name \"llama3\" in ");
  CHECK_THROWS_KIND_WITH(with_train_config(request_of("", "8B"), train, warnings),
                         ErrorKind::kBadInput, "but --flavor 8B");
  CHECK_THROWS_KIND_WITH(
      with_train_config(request_of("", "", {{"n_layers", "2"}}), train, warnings),
      ErrorKind::kBadInput, "n_layers 2 from --set, but 6 in flavor debugmodel");
  with_train_config(request_of("", "", {{"rope_theta", "10000.0"}}), train, warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("rope_theta 10000.0 from --set") != std::string::npos);

  const ResolvedModel model = resolve_from_flags(joined);
  CHECK(model.field_sources["n_layers"] == "train-config");
  CHECK(model.config.get_int("dim") == 256);
}

TEST_CASE("train config: a model name no family of this build converts") {
  test::TempDir dir;
  test::write_file(dir / "flux.toml", "[model]\nname = \"flux\"\nflavor = \"flux-dev\"\n");
  std::vector<std::string> warnings;
  CHECK_THROWS_KIND_WITH(
      with_train_config(request_of("", ""), read_train_config(dir / "flux.toml"), warnings),
      ErrorKind::kBadInput, "model.name \"flux\" is no family this build converts");
}
