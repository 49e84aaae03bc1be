// Tensor records of torch.save (docs/formats.md "torch.save zip archives"; PyTorch torch/_utils.py
// rebuild functions and serialization.py persistent_load).
#include "formats/torch_save/torch_save_reader.h"

#include <set>

#include "core/error.h"
#include "formats/training_state.h"

namespace ckconv {
namespace {

const PickleValue& argument(const PickleValue& arguments, size_t index) {
  return *arguments.items[index];
}

bool is_torch_utils_call(const PickleValue& value) {
  return value.kind == PickleKind::kReduce && value.callable().kind == PickleKind::kGlobal &&
         (value.callable().text == "torch._utils" || value.callable().text == "torch._tensor");
}

// Failures while reading one tensor record name the archive and the tensor.
class TensorRecordErrors {
 public:
  TensorRecordErrors(const std::string& source, const std::string& what)
      : context_(source + ": tensor '" + what + "'") {}
  [[noreturn]] void bad(const std::string& message) const { fail_input(context_ + ": " + message); }
  const std::string& context() const { return context_; }

 private:
  std::string context_;
};

// The _rebuild_tensor* call of a tensor expression: nn.Parameter wraps it as
// _rebuild_parameter(data, requires_grad, hooks).
const PickleValue& unwrap_parameter(const PickleValue& value, const TensorRecordErrors& errors) {
  if (!value.is_call_of("torch._utils", "_rebuild_parameter") &&
      !value.is_call_of("torch._utils", "_rebuild_parameter_with_state"))
    return value;
  if (value.arguments().items.size() < 3) errors.bad("_rebuild_parameter with too few arguments");
  const PickleValue& data = argument(value.arguments(), 0);
  if (!is_torch_utils_call(data)) errors.bad("parameter data is " + describe_pickle_value(data));
  return data;
}

// Checks `call` is a supported rebuild function with its argument count; the optional last
// argument holds tensor metadata such as the conjugate/negative bits, which must be empty.
void check_rebuild_call(const PickleValue& call, const TensorRecordErrors& errors) {
  const std::string& function = call.callable().name;
  const auto& args = call.arguments().items;
  size_t min_args = 0;
  if (call.is_call_of("torch._utils", "_rebuild_tensor_v2")) {
    min_args = 6;
  } else if (call.is_call_of("torch._utils", "_rebuild_tensor_v3")) {
    min_args = 7;
  } else if (call.is_call_of("torch._utils", "_rebuild_tensor")) {
    min_args = 4;
  } else {
    errors.bad("unsupported tensor representation " + call.callable().text + "." + function +
               " (quantized, sparse, meta or subclassed tensors cannot be converted)");
  }
  if (args.size() < min_args || args.size() > min_args + 1)
    errors.bad(function + " with " + std::to_string(args.size()) + " arguments");
  if (function != "_rebuild_tensor" && args.size() == min_args + 1) {
    const PickleValue& metadata = *args.back();
    if (!(metadata.is_dict() && metadata.entries.empty()) && !metadata.is_none())
      errors.bad("tensor metadata (conjugate/negative bits) is not supported");
  }
}

struct StorageReference {
  std::string key;
  DType dtype = DType::kU8;
  int64_t size_bytes = 0;
};

// Persistent id: ('storage', storage_type, key, location, numel).
StorageReference read_storage_reference(const PickleValue& persistent,
                                        const TensorRecordErrors& errors) {
  if (persistent.kind != PickleKind::kPersistentId) errors.bad("storage is not a persistent id");
  const PickleValue& id = *persistent.items[0];
  if (!id.is_tuple() || id.items.size() != 5 || !id.items[0]->is_string() ||
      id.items[0]->text != "storage" || id.items[1]->kind != PickleKind::kGlobal ||
      !id.items[2]->is_string() || !id.items[4]->is_int())
    errors.bad("malformed storage persistent id (" + describe_pickle_value(id) + ")");
  const PickleValue& storage_type = *id.items[1];
  std::optional<DType> storage_dtype;
  if (storage_type.is_global("torch.storage", "UntypedStorage"))
    storage_dtype = DType::kU8;
  else if (storage_type.text == "torch")
    storage_dtype = dtype_from_legacy_storage_name(storage_type.name);
  if (!storage_dtype)
    errors.bad("unsupported storage type " + storage_type.text + "." + storage_type.name);
  int64_t storage_numel = id.items[4]->int_value;
  int64_t storage_bytes = 0;
  if (storage_numel < 0 || mul_overflows(storage_numel, dtype_size(*storage_dtype), &storage_bytes))
    errors.bad("invalid storage size " + std::to_string(storage_numel));
  return StorageReference{id.items[2]->text, *storage_dtype, storage_bytes};
}

// The element type: _rebuild_tensor_v3 names it (argument 6), the others take the storage's.
DType read_tensor_dtype(const PickleValue& call, DType storage_dtype,
                        const TensorRecordErrors& errors) {
  DType result = storage_dtype;
  if (call.callable().name == "_rebuild_tensor_v3") {
    const PickleValue& dtype = *call.arguments().items[6];
    std::optional<DType> parsed;
    if (dtype.kind == PickleKind::kGlobal && dtype.text == "torch")
      parsed = dtype_from_torch_name(dtype.name);
    if (!parsed) errors.bad("unsupported dtype " + describe_pickle_value(dtype));
    result = *parsed;
  }
  if (dtype_size(result) == 0)
    errors.bad("dtype " + std::string(dtype_name(result)) + " has no whole-byte element size");
  return result;
}

// A size or stride tuple of non-negative ints; torch.Size((...)) is accepted where a tuple is
// expected.
Shape read_int_tuple(const PickleValue& value, const char* field,
                     const TensorRecordErrors& errors) {
  const PickleValue* tuple = &value;
  if (tuple->is_call_of("torch", "Size") && tuple->arguments().items.size() == 1)
    tuple = tuple->arguments().items[0];
  if (!tuple->is_tuple()) errors.bad(std::string(field) + " is " + describe_pickle_value(*tuple));
  check_tensor_rank(tuple->items.size(), errors.context() + " " + field);
  Shape result;
  for (const PickleValue* item : tuple->items) {
    if (!item->is_int() || item->int_value < 0)
      errors.bad(std::string(field) + " holds " + describe_pickle_value(*item));
    result.push_back(item->int_value);
  }
  return result;
}

// Checks the largest element index the strides reach lies within the storage's bytes.
void check_within_storage(const StoredTensor& tensor, int64_t storage_offset, int64_t storage_bytes,
                          const TensorRecordErrors& errors) {
  int64_t last = storage_offset;
  for (size_t d = 0; d < tensor.shape.size(); ++d) {
    int64_t reach = 0;
    if (mul_overflows(tensor.shape[d] - 1, tensor.strides[d], &reach) ||
        add_overflows(last, reach, &last))
      errors.bad("strides overflow");
  }
  int64_t end_byte = 0;
  if (add_overflows(last, 1, &last) || mul_overflows(last, dtype_size(tensor.dtype), &end_byte) ||
      end_byte > storage_bytes)
    errors.bad("size " + shape_to_string(tensor.shape) + " with stride " +
               shape_to_string(tensor.strides) + " at storage offset " +
               std::to_string(storage_offset) + " reaches past its storage of " +
               std::to_string(storage_bytes) + " bytes");
}

}  // namespace

TorchSaveArchive::TorchSaveArchive(const File& file, uint64_t offset, uint64_t length,
                                   std::string source)
    : zip_(file, offset, length, std::move(source)) {
  if (zip_.entries().empty())
    fail_input(zip_.source() + ": empty zip archive, not a torch.save file");
  // PyTorch takes the record prefix from the first entry (inline_container.cc).
  const std::string& first = zip_.entries().front().name;
  size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0)
    fail_input(zip_.source() + ": first zip entry '" + first +
               "' has no '<archive>/' prefix, not a torch.save file");
  prefix_ = first.substr(0, slash + 1);
  const ZipEntry* data_pickle = zip_.find(prefix_ + "data.pkl");
  if (data_pickle == nullptr)
    fail_input(zip_.source() + ": no '" + prefix_ + "data.pkl' record, not a torch.save file");
  if (const ZipEntry* byteorder = zip_.find(prefix_ + "byteorder")) {
    std::string order = zip_.read(*byteorder, 16);
    if (order != "little")
      fail_input(zip_.source() + ": byte order '" + order +
                 "' is not supported (only little-endian archives)");
  }
  pickle_ = read_pickle(zip_.read(*data_pickle, kMaxDataPickleBytes),
                        zip_.source() + " (" + data_pickle->name + ")");
}

const TorchSaveArchive::Storage& TorchSaveArchive::storage(const std::string& key,
                                                           const std::string& what) const {
  auto found = storages_.find(key);
  if (found != storages_.end()) return found->second;
  const ZipEntry* entry = zip_.find(prefix_ + "data/" + key);
  if (entry == nullptr)
    fail_input(source() + ": tensor '" + what + "' uses storage '" + key +
               "' but the archive has no record '" + prefix_ + "data/" + key + "'");
  Storage storage{zip_.data_offset(*entry), entry->size_bytes};
  return storages_.emplace(key, storage).first->second;
}

std::optional<StoredTensor> TorchSaveArchive::tensor(const PickleValue& value,
                                                     const std::string& what) const {
  if (!is_torch_utils_call(value)) return std::nullopt;
  const TensorRecordErrors errors(source(), what);
  const PickleValue& call = unwrap_parameter(value, errors);
  check_rebuild_call(call, errors);
  const auto& args = call.arguments().items;
  const StorageReference reference = read_storage_reference(*args[0], errors);

  StoredTensor tensor;
  tensor.dtype = read_tensor_dtype(call, reference.dtype, errors);
  if (!args[1]->is_int() || args[1]->int_value < 0) errors.bad("invalid storage offset");
  int64_t storage_offset = args[1]->int_value;
  tensor.shape = read_int_tuple(*args[2], "size", errors);
  tensor.strides = read_int_tuple(*args[3], "stride", errors);
  if (tensor.strides.size() != tensor.shape.size())
    errors.bad("stride " + shape_to_string(tensor.strides) + " does not match size " +
               shape_to_string(tensor.shape));
  int64_t count = checked_num_elements(tensor.shape, errors.context());

  const Storage& stored = storage(reference.key, what);
  if (static_cast<uint64_t>(reference.size_bytes) > stored.size_bytes)
    errors.bad("storage '" + reference.key + "' declares " + std::to_string(reference.size_bytes) +
               " bytes but its record holds " + std::to_string(stored.size_bytes));
  if (count > 0) check_within_storage(tensor, storage_offset, reference.size_bytes, errors);
  int64_t offset_bytes = 0;
  if (mul_overflows(storage_offset, dtype_size(tensor.dtype), &offset_bytes))
    errors.bad("storage offset overflows");
  tensor.byte_offset = stored.data_offset + static_cast<uint64_t>(offset_bytes);
  return tensor;
}

namespace {

// Flattens nested containers of a torch.save root into catalog entries, with dotted names.
class StateDictFlattener {
 public:
  StateDictFlattener(const TorchSaveArchive& archive, Catalog& catalog)
      : archive_(archive), catalog_(catalog) {}

  void visit(const PickleValue& value, const std::string& name, int depth) {
    if (depth > kMaxPickleNestingDepth)
      fail_input(archive_.source() + ": '" + name + "' is nested more than " +
                 std::to_string(kMaxPickleNestingDepth) + " levels deep");
    if (std::optional<StoredTensor> stored = archive_.tensor(value, name)) {
      add_name(name);
      if (!training_state_group(name).empty()) {  // a full training checkpoint, exported
        catalog_.skipped.push_back(SkippedItem{name, "training state tensor, not a model weight"});
        return;
      }
      CatalogTensor tensor;
      tensor.name = name;
      tensor.dtype = stored->dtype;
      tensor.shape = stored->shape;
      tensor.chunks.push_back(StoredChunk{Shape(stored->shape.size(), 0), stored->shape,
                                          stored->strides, 0, stored->byte_offset});
      catalog_.tensors.push_back(std::move(tensor));
      return;
    }
    if (value.is_dict()) {
      for (const auto& [key, child] : value.entries) {
        std::string part;
        if (key->is_string())
          part = key->text;
        else if (key->is_int())
          part = std::to_string(key->int_value);
        else
          fail_input(archive_.source() + ": dict key under '" + name + "' is " +
                     describe_pickle_value(*key) + ", expected str");
        visit(*child, name.empty() ? part : name + "." + part, depth + 1);
      }
      return;
    }
    if ((value.kind == PickleKind::kList || value.kind == PickleKind::kTuple) &&
        holds_structure(value)) {
      for (size_t i = 0; i < value.items.size(); ++i)
        visit(*value.items[i], name + "." + std::to_string(i), depth + 1);
      return;
    }
    add_name(name);
    catalog_.skipped.push_back(
        SkippedItem{name, "not a tensor (" + describe_pickle_value(value) + ")"});
  }

 private:
  // DCP flattens lists that contain tensors or containers; lists of plain values stay one item.
  static bool holds_structure(const PickleValue& list) {
    for (const PickleValue* item : list.items)
      if (item->is_dict() || item->kind == PickleKind::kList || item->is_tuple() ||
          item->kind == PickleKind::kReduce)
        return true;
    return false;
  }
  void add_name(const std::string& name) {
    check_tensor_count(names_.size() + 1, archive_.source());
    if (!names_.insert(name).second)
      fail_input(archive_.source() + ": duplicate key '" + name + "'");
  }

  const TorchSaveArchive& archive_;
  Catalog& catalog_;
  std::set<std::string> names_;
};

}  // namespace

Catalog read_torch_save(const std::filesystem::path& path) {
  File file = File::open_read(path);
  uint64_t size = file.size();
  TorchSaveArchive archive(file, 0, size, path.string());
  Catalog catalog;
  catalog.format = CheckpointFormat::kTorchSave;
  catalog.path = path;
  catalog.files.push_back(path);
  if (!archive.root().is_dict())
    fail_input(path.string() + ": the saved object is " + describe_pickle_value(archive.root()) +
               ", expected a state dict (a dict of tensors)");
  StateDictFlattener(archive, catalog).visit(archive.root(), "", 0);
  for (const CatalogTensor& tensor : catalog.tensors)
    validate_tensor_chunks(tensor, {size}, path.string());
  return catalog;
}

}  // namespace ckconv
