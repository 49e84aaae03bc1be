// Plans safetensors output (docs/formats.md "safetensors", "Sharded HF checkpoints"): which files,
// the literal header and index bytes, and where each tensor's bytes go. Every file is
// byte-identical to what `safetensors.torch.save_file(tensors, path, metadata)` writes for the same
// tensors, and a sharded save matches transformers' `save_pretrained` (huggingface_hub split, index
// JSON).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/file_plan.h"

namespace ckconv {

struct SafetensorsWriteOptions {
  // Without a maximum everything goes into one file.
  std::optional<uint64_t> max_shard_size_bytes;
  // Written as __metadata__ into every file ({"format": "pt"} for transformers); an empty map
  // writes no __metadata__ at all, like save_file(..., metadata=None).
  std::map<std::string, std::string> metadata;
  // Names: <stem>.safetensors, or <stem>-00001-of-0000N.safetensors +
  // <stem>.safetensors.index.json.
  std::string file_stem = "model";
};

// One file `<stem>.safetensors` (no index) when the tensors fit in one shard, else the shards
// of split_into_shards plus the index as a literal-only file, listed last. Placements are in
// file order, each file's tensors in data order. Throws kBadInput for a name that is not
// valid UTF-8 or is "__metadata__", or a sub-byte tensor that is not a whole number of bytes;
// kInternal for duplicate names.
FilePlan plan_safetensors(const std::vector<OutputTensorSpec>& tensors,
                          const SafetensorsWriteOptions& options);

// huggingface_hub's split (`split_state_dict_into_shards_factory`, docs/formats.md "How tensors are
// split into shards"): walk tensors in the given order; a tensor larger than the maximum becomes a
// shard of its own at once while the open shard stays open; otherwise the open shard is closed when
// the tensor would not fit. Returns each shard's tensor indices; an empty input gives no shard.
std::vector<std::vector<size_t>> split_into_shards(const std::vector<uint64_t>& sizes_bytes,
                                                   uint64_t max_shard_size_bytes);

// The index JSON exactly as transformers 5.x save_pretrained writes it:
// json.dumps({"metadata": {"total_parameters": P, "total_size": S}, "weight_map": {...}},
// indent=2, sort_keys=True) + "\n", with Python's ensure_ascii escaping.
std::string serialize_safetensors_index(const std::map<std::string, std::string>& weight_map,
                                        uint64_t total_parameters, uint64_t total_size_bytes);

}  // namespace ckconv
