// torch.save reading (PyTorch 2.6 and 2.14 files: views, transposes, parameters, nested
// dicts) and writing (round trips through the reader for every dtype form), plus archives with
// short storages, out-of-range strides, missing records and hostile pickles (issue 5).
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "core/error.h"
#include "error_checks.h"
#include "format_test_helpers.h"
#include "formats/pickle/pickle_writer.h"
#include "formats/torch_save/torch_save_reader.h"
#include "formats/torch_save/torch_save_writer.h"
#include "formats/torch_save/zip_writer.h"

namespace ckconv {
namespace {

using namespace std::string_literals;

using test::gather_tensor_bytes;
using test::kFixtures;
using test::kTorchVersions;
using test::TempDir;

std::string f32_bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}
std::string u16_bytes(const std::vector<uint16_t>& values) {
  std::string bytes(values.size() * 2, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

const CatalogTensor& tensor_named(const Catalog& catalog, const std::string& name) {
  const CatalogTensor* tensor = catalog.find(name);
  REQUIRE_MESSAGE(tensor != nullptr, "missing tensor " << name);
  return *tensor;
}

std::vector<std::string> skipped_names(const Catalog& catalog) {
  std::vector<std::string> names;
  for (const SkippedItem& item : catalog.skipped) names.push_back(item.name);
  return names;
}

TEST_CASE("torch_save: sd.pt with a view, a transpose and a non-tensor") {
  for (const std::string& version : kTorchVersions) {
    CAPTURE(version);
    Catalog catalog = read_torch_save(kFixtures / "formats" / version / "sd.pt");
    CHECK(catalog.format == CheckpointFormat::kTorchSave);
    REQUIRE(catalog.tensors.size() == 4);
    CHECK(catalog.tensors[0].name == "w");  // checkpoint order
    const CatalogTensor& w = tensor_named(catalog, "w");
    CHECK(w.dtype == DType::kBF16);
    CHECK(w.shape == Shape{2, 3});
    CHECK(gather_tensor_bytes(catalog, w) ==
          u16_bytes({0x0000, 0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0}));
    CHECK(gather_tensor_bytes(catalog, tensor_named(catalog, "b")) == f32_bytes({0, 1, 2}));
    // base[2:6].view(2, 2): storage of 10 floats at storage offset 2.
    const CatalogTensor& view = tensor_named(catalog, "view");
    CHECK(view.chunks[0].strides == Shape{2, 1});
    CHECK(gather_tensor_bytes(catalog, view) == f32_bytes({2, 3, 4, 5}));
    // zeros(2, 3).t(): stride (1, 3).
    const CatalogTensor& t = tensor_named(catalog, "t");
    CHECK(t.shape == Shape{3, 2});
    CHECK(t.chunks[0].strides == Shape{1, 3});
    CHECK_FALSE(is_single_contiguous(t));
    CHECK(gather_tensor_bytes(catalog, t) == f32_bytes({0, 0, 0, 0, 0, 0}));
    CHECK(skipped_names(catalog) == std::vector<std::string>{"step"});
    CHECK(catalog.skipped[0].reason.find("int 7") != std::string::npos);
  }
}

TEST_CASE("torch_save: nn.Parameter, nested dicts (ck.pt) and Python zipfile archives") {
  for (const std::string& version : kTorchVersions) {
    CAPTURE(version);
    Catalog param = read_torch_save(kFixtures / "formats" / version / "param.pt");
    REQUIRE(param.tensors.size() == 1);
    CHECK(param.tensors[0].name == "p");
    CHECK(gather_tensor_bytes(param, param.tensors[0]) == f32_bytes({1, 1}));

    Catalog ck = read_torch_save(kFixtures / "formats" / version / "ck.pt");
    std::vector<std::string> names;
    for (const CatalogTensor& tensor : ck.tensors) names.push_back(tensor.name);
    CHECK(names == std::vector<std::string>{"tok_embeddings.weight", "norm.weight", "misc.0"});
    CHECK(gather_tensor_bytes(ck, tensor_named(ck, "tok_embeddings.weight")) ==
          f32_bytes({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
    CHECK(gather_tensor_bytes(ck, tensor_named(ck, "norm.weight")) ==
          u16_bytes({0x3f80, 0x3f80, 0x3f80}));
    CHECK(skipped_names(ck) == std::vector<std::string>{"train_state.step",
                                                        "train_state.ntokens_seen",
                                                        "lr_scheduler.last_epoch", "misc.1"});
  }
  Catalog plain = read_torch_save(kFixtures / "formats" / "torch2.14_py3.14" / "min_plain.pt");
  REQUIRE(plain.tensors.size() == 1);
  CHECK(gather_tensor_bytes(plain, plain.tensors[0]) ==
        u16_bytes({0x3f80, 0x4000, 0x4040, 0x4080, 0x40a0, 0x40c0}));
}

TEST_CASE("torch_save: every truncation of sd.pt is refused cleanly") {
  TempDir dir;
  const std::string bytes = test::read_file(kFixtures / "formats" / "torch2.14_py3.14" / "sd.pt");
  for (size_t length = 0; length < bytes.size(); ++length) {
    CAPTURE(length);
    test::write_file(dir / "cut.pt", bytes.substr(0, length));
    CHECK_THROWS_KIND(read_torch_save(dir / "cut.pt"), ErrorKind::kBadInput);
  }
}

TEST_CASE("torch_save: written archives read back with the same tensors, deterministically") {
  const std::vector<OutputTensorSpec> specs = {{"layers.0.weight", DType::kBF16, {2, 3}},
                                               {"bias", DType::kF32, {5}},
                                               {"fp8", DType::kF8_E4M3, {4}},
                                               {"u16", DType::kU16, {3}},
                                               {"scalar", DType::kI64, {}},
                                               {"empty", DType::kF32, {0, 3}},
                                               {"five_d", DType::kF16, {1, 2, 1, 2, 2}},
                                               {"mask", DType::kBool, {3}},
                                               {"big_numel", DType::kU8, {70000}},
                                               {"u64", DType::kU64, {2}}};
  std::vector<std::string> data;
  for (size_t i = 0; i < specs.size(); ++i)
    data.push_back(test::pattern_bytes(static_cast<size_t>(specs[i].size_bytes()), i));
  FilePlan file_plan = plan_torch_save(specs, "model");
  REQUIRE(file_plan.files.size() == 1);
  CHECK(file_plan.files[0].relative_path == "model.pt");
  CHECK(file_plan.crc_patches.size() == 2 * specs.size());
  for (const TensorPlacement& placement : file_plan.placements)
    CHECK(placement.byte_offset % 64 == 0);
  TempDir dir;
  test::materialize(file_plan, data, dir.path());
  Catalog catalog = read_torch_save(dir / "model.pt");
  REQUIRE(catalog.tensors.size() == specs.size());
  CHECK(catalog.skipped.empty());
  for (size_t i = 0; i < specs.size(); ++i) {
    CAPTURE(specs[i].name);
    const CatalogTensor& tensor = catalog.tensors[i];
    CHECK(tensor.name == specs[i].name);
    CHECK(tensor.dtype == specs[i].dtype);
    CHECK(tensor.shape == specs[i].shape);
    CHECK(is_single_contiguous(tensor));
    CHECK(gather_tensor_bytes(catalog, tensor) == data[i]);
  }
  // The same specs plan the same bytes.
  FilePlan again = plan_torch_save(specs, "model");
  REQUIRE(again.files[0].literals.size() == file_plan.files[0].literals.size());
  for (size_t i = 0; i < file_plan.files[0].literals.size(); ++i)
    CHECK(again.files[0].literals[i].bytes == file_plan.files[0].literals[i].bytes);

  CHECK_THROWS_KIND(plan_torch_save({{"x", DType::kF4, {2}}}, "m"), ErrorKind::kBadInput);
  CHECK_THROWS_KIND_WITH(plan_torch_save({{"x", DType::kF32, {2}}, {"x", DType::kF32, {1}}}, "m"),
                         ErrorKind::kBadInput, "duplicate tensor name");
  CHECK_THROWS_KIND_WITH(plan_torch_save({}, "a/b"), ErrorKind::kUsage,
                         "invalid torch.save archive name");
}

// An archive `t/` with the given data.pkl and storage records, for hostile-input tests.
test::fs::path write_archive(const TempDir& dir, const std::string& data_pickle,
                             const std::vector<std::string>& storages,
                             const std::string& byteorder = "little") {
  std::vector<ZipEntrySpec> entries = {{"t/data.pkl", data_pickle.size(), data_pickle},
                                       {"t/byteorder", byteorder.size(), byteorder}};
  for (size_t i = 0; i < storages.size(); ++i)
    entries.push_back({"t/data/" + std::to_string(i), storages[i].size(), storages[i]});
  entries.push_back({"t/version", 2, std::string("3\n")});
  PlannedZip plan = plan_stored_zip(entries);
  std::string bytes(plan.size_bytes, '\0');
  for (const LiteralBytes& literal : plan.literals)
    bytes.replace(literal.offset, literal.bytes.size(), literal.bytes);
  test::write_file(dir / "t.pt", bytes);
  return dir / "t.pt";
}

// {"w": _rebuild_tensor_v2(storage `key` of `numel` floats, offset, size, stride, ...)}
std::string float_tensor_pickle(const std::string& key, int64_t numel, int64_t offset,
                                const Shape& size, const Shape& stride,
                                const char* rebuild = "_rebuild_tensor_v2") {
  PickleWriter w;
  w.empty_dict();
  w.string("w");
  w.global("torch._utils", rebuild);
  w.begin_tuple(6);
  w.begin_tuple(5);
  w.string("storage");
  w.global("torch", "FloatStorage");
  w.string(key);
  w.string("cpu");
  w.integer(numel);
  w.end_tuple(5);
  w.persistent_id();
  w.integer(offset);
  w.int_tuple(size);
  w.int_tuple(stride);
  w.boolean(false);
  w.global("collections", "OrderedDict");
  w.begin_tuple(0);
  w.end_tuple(0);
  w.reduce();
  w.end_tuple(6);
  w.reduce();
  w.set_item();
  return w.finish();
}

void expect_torch_save_refused(const test::fs::path& path, const std::string& fragment) {
  try {
    read_torch_save(path);
    FAIL("accepted; expected: " << fragment);
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kBadInput);
    CHECK_MESSAGE(std::string(error.what()).find(fragment) != std::string::npos,
                  std::string(error.what()));
    CHECK_MESSAGE(std::string(error.what()).find(path.string()) != std::string::npos,
                  std::string(error.what()));
  }
}

TEST_CASE("torch_save: inconsistent or hostile archives are refused") {
  TempDir dir;
  const std::string six_floats(24, '\0');
  // Sanity: the well-formed variant reads.
  CHECK(read_torch_save(
            write_archive(dir, float_tensor_pickle("0", 6, 0, {2, 3}, {3, 1}), {six_floats}))
            .tensors.size() == 1);
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("0", 6, 0, {2, 3}, {3, 1}), {std::string(4, '\0')}),
      "declares 24 bytes but its record holds 4");
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("0", 6, 1, {2, 3}, {3, 1}), {six_floats}),
      "reaches past its storage");
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("0", 6, 0, {2, 3}, {4, 1}), {six_floats}),
      "reaches past its storage");
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("0", 6, 0, {2, 3}, {3}), {six_floats}),
      "does not match size");
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("7", 6, 0, {2, 3}, {3, 1}), {six_floats}),
      "has no record 't/data/7'");
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("0", 6, 0, {6}, {1}, "_rebuild_qtensor"),
                    {six_floats}),
      "unsupported tensor representation torch._utils._rebuild_qtensor");
  expect_torch_save_refused(
      write_archive(dir, float_tensor_pickle("0", 6, 0, {2, 3}, {3, 1}), {six_floats}, "big"),
      "byte order 'big'");
  expect_torch_save_refused(write_archive(dir,
                                          "\x80\x02"
                                          "cos\nsystem\nX\x02\x00\x00\x00idR."s,
                                          {}),
                            "os.system");
  expect_torch_save_refused(write_archive(dir, "\x80\x02K\x05.", {}), "expected a state dict");
  PickleWriter duplicate;
  duplicate.empty_dict();
  duplicate.mark();
  for (int i = 0; i < 2; ++i) {
    duplicate.string("k");
    duplicate.integer(i);
  }
  duplicate.set_items();
  expect_torch_save_refused(write_archive(dir, duplicate.finish(), {}), "duplicate key 'k'");
  // Nesting beyond the walker's depth limit.
  PickleWriter nested;
  for (int i = 0; i <= kMaxPickleNestingDepth + 1; ++i) {
    nested.empty_dict();
    nested.string("d");
  }
  nested.none();
  for (int i = 0; i <= kMaxPickleNestingDepth + 1; ++i) nested.set_item();
  expect_torch_save_refused(write_archive(dir, nested.finish(), {}), "levels deep");
}

}  // namespace
}  // namespace ckconv
