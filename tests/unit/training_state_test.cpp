// Training checkpoints (tests/fixtures/training, written by PyTorch 2.14 in torchtitan's
// layout): the model part reads like the same weights saved alone, every training-state key is
// skipped under its group, a checkpoint with no model is refused naming the groups, and the
// DCP storage features ckconv does not read are refused by name; a torchtitan v0.1.0 full
// checkpoint (tests/fixtures/generations/v0.1, model keys under `model.`) reads as its model.
#include "formats/training_state.h"

#include <doctest/doctest.h>

#include <string>

#include "core/error.h"
#include "format_test_helpers.h"
#include "formats/checkpoint_reader.h"
#include "formats/dcp/dcp_reader.h"
#include "formats/safetensors/safetensors_reader.h"

namespace ckconv {
namespace {

const std::filesystem::path kTraining = test::kFixtures / "training";

void expect_feature_refused(const std::filesystem::path& dir, const std::string& fragment) {
  test::expect_error([&] { read_dcp(dir); }, ErrorKind::kBadInput, fragment);
}

TEST_CASE("dcp: a full training checkpoint reads its model, training state skipped") {
  for (const char* name : {"full_v0.2", "full_2026-08"}) {
    CAPTURE(name);
    const Catalog full = read_dcp(kTraining / name);
    const Catalog weights =
        read_safetensors(kTraining / (std::string(name) + ".model.safetensors"));
    test::check_same_tensors(full, weights);
    size_t optimizer_tensors = 0;
    for (const SkippedItem& item : full.skipped) {
      CHECK_FALSE(training_state_group(item.name).empty());
      if (item.reason.find("training state tensor") != std::string::npos) ++optimizer_tensors;
    }
    CHECK(optimizer_tensors == 3 * weights.tensors.size());  // exp_avg, exp_avg_sq, step
  }
  CHECK(training_state_group("optimizer.param_groups.norm.weight.lr") == "optimizer");
  CHECK(training_state_group("train_state") == "train_state");
  CHECK(training_state_group("optimizers.x").empty());
  CHECK(skip_rule_for("dataloader.dp_rank_0", "non_tensor") == "training_state.dataloader");
  CHECK(skip_rule_for("misc", "non_tensor") == "non_tensor");
}

TEST_CASE("a torchtitan v0.1.0 full checkpoint reads as its model-only export") {
  const std::filesystem::path dir = test::kFixtures / "generations" / "v0.1" / "llama3_tiny";
  const Catalog full = read_checkpoint(dir / "full.dcp");
  test::check_same_tensors(full, read_safetensors(dir / "native.safetensors"));
  test::check_same_tensors(read_checkpoint(dir / "export.dcp"), full);
  size_t excluded = 0;
  for (const SkippedItem& item : full.skipped) {
    if (skip_rule_for(item.name, "non_tensor") == "model_only_excluded") {
      CHECK(item.name == "model.freqs_cis");
      ++excluded;
    } else {
      CHECK_FALSE(training_state_group(item.name).empty());
    }
  }
  CHECK(excluded == 1);
  // Read as stored, the model keys sit under `model.`.
  CHECK(read_dcp(dir / "full.dcp").find("model.tok_embeddings.weight"));
}

TEST_CASE("the model. prefix is stripped only beside torchtitan's training state") {
  auto catalog_with = [](CheckpointFormat format, std::vector<std::string> tensors,
                         std::vector<std::string> skipped) {
    Catalog catalog;
    catalog.format = format;
    for (std::string& name : tensors) {
      CatalogTensor tensor;
      tensor.name = std::move(name);
      catalog.tensors.push_back(std::move(tensor));
    }
    for (std::string& name : skipped) catalog.skipped.push_back({std::move(name), "r"});
    return catalog;
  };
  Catalog full =
      catalog_with(CheckpointFormat::kTorchSave, {"model.tok_embeddings.weight", "model.freqs_cis"},
                   {"optimizer.state.tok_embeddings.weight.exp_avg", "train_state.step"});
  CHECK(strip_model_group(full));
  CHECK(full.tensors.size() == 1);
  CHECK(full.tensors[0].name == "tok_embeddings.weight");
  CHECK(full.skipped.back().name == "model.freqs_cis");
  // An HF model (no training state), an HF folder, a key outside the groups: unchanged.
  Catalog hf = catalog_with(CheckpointFormat::kDcp, {"model.embed_tokens.weight"}, {});
  CHECK_FALSE(strip_model_group(hf));
  CHECK(hf.tensors[0].name == "model.embed_tokens.weight");
  Catalog folder =
      catalog_with(CheckpointFormat::kSafetensors, {"model.norm.weight"}, {"train_state.step"});
  CHECK_FALSE(strip_model_group(folder));
  Catalog other = catalog_with(CheckpointFormat::kDcp, {"model.norm.weight", "lm_head.weight"},
                               {"train_state.step"});
  CHECK_FALSE(strip_model_group(other));
  Catalog foreign =
      catalog_with(CheckpointFormat::kDcp, {"model.norm.weight"}, {"train_state.step", "ema.step"});
  CHECK_FALSE(strip_model_group(foreign));
}

TEST_CASE("dcp: training state without a model is refused, naming the groups") {
  Catalog catalog;
  catalog.path = "step-10";
  catalog.skipped = {{"optimizer.state.w.exp_avg", "t"}, {"train_state.step", "b"}};
  try {
    require_model_tensors(catalog);
    FAIL("accepted");
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    CHECK(std::string(error.what())
              .find("holds only training state (keys per group: optimizer "
                    "1, train_state 1)") != std::string::npos);
  }
  catalog.skipped.clear();
  CHECK_NOTHROW(require_model_tensors(catalog));  // nothing at all: the plan names the keys
}

TEST_CASE("dcp: stream transforms and the safetensors serialization are refused by name") {
  expect_feature_refused(
      kTraining / "zstd",
      "passes through the DCP stream transform 'stream.zstd/1' (zstd compression");
  expect_feature_refused(kTraining / "safetensors_serialization",
                         "serialization_format=SerializationFormat.SAFETENSORS");
}

}  // namespace
}  // namespace ckconv
