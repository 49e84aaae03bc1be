// torchtitan's full training checkpoints (its checkpoint manager, every generation from v0.2
// to 2026-08): the model state dict flattened at the top level beside four groups of training
// state (docs/formats.md "Training checkpoints"). Readers list every non-model item as skipped
// under a named rule; conversions report them per rule and refuse a checkpoint that holds
// training state but no model weights.
#pragma once

#include <string>
#include <string_view>

#include "formats/catalog.h"

namespace ckconv {

// The training-state group a key belongs to: "optimizer", "lr_scheduler", "dataloader" or
// "train_state" (its first dotted component), or empty for any other key.
std::string_view training_state_group(std::string_view key);

// The named rule under which a reader skips the non-model item `key`: "training_state.<group>"
// for training state, else `otherwise` (e.g. "non_tensor" for a pickled value).
std::string skip_rule_for(std::string_view key, std::string_view otherwise);

// Throws kBadInput when `catalog` holds no tensor to convert but training state: a
// checkpoint saved with the model excluded, or the wrong directory of a run.
void require_model_tensors(const Catalog& catalog);

}  // namespace ckconv
