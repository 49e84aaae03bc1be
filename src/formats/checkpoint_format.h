// The on-disk checkpoint formats ckconv reads and writes, named once: the command line parses
// its spellings into this enum (src/cli), and reports print checkpoint_format_name.
#pragma once

#include <string_view>

namespace ckconv {

enum class CheckpointFormat {
  kSafetensors,  // one .safetensors file, or shards with model.safetensors.index.json
  kDcp,          // torch.distributed.checkpoint directory (.metadata + .distcp files)
  kTorchSave,    // one torch.save zip archive (.pt)
};

// The name reports and messages use: "safetensors", "dcp" or "torch_save".
constexpr std::string_view checkpoint_format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::kSafetensors:
      return "safetensors";
    case CheckpointFormat::kDcp:
      return "dcp";
    case CheckpointFormat::kTorchSave:
      return "torch_save";
  }
  return "unknown";
}

}  // namespace ckconv
