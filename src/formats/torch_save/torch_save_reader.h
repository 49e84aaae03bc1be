// Reads torch.save archives (docs/formats.md "torch.save zip archives"): the zip directory,
// data.pkl decoded by the restricted pickle reader, and the storages' byte positions. Tensor data
// is never read.
//
// Tensors are recognised in the forms torch.save pickles dense CPU tensors in:
// torch._utils._rebuild_tensor_v2 / _rebuild_tensor_v3 (legacy typed or untyped storages,
// storage offsets and arbitrary non-negative strides, storages shared between tensors),
// _rebuild_tensor, and nn.Parameter via _rebuild_parameter(_with_state). Quantized, sparse,
// subclassed or conjugated tensors and big-endian archives are refused by name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/file.h"
#include "core/shape.h"
#include "formats/catalog.h"
#include "formats/pickle/pickle_reader.h"
#include "formats/torch_save/zip_reader.h"

namespace ckconv {

inline constexpr uint64_t kMaxDataPickleBytes = uint64_t{1} << 30;

// Where one tensor's elements are: element i (a multi-index) is at byte
// `byte_offset + sum(i[d] * strides[d]) * dtype_size(dtype)` of the file.
struct StoredTensor {
  DType dtype = DType::kF32;
  Shape shape;
  Shape strides;
  uint64_t byte_offset = 0;
};

// One torch.save archive at [offset, offset + length) of `file` (which must outlive it).
class TorchSaveArchive {
 public:
  TorchSaveArchive(const File& file, uint64_t offset, uint64_t length, std::string source);

  const PickleValue& root() const { return pickle_.root(); }
  // The tensor `value` describes, or std::nullopt when it is not a tensor. Throws kBadInput,
  // naming `what`, for tensors ckconv cannot read or whose storage is missing or too short.
  std::optional<StoredTensor> tensor(const PickleValue& value, const std::string& what) const;
  const std::string& source() const { return zip_.source(); }

 private:
  struct Storage {
    uint64_t data_offset = 0;  // absolute
    uint64_t size_bytes = 0;
  };
  const Storage& storage(const std::string& key, const std::string& what) const;

  ZipReader zip_;
  std::string prefix_;  // "<archive>/"
  PickleDocument pickle_;
  mutable std::map<std::string, Storage> storages_;
};

// Catalog of a state-dict-like torch.save file: a dict (or OrderedDict) whose tensors become
// catalog tensors; nested dicts and lists are flattened to dotted names as DCP does
// ("train_state.step", "misc.0"); values that are not tensors, and tensors of the training state
// (formats/training_state.h: a full training checkpoint exported), are listed as skipped.
Catalog read_torch_save(const std::filesystem::path& path);

}  // namespace ckconv
