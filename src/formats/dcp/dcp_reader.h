// Reads a torch.distributed.checkpoint (DCP) directory as FileSystemWriter writes it
// (docs/formats.md "DCP directories"): the pickled `.metadata` gives every tensor's shape, dtype
// and chunks and, through storage_data, where each chunk's torch.save item lies in which `.distcp`
// file. Each item's zip directory and data.pkl are read (never its tensor bytes) to find the
// chunk's data offset and strides, so FSDP/TP checkpoints with chunks spread over many ranks'
// files become multi-chunk catalog tensors the executor reassembles.
//
// Only model weights become catalog tensors. Listed as skipped instead: non-tensor items
// (BytesStorageMetadata: train_state.step, lr_scheduler, dataloader, ...) and tensors of the
// training state (names starting with optimizer., lr_scheduler., dataloader., train_state.;
// formats/training_state.h).
//
// Refused with kBadInput naming the file: hostile or corrupt pickles, relative paths that leave
// the directory (absolute, '..', or a symlink pointing outside), missing .distcp files,
// items outside their file, chunks that overlap, leave holes or disagree with their item; and,
// naming the feature, model tensors stored through stream transforms (zstd) or with the
// safetensors serialization of FileSystemWriter.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "formats/catalog.h"

namespace ckconv {

inline constexpr uint64_t kMaxDcpMetadataBytes = uint64_t{1} << 31;
// The Python module of the dataclasses pickled in `.metadata`.
inline constexpr std::string_view kDcpMetadataModule = "torch.distributed.checkpoint.metadata";

Catalog read_dcp(const std::filesystem::path& dir);

// Whether a DCP key belongs to the training state rather than the model (torchtitan's
// checkpoint layout, docs/formats.md "DCP directories").
bool is_dcp_training_state_key(const std::string& fqn);

}  // namespace ckconv
