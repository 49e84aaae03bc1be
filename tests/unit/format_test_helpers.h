// Test-only helpers for the DCP / torch.save / pickle / zip tests: temporary directories,
// whole-file I/O, gathering a catalog tensor's bytes through its chunks (what the executor
// does, done naively), and materialising an FilePlan the way the executor will
// (literals, then tensor bytes at their placements, then CRC-32 patches).
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "formats/catalog.h"
#include "formats/file_plan.h"
#include "formats/torch_save/zip_writer.h"

namespace ckconv::test {

namespace fs = std::filesystem;

inline const fs::path kFixtures = CKCONV_FIXTURES_DIR;
inline const std::vector<std::string> kTorchVersions = {"torch2.6_py3.13", "torch2.14_py3.14"};

// Runs `action`, which must throw an Error of `kind` whose message contains `fragment`.
template <typename Action>
void expect_error(Action action, ErrorKind kind, const std::string& fragment) {
  try {
    action();
    FAIL("expected an error containing \"" << fragment << "\", nothing was thrown");
  } catch (const Error& error) {
    CHECK(static_cast<int>(error.kind()) == static_cast<int>(kind));
    CHECK_MESSAGE(std::string(error.what()).find(fragment) != std::string::npos,
                  "message \"" << error.what() << "\" lacks \"" << fragment << "\"");
  }
}

// zlib's CRC-32, the zip polynomial.
inline uint32_t crc32_of(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32_z(0, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ckconv-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Row-major contiguous bytes of `tensor`, assembled from its chunks.
inline std::string gather_tensor_bytes(const Catalog& catalog, const CatalogTensor& tensor) {
  const int64_t element = dtype_size(tensor.dtype);
  const Shape whole_strides = contiguous_strides(tensor.shape);
  std::string out(static_cast<size_t>(num_elements(tensor.shape) * element), '\0');
  for (const StoredChunk& chunk : tensor.chunks) {
    const int64_t count = num_elements(chunk.sizes);
    if (count == 0) continue;
    // Only the byte range the chunk spans is read, checked once to lie inside its file.
    int64_t last = 0;
    for (size_t d = 0; d < chunk.sizes.size(); ++d) last += (chunk.sizes[d] - 1) * chunk.strides[d];
    const uint64_t extent = static_cast<uint64_t>((last + 1) * element);
    const fs::path& path = catalog.files.at(chunk.file);
    REQUIRE(chunk.byte_offset + extent <= fs::file_size(path));
    std::string bytes(static_cast<size_t>(extent), '\0');
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(chunk.byte_offset));
    REQUIRE(in.read(bytes.data(), static_cast<std::streamsize>(extent)));
    Shape index(chunk.sizes.size(), 0);
    for (int64_t n = 0; n < count; ++n) {
      int64_t source = 0;
      int64_t target = 0;
      for (size_t d = 0; d < index.size(); ++d) {
        source += index[d] * chunk.strides[d];
        target += (chunk.offsets[d] + index[d]) * whole_strides[d];
      }
      std::copy_n(bytes.data() + source * element, element, out.data() + target * element);
      for (size_t d = index.size(); d-- > 0;) {
        if (++index[d] < chunk.sizes[d]) break;
        index[d] = 0;
      }
    }
  }
  return out;
}

// Writes `file_plan` under `dir` as the executor will, with `tensor_bytes[i]` the row-major bytes
// of input tensor i. Also checks that literals and placements tile each file exactly.
inline void materialize(const FilePlan& file_plan, const std::vector<std::string>& tensor_bytes,
                        const fs::path& dir) {
  std::vector<std::string> contents;
  std::vector<std::vector<int>> writes;  // per byte: how many writes covered it
  for (const PlannedFile& file : file_plan.files) {
    contents.emplace_back(file.size_bytes, '\0');
    writes.emplace_back(file.size_bytes, 0);
    for (const LiteralBytes& literal : file.literals) {
      REQUIRE(literal.offset + literal.bytes.size() <= file.size_bytes);
      contents.back().replace(literal.offset, literal.bytes.size(), literal.bytes);
      for (size_t i = 0; i < literal.bytes.size(); ++i) ++writes.back()[literal.offset + i];
    }
  }
  for (const TensorPlacement& placement : file_plan.placements) {
    const std::string& bytes = tensor_bytes.at(placement.tensor);
    REQUIRE(placement.byte_offset + bytes.size() <= contents.at(placement.file).size());
    contents[placement.file].replace(placement.byte_offset, bytes.size(), bytes);
    for (size_t i = 0; i < bytes.size(); ++i) ++writes[placement.file][placement.byte_offset + i];
  }
  for (size_t f = 0; f < contents.size(); ++f)
    for (size_t i = 0; i < writes[f].size(); ++i)
      REQUIRE_MESSAGE(writes[f][i] == 1, file_plan.files[f].relative_path
                                             << " byte " << i << " written " << writes[f][i]
                                             << " times");
  for (const Crc32Patch& patch : file_plan.crc_patches) {
    const TensorPlacement& placement = file_plan.placements.at(patch.placement);
    const std::string& bytes = tensor_bytes.at(placement.tensor);
    uint32_t crc = crc32_of(bytes);
    for (int i = 0; i < 4; ++i)
      contents.at(patch.file)[patch.offset + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  }
  for (size_t f = 0; f < contents.size(); ++f) {
    fs::path path = dir / file_plan.files[f].relative_path;
    fs::create_directories(path.parent_path());
    write_file(path, contents[f]);
  }
}

// Tensor-by-tensor equality of two catalogs: names (as sets), dtypes, shapes, bytes.
inline void check_same_tensors(const Catalog& actual, const Catalog& expected) {
  std::vector<std::string> actual_names, expected_names;
  for (const auto& tensor : actual.tensors) actual_names.push_back(tensor.name);
  for (const auto& tensor : expected.tensors) expected_names.push_back(tensor.name);
  std::sort(actual_names.begin(), actual_names.end());
  std::sort(expected_names.begin(), expected_names.end());
  REQUIRE(actual_names == expected_names);
  for (const CatalogTensor& tensor : expected.tensors) {
    CAPTURE(tensor.name);
    const CatalogTensor* other = actual.find(tensor.name);
    REQUIRE(other != nullptr);
    CHECK(other->dtype == tensor.dtype);
    CHECK(other->shape == tensor.shape);
    CHECK(gather_tensor_bytes(actual, *other) == gather_tensor_bytes(expected, tensor));
  }
}

inline std::vector<OutputTensorSpec> specs_of(const Catalog& catalog) {
  std::vector<OutputTensorSpec> specs;
  for (const CatalogTensor& tensor : catalog.tensors)
    specs.push_back(OutputTensorSpec{tensor.name, tensor.dtype, tensor.shape});
  return specs;
}

inline std::vector<std::string> bytes_of(const Catalog& catalog) {
  std::vector<std::string> bytes;
  for (const CatalogTensor& tensor : catalog.tensors)
    bytes.push_back(gather_tensor_bytes(catalog, tensor));
  return bytes;
}

// Deterministic, non-constant content for a tensor of `size` bytes.
inline std::string pattern_bytes(size_t size, unsigned seed) {
  std::string bytes(size, '\0');
  uint32_t state = seed * 2654435761u + 1;
  for (char& c : bytes) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  return bytes;
}

}  // namespace ckconv::test
