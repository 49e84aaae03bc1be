// torchtitan's full training checkpoints (its checkpoint manager): the model state dict
// flattened at the top level beside four groups of training state (every generation from
// v0.2 to 2026-08), or, before torchtitan #1347 (v0.1.0), kept as a fifth group `model.`
// (docs/formats.md "Training checkpoints"). Readers list every non-model item as skipped
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
// for training state, "model_only_excluded" for `model.freqs_cis` (the RoPE table v0.1.0
// recomputes and leaves out of its model-only exports), else `otherwise` (e.g. "non_tensor"
// for a pickled value).
std::string skip_rule_for(std::string_view key, std::string_view otherwise);

// The prefix torchtitan v0.1.0 gives model keys in a full checkpoint.
inline constexpr std::string_view kModelGroupPrefix = "model.";

// Reads a torchtitan v0.1.0 full checkpoint as its model: when `catalog` (a DCP or torch.save)
// holds training state and every other key, tensor or not, starts with `model.`, that prefix
// is stripped from the tensor names and `model.freqs_cis` is skipped (model_only_excluded),
// as torchtitan's own model-only export does; returns whether it did. Any other catalog (an
// HF checkpoint with `model.layers.*` keys, which has no training state) is left unchanged.
bool strip_model_group(Catalog& catalog);

// Throws kBadInput when `catalog` holds no tensor to convert but training state: a
// checkpoint saved with the model excluded, or the wrong directory of a run.
void require_model_tensors(const Catalog& catalog);

}  // namespace ckconv
