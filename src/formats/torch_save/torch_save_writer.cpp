// torch.save layout (docs/formats.md "torch.save zip archives") and the tensor pickle of PyTorch's
// Tensor._reduce_ex_internal for dense contiguous CPU tensors.
#include "formats/torch_save/torch_save_writer.h"

#include <algorithm>
#include <set>

#include "core/error.h"

namespace ckconv {
namespace {

// Python's pickler batches SETITEMS by this many entries; readers accept any count.
constexpr size_t kSetItemsBatch = 1000;

void check_writable(const OutputTensorSpec& tensor) {
  if (dtype_size(tensor.dtype) == 0 || dtype_torch_name(tensor.dtype).empty())
    fail_input("tensor '" + tensor.name + "': dtype " + std::string(dtype_name(tensor.dtype)) +
               " cannot be stored in a torch.save archive");
  checked_num_elements(tensor.shape, "tensor '" + tensor.name + "'");
}

}  // namespace

void write_tensor_pickle(PickleWriter& writer, const OutputTensorSpec& tensor,
                         const std::string& storage_key) {
  check_writable(tensor);
  std::string_view legacy_storage = dtype_legacy_storage_name(tensor.dtype);
  bool typed = !legacy_storage.empty();
  int64_t count = num_elements(tensor.shape);
  writer.global("torch._utils", typed ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
  size_t argument_count = typed ? 6 : 7;
  writer.begin_tuple(argument_count);
  // Persistent id ('storage', storage_type, key, location, numel): numel counts elements of
  // the storage's dtype, which is bytes for an UntypedStorage.
  writer.begin_tuple(5);
  writer.string("storage");
  if (typed)
    writer.global("torch", legacy_storage);
  else
    writer.global("torch.storage", "UntypedStorage");
  writer.string(storage_key);
  writer.string("cpu");
  writer.integer(typed ? count : count * dtype_size(tensor.dtype));
  writer.end_tuple(5);
  writer.persistent_id();
  writer.integer(0);  // storage offset
  writer.int_tuple(tensor.shape);
  writer.int_tuple(contiguous_strides(tensor.shape));
  writer.boolean(false);                        // requires_grad
  writer.global("collections", "OrderedDict");  // backward hooks: OrderedDict()
  writer.begin_tuple(0);
  writer.end_tuple(0);
  writer.reduce();
  if (!typed) writer.global("torch", dtype_torch_name(tensor.dtype));
  writer.end_tuple(argument_count);
  writer.reduce();
}

PlannedZip plan_torch_save_archive(const std::string& archive_name, const std::string& data_pickle,
                                   const std::vector<uint64_t>& storage_sizes_bytes) {
  const std::string prefix = archive_name + "/";
  std::vector<ZipEntrySpec> entries;
  auto record = [&](const std::string& name, std::string content) {
    uint64_t size = content.size();
    entries.push_back(ZipEntrySpec{prefix + name, size, std::move(content)});
  };
  record("data.pkl", data_pickle);
  record(".format_version", "1");  // storages in numeric key order (PyTorch PR #143880)
  record(".storage_alignment", "64");
  record("byteorder", "little");
  for (size_t i = 0; i < storage_sizes_bytes.size(); ++i)
    entries.push_back(
        ZipEntrySpec{prefix + "data/" + std::to_string(i), storage_sizes_bytes[i], std::nullopt});
  record("version", "3\n");
  return plan_stored_zip(entries);
}

FilePlan plan_torch_save(const std::vector<OutputTensorSpec>& tensors,
                         const std::string& archive_name) {
  if (archive_name.empty() || archive_name.find('/') != std::string::npos)
    fail(ErrorKind::kUsage, "invalid torch.save archive name '" + archive_name + "'");
  std::set<std::string> names;
  for (const OutputTensorSpec& tensor : tensors)
    if (!names.insert(tensor.name).second)
      fail_input("duplicate tensor name '" + tensor.name + "' for torch.save");

  PickleWriter writer;
  writer.empty_dict();
  std::vector<uint64_t> storage_sizes;
  for (size_t start = 0; start < tensors.size(); start += kSetItemsBatch) {
    size_t end = std::min(tensors.size(), start + kSetItemsBatch);
    writer.mark();
    for (size_t i = start; i < end; ++i) {
      writer.string(tensors[i].name);
      write_tensor_pickle(writer, tensors[i], std::to_string(i));
      storage_sizes.push_back(static_cast<uint64_t>(tensors[i].size_bytes()));
    }
    writer.set_items();
  }
  PlannedZip zip = plan_torch_save_archive(archive_name, writer.finish(), storage_sizes);

  FilePlan file_plan;
  PlannedFile file;
  file.relative_path = archive_name + ".pt";
  file.size_bytes = zip.size_bytes;
  file.literals = std::move(zip.literals);
  file_plan.files.push_back(std::move(file));
  for (size_t i = 0; i < tensors.size(); ++i) {
    file_plan.placements.push_back(TensorPlacement{i, 0, zip.data_offsets[kFirstStorageEntry + i]});
    for (uint64_t offset : zip.crc_offsets[kFirstStorageEntry + i])
      file_plan.crc_patches.push_back(Crc32Patch{i, 0, offset});
  }
  return file_plan;
}

}  // namespace ckconv
