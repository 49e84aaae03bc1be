// Safetensors catalog reader: one file, or a directory with an index and its shards.
#include "formats/safetensors/safetensors_reader.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <unordered_set>

#include "core/error.h"
#include "core/file.h"
#include "formats/safetensors/safetensors_header.h"
#include "formats/safetensors/safetensors_index.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

void append_file(Catalog& catalog, const fs::path& file_path, const SafetensorsHeader& header) {
  check_tensor_count(catalog.tensors.size() + header.tensors.size(), file_path.string());
  const auto file_index = static_cast<uint32_t>(catalog.files.size());
  catalog.files.push_back(file_path);
  if (file_index == 0 && header.metadata) catalog.metadata = *header.metadata;
  std::vector<uint64_t> file_sizes(file_index + 1, 0);
  file_sizes[file_index] = header.data_section_offset() + header.data_size_bytes;
  for (const SafetensorsEntry& entry : header.tensors) {
    CatalogTensor tensor;
    tensor.name = entry.name;
    tensor.dtype = entry.dtype;
    tensor.shape = entry.shape;
    StoredChunk chunk;
    chunk.offsets.assign(entry.shape.size(), 0);
    chunk.sizes = entry.shape;
    chunk.strides = contiguous_strides(entry.shape);
    chunk.file = file_index;
    chunk.byte_offset = header.data_section_offset() + entry.data_begin;
    tensor.chunks.push_back(std::move(chunk));
    // The header check already proved the bytes lie in the file; this re-checks the catalog
    // contract. Sub-byte dtypes (F4, F6) have no element size: cataloged for `inspect`, and
    // refused later by whatever tries to convert them.
    if (dtype_size(tensor.dtype) > 0)
      validate_tensor_chunks(tensor, file_sizes, file_path.string());
    catalog.tensors.push_back(std::move(tensor));
  }
}

Catalog read_single_file(const fs::path& path, const fs::path& catalog_path) {
  Catalog catalog;
  catalog.format = CheckpointFormat::kSafetensors;
  catalog.path = catalog_path;
  append_file(catalog, path, read_safetensors_header(path));
  return catalog;
}

// Whether `name` of an untrusted index is listed under `file`; weight_map is sorted by name.
const std::string* shard_of(const SafetensorsIndex& index, const std::string& name) {
  auto it = std::lower_bound(index.weight_map.begin(), index.weight_map.end(), name,
                             [](const std::pair<std::string, std::string>& entry,
                                const std::string& key) { return entry.first < key; });
  if (it == index.weight_map.end() || it->first != name) return nullptr;
  return &it->second;
}

Catalog read_sharded(const fs::path& directory, const fs::path& index_path) {
  const std::string index_where = index_path.string();
  const SafetensorsIndex index =
      parse_safetensors_index(read_small_file(index_path, kMaxSafetensorsIndexBytes), index_where);

  // Shards in name order, each with how many tensors the index places there.
  std::map<std::string, size_t> listed_per_shard;
  for (const auto& [name, file] : index.weight_map) ++listed_per_shard[file];
  for (const auto& [file, count] : listed_per_shard) {
    std::error_code error;
    if (!fs::is_regular_file(directory / file, error)) {
      // (A named copy of the binding: clang before 16 cannot capture structured bindings.)
      const std::string& shard = file;
      const auto& example = *std::find_if(index.weight_map.begin(), index.weight_map.end(),
                                          [&](const auto& entry) { return entry.second == shard; });
      fail_input(index_where + ": shard '" + file + "' (listed for tensor '" + example.first +
                 "' and " + std::to_string(count - 1) + " more) does not exist in " +
                 directory.string());
    }
  }

  Catalog catalog;
  catalog.format = CheckpointFormat::kSafetensors;
  catalog.path = directory;
  uint64_t total_bytes = 0;
  for (const auto& [file, listed_count] : listed_per_shard) {
    const fs::path shard_path = directory / file;
    const std::string shard_where = shard_path.string();
    const SafetensorsHeader header = read_safetensors_header(shard_path);
    for (const SafetensorsEntry& entry : header.tensors) {
      const std::string* listed_in = shard_of(index, entry.name);
      if (listed_in == nullptr)
        fail_input(shard_where + ": holds tensor '" + entry.name + "', which " + index_where +
                   " does not list");
      if (*listed_in != file)
        fail_input(shard_where + ": holds tensor '" + entry.name + "', which " + index_where +
                   " places in '" + *listed_in + "' (a tensor may live in one shard only)");
    }
    if (header.tensors.size() != listed_count) {
      // Every tensor of the shard is listed for it, so some listed tensor is missing.
      std::unordered_set<std::string_view> present;
      for (const SafetensorsEntry& entry : header.tensors) present.insert(entry.name);
      for (const auto& [name, listed_file] : index.weight_map)
        if (listed_file == file && !present.contains(name))
          fail_input(index_where + ": lists tensor '" + name + "' in '" + file +
                     "', but that shard does not hold it");
    }
    if (__builtin_add_overflow(total_bytes, header.data_size_bytes, &total_bytes))
      fail_input(index_where + ": shards hold more than 2^64 bytes");
    append_file(catalog, shard_path, header);
  }
  if (index.total_size_bytes && *index.total_size_bytes != total_bytes)
    fail_input(index_where + ": metadata.total_size is " + std::to_string(*index.total_size_bytes) +
               " but the shards' tensors hold " + std::to_string(total_bytes) + " bytes");
  return catalog;
}

}  // namespace

Catalog read_safetensors(const fs::path& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) return read_single_file(path, path);

  // transformers' precedence: model.safetensors, then the index, so that both readers see
  // the same checkpoint in a directory holding both (docs/output_safety.md relies on it).
  const fs::path single_path = path / "model.safetensors";
  if (fs::is_regular_file(single_path, error)) return read_single_file(single_path, path);
  const fs::path index_path = path / kSafetensorsIndexFileName;
  if (fs::exists(index_path, error)) return read_sharded(path, index_path);

  std::vector<fs::path> candidates;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    const std::string name = entry.path().filename().string();
    if (has_safetensors_suffix(name) && entry.is_regular_file(error))
      candidates.push_back(entry.path());
  }
  if (error)
    fail(ErrorKind::kIo, path.string() + ": cannot list the directory: " + error.message());
  std::sort(candidates.begin(), candidates.end());
  if (candidates.size() == 1) return read_single_file(candidates[0], path);
  if (candidates.empty())
    fail_input(path.string() + ": no " + kSafetensorsIndexFileName +
               " and no *.safetensors file in the directory");
  std::string names;
  for (size_t i = 0; i < candidates.size() && i < 3; ++i)
    names += (i ? ", " : "") + candidates[i].filename().string();
  if (candidates.size() > 3) names += ", ...";
  // HuggingFaceStorageWriter(save_distributed=True) names each rank's file
  // shard-<rank>-model-<i>-of-<n>.safetensors; which part of a tensor a file holds is only in
  // its DCP_SHARDING_INFO metadata, which ckconv does not merge.
  const std::string first = candidates[0].filename().string();
  if (first.rfind("shard-", 0) == 0 && first.find("-model-") != std::string::npos)
    fail_input(path.string() + ": " + std::to_string(candidates.size()) + " files (" + names +
               ") are the per-rank shards of PyTorch's HuggingFaceStorageWriter("
               "save_distributed=True) before consolidation, which ckconv does not read; use "
               "the consolidated model-*.safetensors (enable_consolidation=True, or "
               "torch.distributed.checkpoint._consolidate_hf_safetensors."
               "consolidate_safetensors_files)");
  fail_input(path.string() + ": " + std::to_string(candidates.size()) + " *.safetensors files (" +
             names + ") but no " + kSafetensorsIndexFileName + " to say which tensors each holds");
}

}  // namespace ckconv
