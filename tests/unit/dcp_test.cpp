// DCP reading (PyTorch 2.6/2.14 checkpoints, every adapter fixture against its safetensors
// twin, multi-file chunked tensors) and writing (round trips, determinism), plus escaping
// paths, missing files, overlapping or incomplete chunks and corrupt metadata (issue 5).
#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>

#include "core/error.h"
#include "error_checks.h"
#include "format_test_helpers.h"
#include "formats/dcp/dcp_reader.h"
#include "formats/dcp/dcp_writer.h"
#include "formats/pickle/pickle_writer.h"
#include "formats/safetensors/safetensors_reader.h"
#include "formats/safetensors/safetensors_writer.h"
#include "formats/torch_save/torch_save_reader.h"
#include "formats/torch_save/torch_save_writer.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;
using test::check_same_tensors;
using test::gather_tensor_bytes;
using test::kFixtures;
using test::kTorchVersions;
using test::TempDir;

void expect_dcp_refused(const fs::path& dir, const std::string& fragment) {
  test::expect_error([&] { read_dcp(dir); }, ErrorKind::kBadInput, fragment);
}

TEST_CASE("dcp: PyTorch 2.6 and 2.14 checkpoints with nested, list and non-tensor items") {
  for (const std::string& version : kTorchVersions) {
    CAPTURE(version);
    Catalog catalog = read_dcp(kFixtures / "formats" / version / "ck");
    CHECK(catalog.format == CheckpointFormat::kDcp);
    REQUIRE(catalog.tensors.size() == 3);
    CHECK(catalog.tensors[0].name == "tok_embeddings.weight");
    CHECK(catalog.tensors[0].dtype == DType::kF32);
    CHECK(catalog.tensors[0].shape == Shape{4, 3});
    std::string expected(48, '\0');
    for (int i = 0; i < 12; ++i) {
      float value = static_cast<float>(i);
      std::memcpy(expected.data() + 4 * i, &value, 4);
    }
    CHECK(gather_tensor_bytes(catalog, catalog.tensors[0]) == expected);
    CHECK(catalog.tensors[1].name == "norm.weight");
    CHECK(catalog.tensors[1].dtype == DType::kBF16);
    CHECK(gather_tensor_bytes(catalog, catalog.tensors[1]) ==
          std::string("\x80\x3f\x80\x3f\x80\x3f", 6));
    // misc.0 (a tensor inside a list) stays a tensor; the byte items are skipped.
    CHECK(catalog.tensors[2].name == "misc.0");
    CHECK(gather_tensor_bytes(catalog, catalog.tensors[2]) == std::string(8, '\0'));
    std::vector<std::string> skipped;
    for (const SkippedItem& item : catalog.skipped) skipped.push_back(item.name);
    CHECK(skipped == std::vector<std::string>{"train_state.step", "train_state.ntokens_seen",
                                              "lr_scheduler.last_epoch", "misc.1"});
  }
}

TEST_CASE("dcp: every adapter fixture's native_dcp equals its native.safetensors") {
  int fixtures = 0;
  for (const auto& entry : fs::directory_iterator(kFixtures / "adapters")) {
    if (!fs::exists(entry.path() / "native_dcp")) continue;
    CAPTURE(entry.path().filename().string());
    Catalog dcp = read_dcp(entry.path() / "native_dcp");
    Catalog safetensors = read_safetensors(entry.path() / "native.safetensors");
    CHECK(dcp.skipped.empty());
    check_same_tensors(dcp, safetensors);
    ++fixtures;
  }
  CHECK(fixtures == 12);
}

TEST_CASE("dcp: written checkpoints read back bit-exactly and deterministically") {
  for (const char* fixture : {"llama3_tiny_bf16", "qwen3_tiny_moe"}) {
    CAPTURE(fixture);
    Catalog source = read_safetensors(kFixtures / "adapters" / fixture / "native.safetensors");
    const auto specs = test::specs_of(source);
    FilePlan file_plan = plan_dcp(specs, {});
    REQUIRE(file_plan.files.size() == 2);
    CHECK(file_plan.files[0].relative_path == kDcpDataFileName);
    CHECK(file_plan.files[1].relative_path == ".metadata");
    CHECK(file_plan.files[1].literals.size() == 1);
    TempDir dir;
    test::materialize(file_plan, test::bytes_of(source), dir.path());
    Catalog written = read_dcp(dir.path());
    check_same_tensors(written, source);
    for (size_t i = 0; i < specs.size(); ++i) CHECK(written.tensors[i].name == specs[i].name);

    FilePlan again = plan_dcp(specs, {});
    CHECK(again.files[1].literals[0].bytes == file_plan.files[1].literals[0].bytes);
    CHECK(again.files[0].literals.size() == file_plan.files[0].literals.size());
    CHECK(again.files[0].size_bytes == file_plan.files[0].size_bytes);
  }
  // Optional StorageMeta; every dtype form (v2 and v3 storages, 0-d, empty).
  const std::vector<OutputTensorSpec> specs = {{"a", DType::kF8_E5M2, {3, 2}},
                                               {"b", DType::kI64, {}},
                                               {"c", DType::kF32, {0}},
                                               {"d", DType::kU32, {1, 1, 1, 1, 2}}};
  std::vector<std::string> data;
  for (size_t i = 0; i < specs.size(); ++i)
    data.push_back(test::pattern_bytes(static_cast<size_t>(specs[i].size_bytes()), 7 + i));
  DcpWriteOptions options;
  options.include_storage_meta = true;
  options.checkpoint_id = "step-10";
  FilePlan file_plan = plan_dcp(specs, options);
  TempDir dir;
  test::materialize(file_plan, data, dir.path());
  Catalog written = read_dcp(dir.path());
  REQUIRE(written.tensors.size() == specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    CHECK(written.tensors[i].dtype == specs[i].dtype);
    CHECK(written.tensors[i].shape == specs[i].shape);
    CHECK(gather_tensor_bytes(written, written.tensors[i]) == data[i]);
  }
  const std::string& metadata = file_plan.files[1].literals[0].bytes;
  CHECK(metadata.find("step-10") != std::string::npos);
  CHECK(metadata.find("StorageMeta") != std::string::npos);
  CHECK_THROWS_KIND_WITH(plan_dcp({{"x", DType::kF32, {1}}, {"x", DType::kF32, {1}}}, {}),
                         ErrorKind::kBadInput, "duplicate tensor name 'x'");
}

// --- hand-made chunked checkpoints ---------------------------------------------------------

struct TestChunk {
  Shape offsets;
  Shape sizes;
  std::string file;
  Shape item_sizes = {};  // shape stored in the item when it should disagree with `sizes`
};
struct TestTensor {
  std::string name;
  Shape shape;
  std::vector<TestChunk> chunks;
};

// The row-major bytes of box [offsets, offsets + sizes) of a float tensor of `shape`.
std::string box_bytes(const std::string& whole, const Shape& shape, const Shape& offsets,
                      const Shape& sizes) {
  std::string out;
  const Shape strides = contiguous_strides(shape);
  const int64_t count = num_elements(sizes);
  Shape index(sizes.size(), 0);
  for (int64_t n = 0; n < count; ++n) {
    int64_t at = 0;
    for (size_t d = 0; d < index.size(); ++d) at += (offsets[d] + index[d]) * strides[d];
    out.append(whole, static_cast<size_t>(at * 4), 4);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// Writes float32 tensors chunked over several .distcp files as FSDP/TP saves do, with a
// minimal .metadata (no planner_data, no storage_meta, no version: all optional) and one byte
// item "train_state.step".
void write_chunked_dcp(const fs::path& dir, const std::vector<TestTensor>& tensors,
                       const std::vector<std::string>& wholes) {
  std::map<std::string, std::string> files;
  struct Location {
    std::string file;
    uint64_t offset, length;
  };
  std::vector<std::vector<Location>> locations(tensors.size());
  for (size_t t = 0; t < tensors.size(); ++t) {
    for (const TestChunk& chunk : tensors[t].chunks) {
      Shape stored = chunk.item_sizes.empty() ? chunk.sizes : chunk.item_sizes;
      OutputTensorSpec spec{tensors[t].name, DType::kF32, stored};
      PickleWriter pickle;
      write_tensor_pickle(pickle, spec, "0");
      PlannedZip zip = plan_torch_save_archive("archive", pickle.finish(),
                                               {static_cast<uint64_t>(spec.size_bytes())});
      std::string item(zip.size_bytes, '\0');
      for (const LiteralBytes& literal : zip.literals)
        item.replace(literal.offset, literal.bytes.size(), literal.bytes);
      std::string data = box_bytes(wholes[t], tensors[t].shape, chunk.offsets, chunk.sizes);
      data.resize(static_cast<size_t>(spec.size_bytes()), '\0');
      item.replace(zip.data_offsets[kFirstStorageEntry], data.size(), data);
      std::string& file = files[chunk.file];
      locations[t].push_back(Location{chunk.file, file.size(), item.size()});
      file += item;
    }
  }
  const char* module = "torch.distributed.checkpoint.metadata";
  PickleWriter w;
  auto object = [&](const char* mod, const char* cls, const std::function<void()>& fields) {
    w.global(mod, cls);
    w.begin_tuple(0);
    w.end_tuple(0);
    w.new_object();
    w.empty_dict();
    w.mark();
    fields();
    w.set_items();
    w.build();
  };
  auto size = [&](const Shape& shape) {
    w.global("torch", "Size");
    w.begin_tuple(1);
    w.int_tuple(shape);
    w.end_tuple(1);
    w.reduce();
  };
  object(module, "Metadata", [&] {
    w.string("state_dict_metadata");
    w.empty_dict();
    for (size_t t = 0; t < tensors.size(); ++t) {
      w.string(tensors[t].name);
      object(module, "TensorStorageMetadata", [&] {
        w.string("properties");
        w.global(module, "TensorProperties");
        w.begin_tuple(0);
        w.end_tuple(0);
        w.new_object();
        w.begin_tuple(5);
        w.global("torch", "float32");
        w.none();
        w.boolean(false);
        w.none();
        w.boolean(false);
        w.end_tuple(5);
        w.build();
        w.string("size");
        size(tensors[t].shape);
        w.string("chunks");
        w.empty_list();
        for (const TestChunk& chunk : tensors[t].chunks) {
          object(module, "ChunkStorageMetadata", [&] {
            w.string("offsets");
            size(chunk.offsets);
            w.string("sizes");
            size(chunk.sizes);
          });
          w.append();
        }
      });
      w.set_item();
    }
    w.string("train_state.step");
    w.global(module, "BytesStorageMetadata");
    w.begin_tuple(0);
    w.end_tuple(0);
    w.new_object();
    w.set_item();
    w.string("storage_data");
    w.empty_dict();
    for (size_t t = 0; t < tensors.size(); ++t) {
      for (size_t c = 0; c < tensors[t].chunks.size(); ++c) {
        object(module, "MetadataIndex", [&] {
          w.string("fqn");
          w.string(tensors[t].name);
          w.string("offset");
          size(tensors[t].chunks[c].offsets);
          w.string("index");
          w.integer(static_cast<int64_t>(c));
        });
        object("torch.distributed.checkpoint.filesystem", "_StorageInfo", [&] {
          w.string("relative_path");
          w.string(locations[t][c].file);
          w.string("offset");
          w.integer(static_cast<int64_t>(locations[t][c].offset));
          w.string("length");
          w.integer(static_cast<int64_t>(locations[t][c].length));
          w.string("transform_descriptors");
          w.none();
        });
        w.set_item();
      }
    }
  });
  fs::create_directories(dir);
  test::write_file(dir / ".metadata", w.finish());
  for (const auto& [name, bytes] : files) test::write_file(dir / name, bytes);
}

TEST_CASE("dcp: tensors chunked over several files are reassembled from their boxes") {
  const Shape shape = {4, 6};
  const std::string whole = test::pattern_bytes(4 * 6 * 4, 3);
  const std::string vector = test::pattern_bytes(5 * 4, 4);
  std::vector<TestTensor> tensors = {
      {"layers.0.w",
       shape,
       {{{0, 0}, {2, 3}, "__0_0.distcp"},
        {{0, 3}, {2, 3}, "__1_0.distcp"},
        {{2, 0}, {2, 3}, "__0_0.distcp"},
        {{2, 3}, {2, 3}, "__1_0.distcp"}}},
      {"norm.weight", {5}, {{{3}, {2}, "__0_0.distcp"}, {{0}, {3}, "__1_0.distcp"}}},
      {"optimizer.state.layers.0.w.exp_avg", shape, {{{0, 0}, {4, 6}, "__1_0.distcp"}}}};
  TempDir dir;
  write_chunked_dcp(dir.path(), tensors, {whole, vector, whole});
  Catalog catalog = read_dcp(dir.path());
  REQUIRE(catalog.tensors.size() == 2);
  CHECK(catalog.files.size() == 2);
  CHECK(catalog.tensors[0].chunks.size() == 4);
  CHECK(gather_tensor_bytes(catalog, catalog.tensors[0]) == whole);
  CHECK(gather_tensor_bytes(catalog, catalog.tensors[1]) == vector);
  REQUIRE(catalog.skipped.size() == 2);
  CHECK(catalog.skipped[0].name == "optimizer.state.layers.0.w.exp_avg");
  CHECK(catalog.skipped[0].reason.find("training state") != std::string::npos);
  CHECK(catalog.skipped[1].name == "train_state.step");
  CHECK(is_dcp_training_state_key("lr_scheduler"));
  CHECK(is_dcp_training_state_key("dataloader.dp_rank_0"));
  CHECK_FALSE(is_dcp_training_state_key("optimizer_head.weight"));

  SUBCASE("overlapping chunks") {
    // Five elements covered in total, but element 2 twice and element 4 never.
    tensors[1].chunks = {{{0}, {3}, "__0_0.distcp"}, {{2}, {2}, "__1_0.distcp"}};
    TempDir bad;
    write_chunked_dcp(bad.path(), tensors, {whole, vector, whole});
    expect_dcp_refused(bad.path(), "overlap");
  }
  SUBCASE("a chunk missing") {
    tensors[0].chunks.pop_back();
    TempDir bad;
    write_chunked_dcp(bad.path(), tensors, {whole, vector, whole});
    expect_dcp_refused(bad.path(), "chunks cover 18 of 24 elements");
  }
  SUBCASE("a chunk outside the tensor") {
    tensors[1].chunks[0].offsets = {4};
    TempDir bad;
    write_chunked_dcp(bad.path(), tensors, {whole, vector, whole});
    expect_dcp_refused(bad.path(), "lies outside the tensor shape");
  }
  SUBCASE("an item whose tensor disagrees with its chunk") {
    tensors[1].chunks[1].item_sizes = {2};
    TempDir bad;
    write_chunked_dcp(bad.path(), tensors, {whole, vector, whole});
    expect_dcp_refused(bad.path(),
                       "holds a tensor of shape [2] but .metadata says the chunk has size [3]");
  }
  SUBCASE("a missing data file") {
    TempDir bad;
    write_chunked_dcp(bad.path(), tensors, {whole, vector, whole});
    fs::remove(bad / "__1_0.distcp");
    expect_dcp_refused(bad.path(), "missing data file '__1_0.distcp'");
  }
  SUBCASE("a truncated data file") {
    TempDir bad;
    write_chunked_dcp(bad.path(), tensors, {whole, vector, whole});
    fs::resize_file(bad / "__0_0.distcp", fs::file_size(bad / "__0_0.distcp") - 100);
    expect_dcp_refused(bad.path(), "beyond the end of the file");
  }
}

// A copy of the PyTorch 2.14 checkpoint whose .metadata names `relative_path` (12 bytes,
// replacing "__0_0.distcp") for every item.
fs::path checkpoint_naming(const TempDir& root, const std::string& relative_path) {
  REQUIRE(relative_path.size() == 12);
  const fs::path dir = root / "ck";
  fs::create_directories(dir);
  const fs::path original = kFixtures / "formats" / "torch2.14_py3.14" / "ck";
  fs::copy_file(original / "__0_0.distcp", dir / "__0_0.distcp");
  std::string metadata = test::read_file(original / ".metadata");
  for (size_t at = metadata.find("__0_0.distcp"); at != std::string::npos;
       at = metadata.find("__0_0.distcp", at))
    metadata.replace(at, 12, relative_path);
  test::write_file(dir / ".metadata", metadata);
  return dir;
}

TEST_CASE("dcp: relative paths that leave the checkpoint directory are refused") {
  {
    TempDir root;
    expect_dcp_refused(checkpoint_naming(root, "../0_0.distc"),
                       "leaves the checkpoint directory ('..'");
  }
  {
    TempDir root;
    expect_dcp_refused(checkpoint_naming(root, "/etc/passwd1"),
                       "leaves the checkpoint directory (absolute");
  }
  {
    TempDir root;
    fs::path dir = checkpoint_naming(root, "link0.distcp");
    fs::copy_file(dir / "__0_0.distcp", root / "outside.distcp");
    fs::create_symlink(root / "outside.distcp", dir / "link0.distcp");
    expect_dcp_refused(dir, "a symbolic link points outside");
    // A symlink that stays inside is fine.
    fs::remove(dir / "link0.distcp");
    fs::create_symlink(dir / "__0_0.distcp", dir / "link0.distcp");
    CHECK(read_dcp(dir).tensors.size() == 3);
  }
  {
    TempDir root;
    fs::path dir = checkpoint_naming(root, "sub/0.distcp");
    fs::create_directories(dir / "sub");
    fs::copy_file(dir / "__0_0.distcp", dir / "sub" / "0.distcp");
    CHECK(read_dcp(dir).tensors.size() == 3);  // subdirectories are inside
  }
  {
    TempDir root;
    expect_dcp_refused(checkpoint_naming(root, "__9_9.distcp"), "missing data file '__9_9.distcp'");
  }
}

TEST_CASE("dcp: corrupt, hostile or absent metadata is refused") {
  TempDir root;
  expect_dcp_refused(root / "nothing", "not a directory");
  expect_dcp_refused(root.path(), "no .metadata file");
  const fs::path original = kFixtures / "formats" / "torch2.6_py3.13" / "ck";
  const fs::path dir = root / "ck";
  fs::create_directories(dir);
  fs::copy_file(original / "__0_0.distcp", dir / "__0_0.distcp");
  const std::string metadata = test::read_file(original / ".metadata");
  for (size_t length = 0; length < metadata.size(); ++length) {
    CAPTURE(length);
    test::write_file(dir / ".metadata", metadata.substr(0, length));
    CHECK_THROWS_KIND(read_dcp(dir), ErrorKind::kBadInput);
  }
  // The Metadata class renamed to a dangerous global of the same length.
  std::string evil = metadata;
  size_t at = evil.find("torch.distributed.checkpoint.metadata");
  REQUIRE(at != std::string::npos);
  // SHORT_BINUNICODE 'torch.distributed.checkpoint.metadata' 'Metadata' STACK_GLOBAL
  // becomes 'subprocess...' 'Popen'-like: rewrite the module only.
  evil.replace(at, 37, "builtins                             ");
  test::write_file(dir / ".metadata", evil);
  expect_dcp_refused(dir, "refusing global builtins");

  PickleWriter not_metadata;
  not_metadata.empty_dict();
  test::write_file(dir / ".metadata", not_metadata.finish());
  expect_dcp_refused(dir, "expected a Metadata, found dict of 0");
}

}  // namespace
}  // namespace ckconv
