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
  enum class Kind { kRemove, kMove };
  Kind kind = Kind::kMove;
  std::string name;  // a plain file name directly in the output directory
  bool operator==(const PublishStep&) const = default;
};

// The steps that replace the checkpoint made of `existing` (ckconv's files now in the output)
// by `incoming` (the staged files), in order:
//   1. only when moving the new weight files in would corrupt or hide the old checkpoint
//      before the commit point (a staged non-commit weight file has an old file's name, or
//      new shards would join an unindexed model.safetensors): remove the old checkpoint's
//      entry points (index, .metadata, model.safetensors, model.pt), so that for that
//      moment a reader finds no checkpoint rather than a mixed one;
//   2. move in the companions (config.json, ...), then the non-commit weight files;
//   3. move in the commit point: the index, else .metadata, else the single weight file;
//   4. remove the old weight files the new checkpoint does not use.
std::vector<PublishStep> plan_publish(const std::vector<std::string>& incoming,
                                      const std::vector<std::string>& existing);

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
