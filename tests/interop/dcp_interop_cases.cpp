// The ckconv side of tests/interop/dcp_interop.sh, which runs the real PyTorch in the reference
// environment: ckconv writes DCP and torch.save checkpoints for PyTorch to load, and reads a
// multi-rank checkpoint PyTorch wrote. Compiled into unit_tests but marked skip: each case needs
// a directory the script prepares and fails without it, so only that script runs them
// (unit_tests --no-skip).
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "format_test_helpers.h"
#include "formats/dcp/dcp_reader.h"
#include "formats/dcp/dcp_writer.h"
#include "formats/safetensors/safetensors_reader.h"
#include "formats/safetensors/safetensors_writer.h"
#include "formats/torch_save/torch_save_reader.h"
#include "formats/torch_save/torch_save_writer.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;
using test::kFixtures;

// The directory the environment variable `name` names; a missing variable fails the case.
fs::path required_directory(const char* name) {
  const std::string variable = name;
  const char* value = std::getenv(name);
  REQUIRE_MESSAGE(value != nullptr,
                  variable << " is not set (tests/interop/dcp_interop.sh sets it)");
  REQUIRE_MESSAGE(*value != '\0', variable << " is empty");
  return fs::path(value);
}

// Writes, for PyTorch to load, DIR/<case>/dcp (a DCP checkpoint), DIR/<case>/model.pt
// (torch.save) and DIR/<case>/expected.safetensors (the same tensors, as the reference to compare
// with), DIR being the directory CKCONV_INTEROP_WRITE_DIR names.
TEST_CASE("dcp interop: write checkpoints for PyTorch to load" * doctest::skip()) {
  const fs::path out = required_directory("CKCONV_INTEROP_WRITE_DIR");
  std::vector<std::pair<std::string, Catalog>> cases;
  for (const char* fixture :
       {"llama3_tiny_bf16", "qwen3_tiny_moe", "gpt_oss_tiny", "deepseek_v3_tiny"})
    cases.emplace_back(fixture,
                       read_safetensors(kFixtures / "adapters" / fixture / "native.safetensors"));
  // Every dtype torch.save stores through a typed (v2) or untyped (v3) storage, plus 0-d,
  // empty and 5-d tensors.
  const std::vector<OutputTensorSpec> dtype_specs = {{"f64", DType::kF64, {3}},
                                                     {"f32", DType::kF32, {2, 3}},
                                                     {"f16", DType::kF16, {4}},
                                                     {"bf16", DType::kBF16, {2, 2}},
                                                     {"i64", DType::kI64, {}},
                                                     {"i32", DType::kI32, {0, 2}},
                                                     {"i16", DType::kI16, {3}},
                                                     {"i8", DType::kI8, {1, 2, 1, 2, 2}},
                                                     {"u8", DType::kU8, {5}},
                                                     {"bool", DType::kBool, {3}},
                                                     {"u16", DType::kU16, {3}},
                                                     {"u32", DType::kU32, {2}},
                                                     {"u64", DType::kU64, {2}},
                                                     {"f8e4m3", DType::kF8_E4M3, {4}},
                                                     {"f8e5m2", DType::kF8_E5M2, {2, 2}}};
  std::vector<std::string> dtype_bytes;
  for (size_t i = 0; i < dtype_specs.size(); ++i) {
    std::string bytes =
        test::pattern_bytes(static_cast<size_t>(dtype_specs[i].size_bytes()), 40 + i);
    if (dtype_specs[i].dtype == DType::kBool)
      for (char& c : bytes) c = static_cast<char>(c & 1);
    dtype_bytes.push_back(bytes);
  }
  for (auto& [name, catalog] : cases) {
    const fs::path dir = out / name;
    fs::create_directories(dir / "dcp");
    const auto bytes = test::bytes_of(catalog);
    test::materialize(plan_dcp(test::specs_of(catalog), {}), bytes, dir / "dcp");
    test::materialize(plan_torch_save(test::specs_of(catalog), "model"), bytes, dir);
    fs::copy_file(kFixtures / "adapters" / name / "native.safetensors",
                  dir / "expected.safetensors", fs::copy_options::overwrite_existing);
  }
  const fs::path dir = out / "dtypes";
  fs::create_directories(dir / "dcp");
  test::materialize(plan_dcp(dtype_specs, {}), dtype_bytes, dir / "dcp");
  test::materialize(plan_torch_save(dtype_specs, "model"), dtype_bytes, dir);
  SafetensorsWriteOptions options;
  options.file_stem = "expected";
  test::materialize(plan_safetensors(dtype_specs, options), dtype_bytes, dir);
  CHECK(read_dcp(dir / "dcp").tensors.size() == dtype_specs.size());
  CHECK(read_torch_save(dir / "model.pt").tensors.size() == dtype_specs.size());
}

// Reads DIR/ck (DIR named by CKCONV_INTEROP_MULTIRANK_DIR), written by 2 PyTorch processes with
// sharded DTensors (dcp_check.py write-multirank), and compares its model tensors with
// DIR/expected.safetensors.
TEST_CASE("dcp interop: a multi-rank sharded checkpoint written by PyTorch" * doctest::skip()) {
  const fs::path in = required_directory("CKCONV_INTEROP_MULTIRANK_DIR");
  Catalog catalog = read_dcp(in / "ck");
  Catalog expected = read_safetensors(in / "expected.safetensors");
  test::check_same_tensors(catalog, expected);
  CHECK(catalog.files.size() == 2);
  CHECK(catalog.find("tok_embeddings.weight")->chunks.size() == 2);
  CHECK(catalog.find("layers.0.attention.wq.weight")->chunks.size() == 2);
  CHECK(catalog.find("layers.0.feed_forward.w2.weight")->chunks[0].strides == Shape{1, 5});
  std::set<std::string> skipped;
  for (const SkippedItem& item : catalog.skipped) skipped.insert(item.name);
  for (const char* name : {"optimizer.state.tok_embeddings.weight.exp_avg",
                           "optimizer.state.tok_embeddings.weight.step", "lr_scheduler.last_epoch",
                           "train_state.step", "train_state.ntokens_seen"})
    CHECK_MESSAGE(skipped.count(name) == 1, name);
}

}  // namespace
}  // namespace ckconv
