// Which keys of a torchtitan checkpoint are training state (docs/formats.md "Training
// checkpoints"). The four roots are the names torchtitan's CheckpointManager gives its
// stateful objects (OPTIMIZER, LR_SCHEDULER, DATALOADER, TRAIN_STATE); DCP flattens each
// one's state dict under its root, while the model's keys stay at the top level.
#include "formats/training_state.h"

#include <array>
#include <map>

#include "core/error.h"

namespace ckconv {
namespace {

constexpr std::array<std::string_view, 4> kTrainingStateGroups = {"optimizer", "lr_scheduler",
                                                                  "dataloader", "train_state"};

}  // namespace

std::string_view training_state_group(std::string_view key) {
  const std::string_view root = key.substr(0, key.find('.'));
  for (std::string_view group : kTrainingStateGroups)
    if (root == group) return group;
  return {};
}

std::string skip_rule_for(std::string_view key, std::string_view otherwise) {
  const std::string_view group = training_state_group(key);
  return group.empty() ? std::string(otherwise) : "training_state." + std::string(group);
}

void require_model_tensors(const Catalog& catalog) {
  if (!catalog.tensors.empty()) return;
  std::map<std::string_view, size_t> keys_per_group;
  for (const SkippedItem& item : catalog.skipped)
    if (const std::string_view group = training_state_group(item.name); !group.empty())
      ++keys_per_group[group];
  if (keys_per_group.empty()) return;  // no training state either: the plan names what is missing
  std::string groups;
  for (const auto& [group, count] : keys_per_group)
    groups += (groups.empty() ? "" : ", ") + std::string(group) + " " + std::to_string(count);
  fail_input(catalog.path.string() + ": holds only training state (keys per group: " + groups +
             ") and no model weights; a torchtitan checkpoint keeps the model's keys at the top "
             "level beside these groups, so this one was saved without its model");
}

}  // namespace ckconv
