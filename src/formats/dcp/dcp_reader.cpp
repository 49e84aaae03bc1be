// DCP .metadata interpretation (docs/formats.md "DCP directories": the classes, what the reader
// tolerates, how items are looked up) and the per-chunk torch.save items of the .distcp files.
#include "formats/dcp/dcp_reader.h"

#include <array>
#include <map>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "formats/pickle/pickle_reader.h"
#include "formats/torch_save/torch_save_reader.h"

namespace ckconv {
namespace {

constexpr std::string_view kFilesystemModule = "torch.distributed.checkpoint.filesystem";
constexpr std::array<std::string_view, 4> kTrainingStateRoots = {"optimizer", "lr_scheduler",
                                                                 "dataloader", "train_state"};

struct ItemLocation {
  std::string relative_path;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// One chunk whose item must be opened: catalog tensor `tensor`, chunk `chunk`.
struct ChunkRequest {
  size_t tensor = 0;
  size_t chunk = 0;
  ItemLocation location;
};

// Reads the value tree of .metadata; every accessor fails naming the file and the field.
class MetadataInterpreter {
 public:
  explicit MetadataInterpreter(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void bad(const std::string& where, const std::string& message) const {
    fail_input(source_ + ": " + where + ": " + message);
  }

  // The state dict BUILD gave an instance of `module`.`cls`; nullptr when there was no BUILD
  // (dataclasses without fields, such as BytesStorageMetadata).
  const PickleValue* state_of(const PickleValue& value, std::string_view module,
                              std::string_view cls, const std::string& where) const {
    if (value.kind != PickleKind::kNewObj || !value.callable().is_global(module, cls))
      bad(where, "expected a " + std::string(cls) + ", found " + describe_pickle_value(value));
    const PickleValue* state = value.state;
    // Objects with __slots__ pickle their state as (dict, slots); take the dict.
    if (state != nullptr && state->is_tuple() && state->items.size() == 2 &&
        state->items[0]->is_dict())
      state = state->items[0];
    return state;
  }
  const PickleValue& dict_state_of(const PickleValue& value, std::string_view module,
                                   std::string_view cls, const std::string& where) const {
    const PickleValue* state = state_of(value, module, cls, where);
    if (state == nullptr || !state->is_dict()) bad(where, std::string(cls) + " has no field dict");
    return *state;
  }
  const PickleValue& field(const PickleValue& state, std::string_view name,
                           const std::string& where) const {
    const PickleValue* value = state.find(name);
    if (value == nullptr) bad(where, "missing field '" + std::string(name) + "'");
    return *value;
  }
  std::string string_of(const PickleValue& value, const std::string& where) const {
    if (!value.is_string()) bad(where, "expected a str, found " + describe_pickle_value(value));
    return value.text;
  }
  uint64_t unsigned_of(const PickleValue& value, const std::string& where) const {
    if (!value.is_int() || value.int_value < 0)
      bad(where, "expected a non-negative int, found " + describe_pickle_value(value));
    return static_cast<uint64_t>(value.int_value);
  }
  // torch.Size((d0, d1, ...)) or a plain tuple.
  Shape shape_of(const PickleValue& value, const std::string& where) const {
    const PickleValue* tuple = &value;
    if (value.is_call_of("torch", "Size")) {
      if (value.kind != PickleKind::kReduce || value.arguments().items.size() != 1)
        bad(where, "malformed torch.Size");
      tuple = value.arguments().items[0];
    }
    if (!tuple->is_tuple())
      bad(where, "expected a torch.Size, found " + describe_pickle_value(value));
    check_tensor_rank(tuple->items.size(), source_ + ": " + where);
    Shape shape;
    for (const PickleValue* item : tuple->items)
      shape.push_back(static_cast<int64_t>(unsigned_of(*item, where)));
    return shape;
  }
  DType dtype_of(const PickleValue& properties, const std::string& where) const {
    const PickleValue* state = state_of(properties, kDcpMetadataModule, "TensorProperties", where);
    // PyTorch >= 2.1 pickles a 5-tuple (dtype, layout, requires_grad, memory_format,
    // pin_memory); older versions the field dict.
    const PickleValue* dtype = nullptr;
    const PickleValue* layout = nullptr;
    if (state != nullptr && state->is_tuple() && state->items.size() >= 2) {
      dtype = state->items[0];
      layout = state->items[1];
    } else if (state != nullptr && state->is_dict()) {
      dtype = state->find("dtype");
      layout = state->find("layout");
    }
    if (dtype == nullptr) bad(where, "TensorProperties without a dtype");
    std::optional<DType> parsed;
    if (dtype->kind == PickleKind::kGlobal && dtype->text == "torch")
      parsed = dtype_from_torch_name(dtype->name);
    if (!parsed) bad(where, "unsupported dtype " + describe_pickle_value(*dtype));
    if (layout != nullptr && layout->is_call_of("torch.serialization", "_get_layout")) {
      const auto& args = layout->arguments().items;
      if (args.size() != 1 || !args[0]->is_string() || args[0]->text != "torch.strided")
        bad(where, "only dense (torch.strided) tensors are supported");
    }
    return *parsed;
  }

 private:
  std::string source_;
};

// The data file `relative_path` names, after checking it stays inside `dir`.
std::filesystem::path resolve_data_file(const std::filesystem::path& dir,
                                        const std::string& relative_path,
                                        const std::string& metadata_source) {
  namespace fs = std::filesystem;
  auto escape = [&](const std::string& why) {
    fail_input(metadata_source + ": relative_path '" + relative_path +
               "' leaves the checkpoint directory (" + why + "); refusing it");
  };
  fs::path relative(relative_path);
  if (relative_path.empty() || relative_path.find('\0') != std::string::npos)
    escape("empty or contains NUL");
  if (relative.is_absolute() || relative.has_root_path()) escape("absolute path");
  for (const fs::path& part : relative)
    if (part == "..") escape("'..' component");
  fs::path full = dir / relative;
  std::error_code error;
  if (!fs::exists(full, error))
    fail_input(dir.string() + ": missing data file '" + relative_path + "' named by .metadata");
  if (!fs::is_regular_file(full, error))
    fail_input(dir.string() + ": data file '" + relative_path +
               "' named by .metadata is not a regular file");
  fs::path real_dir = fs::canonical(dir, error);
  fs::path real_file = fs::canonical(full, error);
  if (error) fail(ErrorKind::kIo, "cannot resolve " + full.string() + ": " + error.message());
  fs::path inside = real_file.lexically_relative(real_dir);
  if (inside.empty() || *inside.begin() == "..") escape("a symbolic link points outside");
  return full;
}

using ItemLocations = std::map<std::pair<std::string, Shape>, ItemLocation>;
// Per data file (relative path), the chunks whose items it holds.
using RequestsByFile = std::map<std::string, std::vector<ChunkRequest>>;

// storage_data as (fqn, chunk offsets) -> item location. MetadataIndex.index is only a hint
// (excluded from equality in PyTorch), so it is not part of the key. Byte items are skipped.
ItemLocations read_item_locations(const MetadataInterpreter& meta,
                                  const PickleValue& storage_data) {
  ItemLocations locations;
  for (const auto& [key, value] : storage_data.entries) {
    const PickleValue& index =
        meta.dict_state_of(*key, kDcpMetadataModule, "MetadataIndex", "storage_data key");
    std::string fqn =
        meta.string_of(meta.field(index, "fqn", "MetadataIndex"), "MetadataIndex.fqn");
    const PickleValue* offset = index.find("offset");
    if (offset == nullptr || offset->is_none()) continue;  // a byte item
    const std::string where = "storage_data['" + fqn + "']";
    Shape offsets = meta.shape_of(*offset, where + ".offset");
    const PickleValue& info = meta.dict_state_of(*value, kFilesystemModule, "_StorageInfo", where);
    if (const PickleValue* transforms = info.find("transform_descriptors"))
      if (!transforms->is_none() &&
          !(transforms->kind == PickleKind::kList && transforms->items.empty()))
        meta.bad(where, "items with transform_descriptors (e.g. compressed) are not supported");
    ItemLocation location{meta.string_of(meta.field(info, "relative_path", where), where),
                          meta.unsigned_of(meta.field(info, "offset", where), where),
                          meta.unsigned_of(meta.field(info, "length", where), where)};
    if (!locations.emplace(std::make_pair(fqn, offsets), location).second)
      meta.bad(where, "two storage_data entries for the chunk at " + shape_to_string(offsets));
  }
  return locations;
}

// The tensor a TensorStorageMetadata describes, its chunks without file placement yet; each
// chunk's item is queued in `requests_by_file` under catalog index `tensor_index`.
CatalogTensor read_tensor_metadata(const MetadataInterpreter& meta, const std::string& fqn,
                                   const PickleValue& tensor_state, const ItemLocations& locations,
                                   size_t tensor_index, RequestsByFile& requests_by_file) {
  const std::string where = "state_dict_metadata['" + fqn + "']";
  CatalogTensor tensor;
  tensor.name = fqn;
  tensor.dtype = meta.dtype_of(meta.field(tensor_state, "properties", where), where);
  tensor.shape = meta.shape_of(meta.field(tensor_state, "size", where), where + ".size");
  const PickleValue& chunks = meta.field(tensor_state, "chunks", where);
  if (chunks.kind != PickleKind::kList) meta.bad(where, "chunks is not a list");
  if (chunks.items.size() > kMaxChunksPerTensor)
    meta.bad(where, std::to_string(chunks.items.size()) + " chunks, more than the limit of " +
                        std::to_string(kMaxChunksPerTensor));
  for (const PickleValue* chunk_value : chunks.items) {
    const PickleValue& chunk_state =
        meta.dict_state_of(*chunk_value, kDcpMetadataModule, "ChunkStorageMetadata", where);
    StoredChunk chunk;
    chunk.offsets = meta.shape_of(meta.field(chunk_state, "offsets", where), where + " chunk");
    chunk.sizes = meta.shape_of(meta.field(chunk_state, "sizes", where), where + " chunk");
    auto location = locations.find({fqn, chunk.offsets});
    if (location == locations.end())
      meta.bad(where, "no storage_data entry for the chunk at " + shape_to_string(chunk.offsets));
    requests_by_file[location->second.relative_path].push_back(
        ChunkRequest{tensor_index, tensor.chunks.size(), location->second});
    tensor.chunks.push_back(std::move(chunk));
  }
  return tensor;
}

// Fills `catalog.tensors` (and `catalog.skipped`) from state_dict_metadata: byte items and
// training state are skipped, model tensors are read with their chunk requests.
void read_tensors_metadata(const MetadataInterpreter& meta, const PickleValue& tensors_meta,
                           const ItemLocations& locations, const std::string& source,
                           Catalog& catalog, RequestsByFile& requests_by_file) {
  std::set<std::string> names;
  check_tensor_count(tensors_meta.entries.size(), source);
  for (const auto& [key, value] : tensors_meta.entries) {
    std::string fqn = meta.string_of(*key, "state_dict_metadata key");
    if (!names.insert(fqn).second) meta.bad("state_dict_metadata", "duplicate key '" + fqn + "'");
    const std::string where = "state_dict_metadata['" + fqn + "']";
    if (value->is_call_of(kDcpMetadataModule, "BytesStorageMetadata")) {
      catalog.skipped.push_back(SkippedItem{fqn, "not a tensor (pickled object)"});
      continue;
    }
    const PickleValue& tensor_state =
        meta.dict_state_of(*value, kDcpMetadataModule, "TensorStorageMetadata", where);
    if (is_dcp_training_state_key(fqn)) {
      catalog.skipped.push_back(SkippedItem{fqn, "training state tensor, not a model weight"});
      continue;
    }
    catalog.tensors.push_back(read_tensor_metadata(meta, fqn, tensor_state, locations,
                                                   catalog.tensors.size(), requests_by_file));
  }
}

// Opens the torch.save item of one chunk in `file` (`size` bytes, index `file_index` of the
// catalog) and places the chunk there after checking the item agrees with .metadata.
void place_chunk(const File& file, uint64_t size, uint32_t file_index, const ChunkRequest& request,
                 CatalogTensor& tensor) {
  StoredChunk& chunk = tensor.chunks[request.chunk];
  const std::string item = file.path().string() + " (item of '" + tensor.name + "' chunk at " +
                           shape_to_string(chunk.offsets) + ", bytes " +
                           std::to_string(request.location.offset) + "+" +
                           std::to_string(request.location.length) + ")";
  if (request.location.offset > size || request.location.length > size - request.location.offset)
    fail_input(item + ": lies beyond the end of the file (" + std::to_string(size) +
               " bytes; truncated?)");
  TorchSaveArchive archive(file, request.location.offset, request.location.length, item);
  std::optional<StoredTensor> stored = archive.tensor(archive.root(), tensor.name);
  if (!stored)
    fail_input(item + ": expected a saved tensor, found " + describe_pickle_value(archive.root()));
  if (stored->shape != chunk.sizes)
    fail_input(item + ": holds a tensor of shape " + shape_to_string(stored->shape) +
               " but .metadata says the chunk has size " + shape_to_string(chunk.sizes));
  if (stored->dtype != tensor.dtype)
    fail_input(item + ": holds " + std::string(dtype_name(stored->dtype)) +
               " data but .metadata says " + std::string(dtype_name(tensor.dtype)));
  chunk.strides = stored->strides;
  chunk.file = file_index;
  chunk.byte_offset = stored->byte_offset;
}

// Places every requested chunk in its data file, adding the files to `catalog.files`; returns
// their sizes. One data file open at a time, however many ranks wrote the checkpoint.
std::vector<uint64_t> place_chunks(const std::filesystem::path& dir, const std::string& source,
                                   const RequestsByFile& requests_by_file, Catalog& catalog) {
  std::vector<uint64_t> file_sizes;
  for (const auto& [relative_path, requests] : requests_by_file) {
    std::filesystem::path path = resolve_data_file(dir, relative_path, source);
    File file = File::open_read(path);
    const uint64_t size = file.size();
    const auto file_index = static_cast<uint32_t>(catalog.files.size());
    catalog.files.push_back(path);
    file_sizes.push_back(size);
    for (const ChunkRequest& request : requests)
      place_chunk(file, size, file_index, request, catalog.tensors[request.tensor]);
  }
  return file_sizes;
}

}  // namespace

bool is_dcp_training_state_key(const std::string& fqn) {
  std::string_view root = std::string_view(fqn).substr(0, fqn.find('.'));
  for (std::string_view training_root : kTrainingStateRoots)
    if (root == training_root) return true;
  return false;
}

Catalog read_dcp(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(dir, error))
    fail_input(dir.string() + ": not a directory (a DCP checkpoint is a directory)");
  const fs::path metadata_path = dir / ".metadata";
  if (!fs::exists(metadata_path, error))
    fail_input(dir.string() + ": no .metadata file, not a torch.distributed.checkpoint directory");
  const std::string source = metadata_path.string();
  PickleDocument document =
      read_pickle(read_small_file(metadata_path, kMaxDcpMetadataBytes), source);
  MetadataInterpreter meta(source);

  const PickleValue& state =
      meta.dict_state_of(document.root(), kDcpMetadataModule, "Metadata", "root object");
  const PickleValue& tensors_meta = meta.field(state, "state_dict_metadata", "Metadata");
  const PickleValue& storage_data = meta.field(state, "storage_data", "Metadata");
  if (!tensors_meta.is_dict()) meta.bad("state_dict_metadata", "expected a dict");
  if (!storage_data.is_dict()) meta.bad("storage_data", "expected a dict");
  const ItemLocations locations = read_item_locations(meta, storage_data);

  Catalog catalog;
  catalog.format = CheckpointFormat::kDcp;
  catalog.path = dir;
  RequestsByFile requests_by_file;
  read_tensors_metadata(meta, tensors_meta, locations, source, catalog, requests_by_file);
  std::vector<uint64_t> file_sizes = place_chunks(dir, source, requests_by_file, catalog);
  for (const CatalogTensor& tensor : catalog.tensors)
    validate_tensor_chunks(tensor, file_sizes, dir.string());
  return catalog;
}

}  // namespace ckconv
