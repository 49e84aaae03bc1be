#include "pipeline/output_directory.h"

#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "formats/safetensors/safetensors_index.h"
#include "pipeline/publish.h"
#include "pipeline/run_leftovers.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

fs::path normalize(const fs::path& target) {
  fs::path absolute = fs::absolute(target).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  return absolute;
}

std::string join(const std::vector<std::string>& names, size_t most) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < most; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > most) text += ", ... (" + std::to_string(names.size()) + " files)";
  return text;
}

// The staged files, which must all sit directly in `staging` (every writer's layout does).
std::vector<std::string> staged_files(const fs::path& staging) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(staging)) {
    if (!entry.is_regular_file())
      fail(ErrorKind::kInternal, "staged output " + entry.path().string() + " is not a plain file");
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

void check_output_does_not_contain(const fs::path& target, const fs::path& input) {
  std::error_code error;
  const fs::path outer = fs::weakly_canonical(normalize(target), error);
  const fs::path inner = fs::weakly_canonical(normalize(input), error);
  if (error) return;  // the input is checked (and reported) by its reader
  auto part = inner.begin();
  for (auto it = outer.begin(); it != outer.end(); ++it, ++part)
    if (part == inner.end() || *part != *it) return;
  fail(ErrorKind::kUsage,
       "output " + target.string() + " contains the input " + input.string() +
           "; writing there would replace the input's files (choose another output)");
}

OutputDirectory::OutputDirectory(const fs::path& raw_target, bool replace)
    : target_(normalize(raw_target)) {
  std::error_code error;
  const fs::path parent = target_.parent_path();
  if (!fs::is_directory(parent, error))
    fail(ErrorKind::kIo,
         "output parent directory " + parent.string() +
             (fs::exists(parent, error) ? " is not a directory" : " does not exist"));
  notes_ = remove_dead_leftovers(parent);
  target_existed_ = fs::exists(fs::symlink_status(target_, error));
  if (target_existed_ && !fs::is_directory(target_, error))
    fail(ErrorKind::kExists, "output " + target_.string() + " exists and is not a directory");
  if (target_existed_) {
    recover_dead_stagings();
    const std::vector<std::string> own = list_ckconv_files(target_);
    if (!own.empty() && !replace)
      fail(ErrorKind::kExists, "output " + target_.string() + " already holds " + join(own, 4) +
                                   " (use --force to replace these; other files in it are kept)");
    staging_ = staging_inside(target_);
  } else {
    staging_ = temporary_sibling(target_, "tmp");
  }
  fs::remove_all(staging_, error);
  if (!fs::create_directory(staging_, error))
    fail(ErrorKind::kIo, "cannot create " + staging_.string() + ": " + error.message());
}

void OutputDirectory::check_target(const fs::path& raw_target, bool replace) {
  std::error_code error;
  const fs::path target = normalize(raw_target);
  const fs::path parent = target.parent_path();
  if (!fs::is_directory(parent, error))
    fail(ErrorKind::kIo,
         "output parent directory " + parent.string() +
             (fs::exists(parent, error) ? " is not a directory" : " does not exist"));
  const bool exists = fs::exists(fs::symlink_status(target, error));
  if (exists && !fs::is_directory(target, error))
    fail(ErrorKind::kExists, "output " + target.string() + " exists and is not a directory");
  if (exists) {
    const std::vector<std::string> own = list_ckconv_files(target);
    if (!own.empty() && !replace)
      fail(ErrorKind::kExists, "output " + target.string() + " already holds " + join(own, 4) +
                                   " (use --force to replace these; other files in it are kept)");
  }
  const fs::path written = exists ? target : parent;
  if (::access(written.c_str(), W_OK) != 0)
    fail(ErrorKind::kIo, "cannot create files in " + written.string() + ": not writable");
}

OutputDirectory::OutputDirectory(const fs::path& target, bool replace,
                                 const fs::path& adopted_staging)
    : OutputDirectory(target, replace) {
  std::error_code error;
  fs::remove_all(staging_, error);
  staging_ = adopted_staging;
  adopted_ = true;
}

void OutputDirectory::recover_dead_stagings() {
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(target_, error)) {
    const std::optional<pid_t> pid = staging_inside_pid(entry.path().filename().string());
    if (pid && process_is_gone(*pid)) notes_.push_back(recover_publish(target_, entry.path()));
  }
}

OutputDirectory::~OutputDirectory() {
  if (published_ || publish_began_ || adopted_) return;
  std::error_code error;
  fs::remove_all(staging_, error);
}

std::vector<std::string> OutputDirectory::publish() {
  throw_if_interrupted();  // the last moment at which stopping leaves the output unchanged
  if (!target_existed_) {
    sync_directory(staging_);
    test_pause_point("publish-step-0");
    throw_if_interrupted();
    if (::rename(staging_.c_str(), target_.c_str()) != 0)
      fail(ErrorKind::kIo, "cannot rename " + staging_.string() + " to " + target_.string() + ": " +
                               errno_message(errno));
    published_ = true;
    sync_directory(target_.parent_path());
    return {};
  }
  const std::vector<std::string> incoming = staged_files(staging_);
  const std::vector<std::string> existing = list_ckconv_files(target_);
  std::error_code error;
  const bool kept_folder = fs::exists(fs::symlink_status(target_ / kPreviousShardsFolder, error));
  const std::vector<PublishStep> steps =
      plan_publish(incoming, existing, indexed_shards(target_), kept_folder);
  write_redirect_index(target_, staging_, steps);
  std::vector<std::string> replaced;
  for (const std::string& name : existing) {
    const bool overwritten = std::find(incoming.begin(), incoming.end(), name) != incoming.end();
    const bool removed = std::find(steps.begin(), steps.end(),
                                   PublishStep{PublishStep::Kind::kRemove, name}) != steps.end();
    if (overwritten || removed) replaced.push_back(name);
  }
  sync_directory(staging_);
  test_pause_point("publish-step-0");
  throw_if_interrupted();  // the last moment: once the journal exists, the publish completes
  write_publish_journal(staging_, steps);
  publish_began_ = true;
  apply_publish_steps(target_, staging_, steps);
  published_ = true;
  return replaced;
}

ScratchDirectory::ScratchDirectory(const fs::path& near, const std::string& label) {
  path_ = temporary_sibling(normalize(near), label);
  std::error_code error;
  fs::remove_all(path_, error);
  if (!fs::create_directory(path_, error))
    fail(ErrorKind::kIo, "cannot create " + path_.string() + ": " + error.message());
}

ScratchDirectory::~ScratchDirectory() {
  if (path_.empty()) return;
  std::error_code error;
  fs::remove_all(path_, error);
}

fs::path ScratchDirectory::release() {
  return std::exchange(path_, fs::path());
}

}  // namespace ckconv
