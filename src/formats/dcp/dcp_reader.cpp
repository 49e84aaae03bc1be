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
#include "formats/training_state.h"

namespace ckconv {
namespace {

constexpr std::string_view kFilesystemModule = "torch.distributed.checkpoint.filesystem";

struct ItemLocation {
  std::string relative_path;
  uint64_t offset = 0;
  uint64_t length = 0;
  // _StorageInfo.transform_descriptors (PyTorch 2.14's stream transforms, e.g.
  // "stream.zstd/1"); refused when a model tensor's item has any.
  std::vector<std::string> transforms;
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
    ItemLocation location{meta.string_of(meta.field(info, "relative_path", where), where),
                          meta.unsigned_of(meta.field(info, "offset", where), where),
                          meta.unsigned_of(meta.field(info, "length", where), where),
                          {}};
    if (const PickleValue* transforms = info.find("transform_descriptors");
        transforms != nullptr && !transforms->is_none()) {
      if (transforms->kind != PickleKind::kList && !transforms->is_tuple())
        meta.bad(where, "transform_descriptors is not a list");
      for (const PickleValue* descriptor : transforms->items)
        location.transforms.push_back(
            meta.string_of(*descriptor, where + ".transform_descriptors"));
    }
    if (!locations.emplace(std::make_pair(fqn, offsets), location).second)
      meta.bad(where, "two storage_data entries for the chunk at " + shape_to_string(offsets));
  }
  return locations;
}

// Stream transforms (FileSystemWriter(_extensions=[...]), docs/formats.md "Storage features
// ckconv refuses") re-encode each item; ckconv maps items in place and decodes none.
[[noreturn]] void refuse_transforms(const MetadataInterpreter& meta, const std::string& where,
                                    const ItemLocation& location) {
  std::string names;
  bool zstd = false;
  for (const std::string& descriptor : location.transforms) {
    names += (names.empty() ? "'" : ", '") + descriptor + "'";
    zstd = zstd || descriptor.rfind("stream.zstd", 0) == 0;
  }
  meta.bad(where,
           "the item passes through the DCP stream transform " + names +
               (zstd ? " (zstd compression, FileSystemWriter(_extensions=[ZStandard()]))" : "") +
               ", which ckconv does not decode; load the checkpoint with PyTorch and "
               "save it again without _extensions");
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
    if (!location->second.transforms.empty()) refuse_transforms(meta, where, location->second);
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
    if (!training_state_group(fqn).empty()) {
      catalog.skipped.push_back(SkippedItem{fqn, "training state tensor, not a model weight"});
      continue;
    }
    catalog.tensors.push_back(read_tensor_metadata(meta, fqn, tensor_state, locations,
                                                   catalog.tensors.size(), requests_by_file));
  }
}

// FileSystemWriter(serialization_format=SAFETENSORS) appends one safetensors file to each data
// file instead of a torch.save item per tensor, and .metadata points every tensor at its start.
// PyTorch's own FileSystemReader cannot load that layout (torch.load fails on it), so it is
// refused by name rather than reported as a damaged zip.
void refuse_safetensors_item(const File& file, uint64_t size, uint64_t offset,
                             const std::string& item) {
  std::array<uint8_t, 9> head{};
  if (size - offset < head.size()) return;
  file.read_at(head.data(), head.size(), offset);
  if (head[0] == 'P' && head[1] == 'K') return;
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | head[i];
  if (head[8] != '{' || header_bytes > size - offset - 8) return;
  fail_input(item +
             ": holds a safetensors header, not a torch.save archive: the checkpoint was "
             "written with FileSystemWriter(serialization_format=SerializationFormat.SAFETENSORS), "
             "which ckconv does not read (nor does PyTorch's FileSystemReader); save it again "
             "with the default torch_save serialization");
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
  refuse_safetensors_item(file, size, request.location.offset, item);
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
  return !training_state_group(fqn).empty();
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
