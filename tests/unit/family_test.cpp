// Families: the key lists each family derives from its rule table for real flavors, the rule
// tables' internal consistency for every built-in flavor, and a toy family defined entirely
// here (config, rules, registry row) planned and converted both ways, which is all a new
// family needs.
#include "families/family.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "core/error.h"
#include "error_checks.h"
#include "families/rule_builder.h"
#include "format_test_helpers.h"
#include "formats/checkpoint_reader.h"
#include "pipeline/convert.h"
#include "pipeline/plan.h"

using namespace ckconv;
using ckconv::test::TempDir;

namespace {

FamilyRules rules_of(const char* family, const char* flavor) {
  return build_family_rules(load_model_config(family, flavor, {}));
}

std::map<std::string, Shape> native_shapes(const FamilyRules& rules) {
  std::map<std::string, Shape> out;
  for (const auto& tensor : expected_native_tensors(rules)) out[tensor.name] = tensor.shape;
  return out;
}

std::map<std::string, Shape> hf_shapes(const FamilyRules& rules) {
  std::map<std::string, Shape> out;
  for (const auto& spec : expected_hf_tensors(rules)) out[spec.name] = spec.shape;
  return out;
}

std::vector<std::string> native_names(const FamilyRules& rules) {
  std::vector<std::string> out;
  for (const auto& tensor : expected_native_tensors(rules)) out.push_back(tensor.name);
  return out;
}

size_t index_of(const std::vector<std::string>& names, const std::string& name) {
  return static_cast<size_t>(std::find(names.begin(), names.end(), name) - names.begin());
}

}  // namespace

// Counts from each family's structure: embeddings + per-layer keys + final norm and output.
TEST_CASE("llama3 8B: 1 + 32 x 9 + 2 keys on both sides") {
  const FamilyRules rules = rules_of("llama3", "8B");
  const auto native = native_shapes(rules);
  const auto hf = hf_shapes(rules);
  CHECK(native.size() == 1 + 32 * 9 + 2);
  CHECK(hf.size() == 1 + 32 * 9 + 2);
  CHECK(native.at("layers.0.attention.qkv_linear.wk.weight") == Shape{1024, 4096});
  CHECK(native.at("layers.31.feed_forward.w2.weight") == Shape{4096, 14336});
  CHECK(hf.at("model.layers.31.mlp.down_proj.weight") == Shape{4096, 14336});
  CHECK(hf.at("lm_head.weight") == Shape{128256, 4096});
}

TEST_CASE("qwen3 30B-A3B: 48 MoE layers of 128 experts, expert_bias_E dropped") {
  const FamilyRules rules = rules_of("qwen3", "30B-A3B");
  // Per layer: q, k, v, o, q_norm, k_norm, two layer norms, router; native adds
  // expert_bias_E and three stacked expert tensors, HF has 128 x 3 per-expert tensors.
  CHECK(native_shapes(rules).size() == 1 + 48 * (9 + 1 + 3) + 2);
  CHECK(hf_shapes(rules).size() == 1 + 48 * (9 + 128 * 3) + 2);
  CHECK(native_shapes(rules).at("layers.0.moe.experts.w1_EFD") == Shape{128, 768, 2048});
  CHECK(hf_shapes(rules).at("model.layers.47.mlp.experts.127.down_proj.weight") ==
        Shape{2048, 768});
  CHECK(hf_shapes(rules).at("model.layers.0.self_attn.q_norm.weight") == Shape{128});
  CHECK(hf_shapes(rules).count("model.layers.0.mlp.gate.e_score_correction_bias") == 0);
}

TEST_CASE("deepseek_v3 671B: 3 dense layers, 58 MoE layers of 256 experts") {
  const FamilyRules rules = rules_of("deepseek_v3", "671B");
  // Attention with a low-rank query: 7 keys; 2 layer norms; dense FFN: 3. MoE: expert_bias_E
  // (kept, as e_score_correction_bias), 3 stacked experts (256 x 3 on HF), router, 3 shared.
  CHECK(native_shapes(rules).size() == 1 + 3 * (7 + 2 + 3) + 58 * (7 + 2 + 1 + 3 + 1 + 3) + 2);
  CHECK(hf_shapes(rules).size() == 1 + 3 * (7 + 2 + 3) + 58 * (7 + 2 + 1 + 256 * 3 + 1 + 3) + 2);
  const auto native = native_shapes(rules);
  CHECK(native.at("layers.0.attention.wkv_a.weight") == Shape{576, 7168});
  CHECK(native.at("layers.0.attention.wq_b.weight") == Shape{24576, 1536});
  CHECK(native.at("layers.60.attention.wkv_b.weight") == Shape{32768, 512});
  CHECK(native.at("layers.3.moe.experts.w2_EDF") == Shape{256, 7168, 2048});
  CHECK(native.at("layers.3.moe.shared_experts.w1.weight") == Shape{2048, 7168});
  CHECK(hf_shapes(rules).at("model.layers.3.mlp.gate.e_score_correction_bias") == Shape{256});
}

TEST_CASE("llama4 17bx16e: 48 MoE layers, gate_up_proj = cat(w1^T, w3^T)") {
  const FamilyRules rules = rules_of("llama4", "17bx16e");
  // Per layer: q, k, v, o, 2 norms; MoE: router and 3 shared-expert tensors on both sides,
  // native expert_bias_E + w1, w2, w3 against HF gate_up_proj + down_proj.
  CHECK(native_shapes(rules).size() == 1 + 48 * (6 + 4 + 4) + 2);
  CHECK(hf_shapes(rules).size() == 1 + 48 * (6 + 4 + 2) + 2);
  // moe_hidden_dim: int(int(1.2 * int(8 * 5120 / 3)) / 2) rounded up to 2048 = 8192.
  const auto hf = hf_shapes(rules);
  CHECK(hf.at("language_model.model.layers.0.feed_forward.experts.gate_up_proj") ==
        Shape{16, 5120, 16384});
  CHECK(hf.at("language_model.model.layers.0.feed_forward.experts.down_proj") ==
        Shape{16, 8192, 5120});
  CHECK(hf.at("language_model.model.layers.0.self_attn.k_proj.weight") == Shape{1024, 5120});
  // torchtitan's order is w1, w2, w3 although the rules take w1 and w3 together.
  const auto names = native_names(rules);
  CHECK(index_of(names, "layers.0.moe.experts.w1_EFD") + 1 ==
        index_of(names, "layers.0.moe.experts.w2_EDF"));
  CHECK(index_of(names, "layers.0.moe.experts.w2_EDF") + 1 ==
        index_of(names, "layers.0.moe.experts.w3_EFD"));
}

TEST_CASE("gpt_oss 20b: attention with sinks and biases, 32 experts per layer") {
  const FamilyRules rules = rules_of("gpt_oss", "20b");
  // Per layer: sinks, q/k/v/o weights and biases, 2 norms, 4 expert tensors, router weight
  // and bias; native also expert_bias_E.
  CHECK(native_shapes(rules).size() == 1 + 24 * (1 + 8 + 2 + 1 + 4 + 2) + 2);
  CHECK(hf_shapes(rules).size() == 1 + 24 * (1 + 8 + 2 + 4 + 2) + 2);
  const auto native = native_shapes(rules);
  CHECK(native.at("layers.0.moe.experts.mlp1_weight_EGD") == Shape{32, 5760, 2880});
  CHECK(native.at("layers.0.attention.qkv_linear.wk.bias") == Shape{512});
  CHECK(native.at("layers.0.attention.sinks") == Shape{64});
  // torchtitan registers each weight before its bias.
  const auto names = native_names(rules);
  const std::vector<std::string> layer0(names.begin() + 1, names.begin() + 19);
  CHECK(layer0 ==
        std::vector<std::string>{
            "layers.0.attention.sinks", "layers.0.attention.qkv_linear.wq.weight",
            "layers.0.attention.qkv_linear.wq.bias", "layers.0.attention.qkv_linear.wk.weight",
            "layers.0.attention.qkv_linear.wk.bias", "layers.0.attention.qkv_linear.wv.weight",
            "layers.0.attention.qkv_linear.wv.bias", "layers.0.attention.wo.weight",
            "layers.0.attention.wo.bias", "layers.0.attention_norm.weight",
            "layers.0.ffn_norm.weight", "layers.0.moe.expert_bias_E",
            "layers.0.moe.experts.mlp1_weight_EGD", "layers.0.moe.experts.mlp1_bias_EG",
            "layers.0.moe.experts.mlp2_weight_EDF", "layers.0.moe.experts.mlp2_bias_ED",
            "layers.0.moe.router.gate.weight", "layers.0.moe.router.gate.bias"});
}

TEST_CASE("every built-in flavor's rule table agrees with its key lists") {
  // The five families of the README; each must have flavors, so the loops check something.
  CHECK(builtin_family_names().size() >= 5);
  for (const std::string& family : builtin_family_names()) {
    CHECK_MESSAGE(!list_flavors(family).empty(), family);
    for (const std::string& flavor : list_flavors(family)) {
      CAPTURE(family);
      CAPTURE(flavor);
      const FamilyRules rules = build_family_rules(load_model_config(family, flavor, {}));
      // Both directions' recipes, key uniqueness and native order (throws kInternal).
      CHECK_NOTHROW(check_family_rules(rules));
      std::map<std::string, int> consumed;
      std::map<std::string, int> written;
      for (const Rule& rule : rules.rules) {
        for (const auto& tensor : rule.native) ++consumed[tensor.name];
        if (rule.op != RuleOp::kTied)
          for (const auto& key : rule.hf) ++written[key];
      }
      // Keys that break the rule are collected: one assertion per flavor, not per key (the
      // 671B flavor has ~90k keys).
      const auto native = native_names(rules);
      CHECK(native.size() == consumed.size());
      std::vector<std::string> wrong;
      for (const auto& name : native)
        if (consumed[name] != 1) wrong.push_back(name);
      CHECK(wrong.empty());
      const auto hf = expected_hf_tensors(rules);
      CHECK(hf.size() == written.size());
      for (const auto& spec : hf)
        if (written[spec.name] != 1) wrong.push_back(spec.name);
      CHECK(wrong.empty());
    }
  }
}

TEST_CASE("a rule table that consumes a native key twice is a kInternal error") {
  FamilyRules rules = rules_of("llama3", "debugmodel");
  rules.rules.push_back(rules.rules.front());
  try {
    check_family_rules(rules);
    FAIL("no error");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kInternal);
    CHECK(error.exit_code() == 70);
    CHECK(std::string(error.what()).find("tok_embeddings.weight") != std::string::npos);
  }
  FamilyRules unordered = rules_of("llama3", "debugmodel");
  unordered.native_order.pop_back();
  CHECK_THROWS_KIND(check_family_rules(unordered), ErrorKind::kInternal);
}

// ---- A toy family, defined entirely in this test: config, rules, registry row. ----
namespace {

const char* const kToyConfig = R"({
  "family": "toy",
  "defaults": {"dim": 8, "n_layers": 2, "n_heads": 2, "n_kv_heads": 1, "vocab_size": 16,
               "hidden_dim": 12, "head_dim": null, "tied": true},
  "flavors": {"tiny": {}, "untied": {"tied": false}}
})";

void derive_toy_fields(ModelConfig& config) {
  if (!config.get_optional_int("head_dim"))
    config.set("head_dim", config.get_int("dim") / config.get_int("n_heads"));
}

void toy_rules(const ModelConfig& config, RuleBuilder& rules) {
  const int64_t dim = config.get_int("dim");
  const int64_t vocab = config.get_int("vocab_size");
  const RuleBuilder::Attention attention{config.get_int("n_heads"),
                                         config.get_int("n_kv_heads"),
                                         config.get_int("head_dim"),
                                         dim,
                                         false,
                                         true};
  rules.embeddings("model.", vocab, dim);
  for (int64_t layer = 0; layer < config.get_int("n_layers"); ++layer) {
    const std::string hf = hf_layer_prefix("model.", layer);
    rules.attention_qkv(layer, hf, attention);
    rules.rename({layer_key(layer, "attention.wo.weight"), {dim, dim}},
                 hf + "self_attn.o_proj.weight");
    rules.swiglu(layer_key(layer, "feed_forward."), hf + "mlp.", config.get_int("hidden_dim"), dim);
    rules.layer_norms(layer, hf, dim);
    rules.dropped_zeros({layer_key(layer, "scale_buffer"), {dim}, true},
                        "HF Toy has no scale buffer");
  }
  rules.final_norm_and_output("model.", "lm_head.weight", config.get_bool("tied"), vocab, dim);
}

nlohmann::json toy_hf_config(const ModelConfig& config) {
  return {{"architectures", {"ToyForCausalLM"}}, {"hidden_size", config.get_int("dim")}};
}

const Family kToyFamily{"toy", derive_toy_fields, toy_rules, toy_hf_config};

// A safetensors file of F32 tensors; tensor i holds i * 1000 + j at element j, except
// zero-filled ones and the tied lm_head, which copies tok_embeddings.
void write_native_safetensors(const std::filesystem::path& path,
                              const std::vector<NativeTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  std::map<std::string, std::string> bytes_of;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const NativeTensor& tensor = tensors[i];
    std::string bytes(static_cast<size_t>(num_elements(tensor.shape)) * 4, '\0');
    for (int64_t j = 0; j < num_elements(tensor.shape); ++j) {
      const float value = tensor.float32_only ? 0.0f : static_cast<float>(i * 1000 + j);
      std::memcpy(&bytes[static_cast<size_t>(j) * 4], &value, 4);
    }
    if (tensor.name == "lm_head.weight") bytes = bytes_of.at("tok_embeddings.weight");
    bytes_of[tensor.name] = bytes;
    header[tensor.name] = {{"dtype", "F32"},
                           {"shape", tensor.shape},
                           {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  std::string text = header.dump();
  const uint64_t length = text.size();
  std::string prefix(8, '\0');
  std::memcpy(prefix.data(), &length, 8);
  ckconv::test::write_file(path, prefix + text + data);
}

}  // namespace

TEST_CASE("a toy family defined in the test plans and converts both ways") {
  for (const char* flavor : {"tiny", "untied"}) {
    CAPTURE(flavor);
    const ModelConfig config =
        load_family_config(kToyFamily, nlohmann::json::parse(kToyConfig), flavor, {});
    CHECK(config.get_int("head_dim") == 4);
    const FamilyRules rules = build_family_rules(kToyFamily, config);
    const bool tied = std::string(flavor) == "tiny";
    const std::vector<NativeTensor> native = expected_native_tensors(rules);
    CHECK(native.size() == 1 + 2 * 10 + 2);
    CHECK(expected_hf_tensors(rules).size() == (tied ? 1 + 2 * 9 + 1 : 1 + 2 * 9 + 2));

    TempDir dir;
    write_native_safetensors(dir / "native.safetensors", native);
    const MappedCheckpoint input(read_checkpoint(dir / "native.safetensors"));
    std::filesystem::create_directory(dir / "hf");
    const ConversionSummary to_hf =
        write_conversion(Direction::kToHf, config, rules, input, dir / "hf", WriteOptions{});
    CHECK(to_hf.report.dropped.size() == (tied ? 3u : 2u));
    const Catalog hf = read_checkpoint(dir / "hf");
    CHECK(hf.tensors.size() == expected_hf_tensors(rules).size());
    // Renamed tensors keep their bytes.
    CHECK(ckconv::test::gather_tensor_bytes(hf, *hf.find("model.layers.1.mlp.gate_proj.weight")) ==
          ckconv::test::gather_tensor_bytes(
              input.catalog(), *input.catalog().find("layers.1.feed_forward.w1.weight")));

    std::filesystem::create_directory(dir / "back");
    const MappedCheckpoint hf_input(read_checkpoint(dir / "hf"));
    const ConversionSummary from_hf =
        write_conversion(Direction::kFromHf, config, rules, hf_input, dir / "back", WriteOptions{});
    CHECK(from_hf.report.created.size() == (tied ? 3u : 2u));
    const Catalog back = read_checkpoint(dir / "back");
    REQUIRE(back.tensors.size() == native.size());
    for (size_t i = 0; i < native.size(); ++i) {
      CAPTURE(native[i].name);
      CHECK(back.tensors[i].name == native[i].name);
      CHECK(ckconv::test::gather_tensor_bytes(back, back.tensors[i]) ==
            ckconv::test::gather_tensor_bytes(input.catalog(),
                                              *input.catalog().find(native[i].name)));
    }
  }
}
