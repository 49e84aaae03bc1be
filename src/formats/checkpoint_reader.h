// Opens any supported checkpoint by looking at what is on disk: a DCP directory (.metadata),
// a torch.save zip file, a safetensors file, or a directory of safetensors shards.
#pragma once

#include <filesystem>

#include "formats/catalog.h"

namespace ckconv {

// The format of the checkpoint at `path`; kBadInput when nothing recognisable is there.
CheckpointFormat detect_checkpoint_format(const std::filesystem::path& path);
// The catalog of the checkpoint at `path`; a torchtitan v0.1.0 full checkpoint is read as its
// model (strip_model_group, formats/training_state.h).
Catalog read_checkpoint(const std::filesystem::path& path);

}  // namespace ckconv
