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
// torchtitan v0.1.0's excluded_parameters_for_model_only (components/checkpoint.py): the
// persistent buffers its model-only save pops; a full checkpoint still holds them.
constexpr std::string_view kExcludedFromModelOnly = "model.freqs_cis";

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string_view training_state_group(std::string_view key) {
  const std::string_view root = key.substr(0, key.find('.'));
  for (std::string_view group : kTrainingStateGroups)
    if (root == group) return group;
  return {};
}

std::string skip_rule_for(std::string_view key, std::string_view otherwise) {
  if (key == kExcludedFromModelOnly) return "model_only_excluded";
  const std::string_view group = training_state_group(key);
  return group.empty() ? std::string(otherwise) : "training_state." + std::string(group);
}

bool strip_model_group(Catalog& catalog) {
  if (catalog.format == CheckpointFormat::kSafetensors || catalog.tensors.empty()) return false;
  bool training_state = false;
  for (const SkippedItem& item : catalog.skipped) {
    if (!training_state_group(item.name).empty())
      training_state = true;
    else if (!starts_with(item.name, kModelGroupPrefix))
      return false;
  }
  for (const CatalogTensor& tensor : catalog.tensors)
    if (!starts_with(tensor.name, kModelGroupPrefix) ||
        tensor.name.size() == kModelGroupPrefix.size())
      return false;
  if (!training_state) return false;
  std::vector<CatalogTensor> model;
  for (CatalogTensor& tensor : catalog.tensors) {
    if (tensor.name == kExcludedFromModelOnly) {
      catalog.skipped.push_back(
          SkippedItem{tensor.name,
                      "RoPE table torchtitan v0.1.0 recomputes (left out of its "
                      "model-only exports), not a weight"});
      continue;
    }
    tensor.name.erase(0, kModelGroupPrefix.size());
    model.push_back(std::move(tensor));
  }
  catalog.tensors = std::move(model);
  return true;
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
