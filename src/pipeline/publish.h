// Publishing new files into an output directory that already exists and may hold other
// people's files (a git clone, a README, tokenizer files). Only files of the kinds ckconv
// writes are ever replaced or removed; everything else stays. The new files wait, complete
// and synced, in a staging directory inside the output; a journal written there before the
// first change lists every step, so a run that dies midway is finished by the next run.
// The protocol and what a reader can see at each step: docs/output_safety.md.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ckconv {

// Whether a file directly in an output directory is of a kind ckconv writes: weights
// (model.safetensors, model-<i>-of-<n>.safetensors, model.safetensors.index.json, .metadata,
// *.distcp, model.pt) or HF companions (config.json, generation_config.json).
bool is_ckconv_output_name(const std::string& name);
bool is_weight_file_name(const std::string& name);

// Regular files of ckconv's kinds directly in `directory`, sorted.
std::vector<std::string> list_ckconv_files(const std::filesystem::path& directory);

struct PublishStep {
  // kMove: staged file -> output. kRemove: an old file. kKeep: hard-link an old shard into
  // kPreviousShardsFolder (while its new namesake waits in staging). kRedirect: install the
  // staged redirect index (kRedirectIndexName) as `name`. kDropKept: remove that folder.
  enum class Kind { kRemove, kMove, kKeep, kRedirect, kDropKept };
  Kind kind = Kind::kMove;
  std::string name;  // a plain file name directly in the output directory
  bool operator==(const PublishStep&) const = default;
};

// The name, in the staging directory, of the old index rewritten to name its kept shards
// "<kPreviousShardsFolder>/<shard>" (write_redirect_index).
inline constexpr const char* kRedirectIndexName = "previous-index.json";

// The steps that replace the checkpoint made of `existing` (ckconv's files now in the output)
// by `incoming` (the staged files), so that every reader (ckconv's and transformers', which
// both take model.safetensors before the index) sees the old or the new checkpoint at every
// step. `indexed_shards` are the files the old index lists (empty when there is none or it
// does not parse); `kept_folder` says the output holds a kPreviousShardsFolder already. In
// order:
//   1. when new shards would replace old shards of the same names that the old index lists:
//      keep (hard-link) those old shards in kPreviousShardsFolder, then redirect the old
//      index to the kept copies (an atomic rename of a rewritten copy);
//   2. move in the companions (config.json, ...), then the non-commit weight files;
//   3. move in the commit point: the index, else .metadata, else the single weight file;
//   4. remove the old weight files the new checkpoint does not use, entry points first (an
//      old model.safetensors over which new shards and index came in: its removal is what
//      makes readers switch), then the kept folder.
// A staged non-commit weight file with the name of an old file that step 1 cannot protect
// (an unreadable old index; a DCP data file: the writer chooses names that do not collide,
// dcp_data_file_name_for) makes the plan withdraw the old entry points first, as the
// fallback: for that moment a reader finds no checkpoint rather than a mixed one.
std::vector<PublishStep> plan_publish(const std::vector<std::string>& incoming,
                                      const std::vector<std::string>& existing,
                                      const std::vector<std::string>& indexed_shards = {},
                                      bool kept_folder = false);

// The files the index in `target` lists (its weight_map values), or nothing when there is no
// index or it does not parse.
std::vector<std::string> indexed_shards(const std::filesystem::path& target);

// Writes into `staging` (durably) the index of `target` rewritten so that each shard of
// `steps`' kKeep steps is named "<kPreviousShardsFolder>/<shard>"; nothing when `steps` keep
// no shard.
void write_redirect_index(const std::filesystem::path& target, const std::filesystem::path& staging,
                          const std::vector<PublishStep>& steps);

// The name of a DCP output's data file in `target`: the first of __0_0.distcp, __0_1.distcp,
// ... that `target` does not hold (__0_0.distcp when it does not exist). DCP's .metadata
// names its data files and torch.distributed.checkpoint resolves them relative to the
// checkpoint directory, so any such name loads; a new name keeps the old .metadata valid
// until the new one replaces it. A pure function of the directory's listing, so every part
// of a split conversion chooses the same name.
std::string dcp_data_file_name_for(const std::filesystem::path& target);

// Writes the journal of `steps` into `staging` (a directory inside the output) atomically
// and durably. Once it returns, the publish is decided: apply_publish_steps or, should this
// process die, recover_publish in the next run, finishes it.
void write_publish_journal(const std::filesystem::path& staging,
                           const std::vector<PublishStep>& steps);

// Applies `steps` (moving files from `staging` into `target`) with a directory sync at each
// phase boundary, then removes `staging`. A failure leaves `staging` for recover_publish.
void apply_publish_steps(const std::filesystem::path& target, const std::filesystem::path& staging,
                         const std::vector<PublishStep>& steps);

// For a staging directory of a run that is gone: finishes its publish when its journal was
// written (each step is idempotent), else removes it; returns a sentence saying which.
std::string recover_publish(const std::filesystem::path& target,
                            const std::filesystem::path& staging);

// fsync of a directory (kIo on failure).
void sync_directory(const std::filesystem::path& path);

}  // namespace ckconv
