// config.json bindings: every fixture's torchtitan-written hf/config.json resolves to the
// fixture's flavor.json config (the same native tensors, hence the same bytes), and the
// flags are refused where they disagree with it.
#include "families/model_resolution.h"

#include <doctest/doctest.h>

#include <fstream>

#include "core/error.h"

using namespace ckconv;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<std::pair<std::string, Shape>> tensors(const ModelConfig& config) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const NativeTensor& tensor : expected_native_tensors(build_family_rules(config)))
    out.emplace_back(tensor.name, tensor.shape);
  return out;
}

}  // namespace

TEST_CASE("each fixture's config.json resolves to its flavor.json config") {
  for (const char* fixture :
       {"llama3_tiny_gqa", "llama3_tiny_tied", "llama3_tiny_bf16", "qwen3_tiny", "qwen3_tiny_moe",
        "llama4_tiny", "gpt_oss_tiny", "deepseek_v3_tiny", "deepseek_v3_tiny_qlora"}) {
    CAPTURE(fixture);
    std::string dir = CKCONV_FIXTURES_DIR;  // appended in steps: GCC 12 warns on a + chain here
    dir += "/adapters/";
    dir += fixture;
    const nlohmann::json flavor = read_json(dir + "/flavor.json");
    const ModelConfig expected = load_model_config(flavor["family"], flavor["base_flavor"],
                                                   read_overrides_file(dir + "/flavor.json"));
    const ResolvedModel resolved =
        resolve_with_hf_config({}, read_json(dir + "/hf/config.json"), "config.json");
    CHECK(resolved.config.family() == expected.family());
    CHECK(tensors(resolved.config) == tensors(expected));
    // The flavor and overrides agree with config.json, so naming them changes nothing.
    const ResolvedModel named =
        resolve_with_hf_config({flavor["family"],
                                flavor["base_flavor"],
                                read_overrides_file(dir + "/flavor.json"),
                                {},
                                {}},
                               read_json(dir + "/hf/config.json"), "config.json");
    CHECK(tensors(named.config) == tensors(expected));
  }
}

TEST_CASE("config.json written by a family reads back to the same bound fields") {
  for (const std::string& family : builtin_family_names())
    for (const std::string& flavor : list_flavors(family)) {
      CAPTURE(family + "/" + flavor);
      const ModelConfig config = load_model_config(family, flavor, {});
      const ResolvedModel back =
          resolve_with_hf_config({}, build_family_rules(config).hf_config, "config.json");
      CHECK(back.config.family() == family);
      CHECK(back.warnings.empty());
      // config.json cannot show a fused native wqkv; small flavors compare their tensors.
      const bool fused = config.has("fused_qkv") && config.get_bool("fused_qkv");
      if (!fused && config.get_int("n_layers") < 8) CHECK(tensors(back.config) == tensors(config));
    }
}

TEST_CASE("a flavor that disagrees with config.json is refused, naming both fields") {
  const std::string dir = std::string(CKCONV_FIXTURES_DIR) + "/adapters/llama3_tiny_gqa";
  try {
    resolve_with_hf_config({"llama3", "debugmodel", {}, {}, {}}, read_json(dir + "/hf/config.json"),
                           "config.json");
    FAIL("expected a refusal");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    CHECK(std::string(error.what())
              .find("num_attention_heads 4 in config.json, but n_heads 16 "
                    "from flavor debugmodel") != std::string::npos);
  }
}
