// Reads the catalog of a safetensors checkpoint (docs/formats.md "safetensors", "Sharded HF
// checkpoints"): headers only, never tensor data. Accepts any valid safetensors file, padded or
// not, so both the reference writer's files and the unpadded ones of torch DCP's consolidator load.
#pragma once

#include <filesystem>

#include "formats/catalog.h"

namespace ckconv {

inline constexpr const char* kSafetensorsIndexFileName = "model.safetensors.index.json";

// `path` is one of:
//  - a .safetensors file;
//  - a directory holding model.safetensors.index.json and the shards it names;
//  - a directory holding exactly one *.safetensors file and no index.
// The result has format "safetensors", `files` = the shards in name order, `tensors` =
// shards in that order and within a shard in data order, each one contiguous chunk, and
// `metadata` = the first file's __metadata__ (empty when it has none).
// Throws kBadInput naming the file and tensor for any invalid header (see
// safetensors_header.h) and for an index that disagrees with its shards: a missing or
// unsafe shard name, a listed tensor absent from its shard, a shard tensor the index does
// not list or places elsewhere, or a metadata.total_size that is not the sum of tensor bytes.
Catalog read_safetensors(const std::filesystem::path& path);

}  // namespace ckconv
