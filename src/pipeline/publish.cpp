#include "pipeline/publish.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <optional>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/file.h"
#include "core/interrupt.h"
#include "formats/safetensors/safetensors_header.h"
#include "formats/safetensors/safetensors_index.h"
#include "formats/safetensors/strict_json.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kJournalName = "journal";
constexpr const char* kJournalHeader = "ckconv publish journal 1";
// The files a reader looks for first; their absence means "no checkpoint here".
const std::vector<std::string> kEntryPoints = {kIndexName, ".metadata", "model.safetensors",
                                               "model.pt"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string commit_point(const std::vector<std::string>& incoming) {
  CKCONV_CHECK(!incoming.empty());
  if (contains(incoming, kIndexName)) return kIndexName;
  if (contains(incoming, ".metadata")) return ".metadata";
  std::vector<std::string> weights;
  for (const auto& name : incoming)
    if (is_weight_file_name(name)) weights.push_back(name);
  return weights.size() == 1 ? weights.front() : incoming.back();
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    fail(ErrorKind::kIo,
         "cannot rename " + from.string() + " to " + to.string() + ": " + errno_message(errno));
}

void remove_or_fail(const fs::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    fail(ErrorKind::kIo, "cannot remove " + path.string() + ": " + errno_message(errno));
}

// Hard-links the old `name` into the kept folder unless a link to the same file is there;
// through a temporary name, so that the kept name always holds a complete file.
void keep_old_file(const fs::path& target, const std::string& name) {
  const fs::path folder = target / kPreviousShardsFolder;
  struct stat old_file, kept_file;
  // The folder is ckconv's name: anything but a real directory there (a symbolic link that
  // would lead the links elsewhere) is replaced.
  if (::lstat(folder.c_str(), &kept_file) == 0 && !S_ISDIR(kept_file.st_mode))
    remove_or_fail(folder);
  if (::mkdir(folder.c_str(), 0755) != 0 && errno != EEXIST)
    fail(ErrorKind::kIo, "cannot create " + folder.string() + ": " + errno_message(errno));
  if (::stat((target / name).c_str(), &old_file) != 0) return;  // nothing to keep
  if (::stat((folder / name).c_str(), &kept_file) == 0 && kept_file.st_ino == old_file.st_ino &&
      kept_file.st_dev == old_file.st_dev)
    return;
  const fs::path link = folder / (name + ".link");
  remove_or_fail(link);
  // A shard that is a symbolic link is kept as the file it points to.
  if (::linkat(AT_FDCWD, (target / name).c_str(), AT_FDCWD, link.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    const int error = errno;
    if (error != EPERM && error != EOPNOTSUPP && error != EMLINK)
      fail(ErrorKind::kIo, "cannot link " + (target / name).string() + " to " + link.string() +
                               ": " + errno_message(error));
    // A file system without hard links: a copy keeps the old bytes just as well.
    std::error_code copy_error;
    fs::copy_file(target / name, link, copy_error);
    if (copy_error)
      fail(ErrorKind::kIo, "cannot copy " + (target / name).string() + " to " + link.string() +
                               ": " + copy_error.message());
    File::open_read(link).sync();  // fsync needs no write access
  }
  rename_or_fail(link, folder / name);
}

// Idempotent, so that a journal can be replayed from its first step whatever was done:
// a staged file that is no longer in staging was already moved, a name the new output
// also writes is only removed (or kept) while the new file is still waiting in staging.
void apply_step(const fs::path& target, const fs::path& staging, const PublishStep& step,
                const std::set<std::string>& incoming) {
  std::error_code error;
  const bool staged = fs::exists(fs::symlink_status(staging / step.name, error));
  switch (step.kind) {
    case PublishStep::Kind::kMove:
      if (staged) rename_or_fail(staging / step.name, target / step.name);
      return;
    case PublishStep::Kind::kKeep:
      if (staged) keep_old_file(target, step.name);
      return;
    case PublishStep::Kind::kRedirect:
      if (fs::exists(staging / kRedirectIndexName, error))
        rename_or_fail(staging / kRedirectIndexName, target / step.name);
      return;
    case PublishStep::Kind::kDropKept:
      fs::remove_all(target / kPreviousShardsFolder, error);
      if (error)
        fail(ErrorKind::kIo,
             "cannot remove " + (target / kPreviousShardsFolder).string() + ": " + error.message());
      return;
    case PublishStep::Kind::kRemove:
      if (incoming.count(step.name) && !staged) return;  // already the new file
      remove_or_fail(target / step.name);
      return;
  }
}

// The journal's word for each kind of step.
const std::vector<std::pair<PublishStep::Kind, std::string>> kStepWords = {
    {PublishStep::Kind::kMove, "move"},
    {PublishStep::Kind::kRemove, "remove"},
    {PublishStep::Kind::kKeep, "keep"},
    {PublishStep::Kind::kRedirect, "redirect"},
    {PublishStep::Kind::kDropKept, "drop"}};

std::string journal_text(const std::vector<PublishStep>& steps) {
  std::string text = std::string(kJournalHeader) + "\n";
  for (const PublishStep& step : steps) {
    CKCONV_CHECK(!step.name.empty() && step.name.find_first_of("/\n") == std::string::npos);
    for (const auto& [kind, word] : kStepWords)
      if (kind == step.kind) text += word + " " + step.name + "\n";
  }
  return text + "end\n";
}

// The steps of a complete journal, or nothing when it is missing or incomplete (then the
// publish had not begun: the journal is renamed into place before the first step).
std::optional<std::vector<PublishStep>> read_journal(const fs::path& staging) {
  std::ifstream journal(staging / kJournalName);
  std::string line;
  if (!journal || !std::getline(journal, line) || line != kJournalHeader) return std::nullopt;
  std::vector<PublishStep> steps;
  while (std::getline(journal, line)) {
    if (line == "end") return steps;
    const size_t space = line.find(' ');
    const std::string word = line.substr(0, space);
    auto known = std::find_if(kStepWords.begin(), kStepWords.end(),
                              [&](const auto& entry) { return entry.second == word; });
    if (space == std::string::npos || known == kStepWords.end()) return std::nullopt;
    steps.push_back({known->first, line.substr(space + 1)});
    if (steps.back().name.empty() || steps.back().name.find('/') != std::string::npos ||
        steps.back().name == "." || steps.back().name == "..")
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

void write_publish_journal(const fs::path& staging, const std::vector<PublishStep>& steps) {
  const fs::path partial = staging / "journal.partial";
  File file = File::create(partial);
  const std::string text = journal_text(steps);
  file.write_at(text.data(), text.size(), 0);
  file.sync();
  file.close();
  rename_or_fail(partial, staging / kJournalName);
  sync_directory(staging);
}

namespace {

// Runs every step, syncing the output directory between phases (whenever the kind of step
// changes, and before the commit point, the last move), so that after a power cut no
// later phase is on disk without the earlier ones.
void apply_steps(const fs::path& target, const fs::path& staging,
                 const std::vector<PublishStep>& steps, bool pause_points) {
  std::set<std::string> incoming;
  for (const PublishStep& step : steps)
    if (step.kind == PublishStep::Kind::kMove) incoming.insert(step.name);
  size_t commit = 0;
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].kind == PublishStep::Kind::kMove) commit = i;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (pause_points) test_pause_point("publish-step-" + std::to_string(i + 1));
    if (i > 0 && (steps[i].kind != steps[i - 1].kind || i == commit)) {
      // The kept links must be durable before the redirect index names them.
      std::error_code error;  // (a replay after the folder was dropped keeps nothing)
      if (steps[i - 1].kind == PublishStep::Kind::kKeep &&
          fs::is_directory(target / kPreviousShardsFolder, error))
        sync_directory(target / kPreviousShardsFolder);
      sync_directory(target);
    }
    apply_step(target, staging, steps[i], incoming);
  }
  sync_directory(target);
  if (pause_points) test_pause_point("publish-step-" + std::to_string(steps.size() + 1));
  std::error_code error;
  fs::remove_all(staging, error);
  if (error) fail(ErrorKind::kIo, "cannot remove " + staging.string() + ": " + error.message());
  sync_directory(target);
}

}  // namespace

bool is_weight_file_name(const std::string& name) {
  static const std::regex shard(R"(model-[0-9]+-of-[0-9]+\.safetensors)");
  return name == "model.safetensors" || name == kIndexName || name == ".metadata" ||
         name == "model.pt" || (ends_with(name, ".distcp") && name.size() > 7) ||
         std::regex_match(name, shard);
}

bool is_ckconv_output_name(const std::string& name) {
  return is_weight_file_name(name) || name == "config.json" || name == "generation_config.json";
}

std::vector<std::string> list_ckconv_files(const fs::path& directory) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    if (is_ckconv_output_name(name) && !entry.is_directory(error)) names.push_back(name);
  }
  if (error) fail(ErrorKind::kIo, "cannot list " + directory.string() + ": " + error.message());
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

// The staged weight files other than the commit point that would replace an old file of the
// same name.
std::vector<std::string> colliding_names(const std::vector<std::string>& weights,
                                         const std::vector<std::string>& existing) {
  std::vector<std::string> names;
  for (const auto& name : weights)
    if (contains(existing, name)) names.push_back(name);
  return names;
}

}  // namespace

std::vector<PublishStep> plan_publish(const std::vector<std::string>& incoming,
                                      const std::vector<std::string>& existing,
                                      const std::vector<std::string>& indexed_shards,
                                      bool kept_folder) {
  const std::string commit = commit_point(incoming);
  std::vector<std::string> companions, weights;
  for (const auto& name : incoming)
    if (name != commit) (is_weight_file_name(name) ? weights : companions).push_back(name);
  const std::vector<std::string> colliding = colliding_names(weights, existing);
  // Shards replacing shards of the same names can keep the old ones reachable through a
  // redirected index when the old index was read and the new one replaces it.
  bool redirect = !colliding.empty() && commit == kIndexName && contains(existing, kIndexName) &&
                  !indexed_shards.empty();
  for (const auto& name : colliding)
    redirect = redirect && ends_with(name, ".safetensors") && name != "model.safetensors";
  std::vector<PublishStep> steps;
  std::set<std::string> removed;
  auto remove = [&](const std::string& name) {
    if (removed.insert(name).second) steps.push_back({PublishStep::Kind::kRemove, name});
  };
  if (redirect) {
    bool kept = false;
    for (const auto& name : colliding)
      if (contains(indexed_shards, name)) {
        steps.push_back({PublishStep::Kind::kKeep, name});
        kept = true;
      }
    if (kept) steps.push_back({PublishStep::Kind::kRedirect, kIndexName});
  } else if (!colliding.empty()) {
    for (const auto& name : kEntryPoints)
      if (contains(existing, name)) remove(name);
  }
  for (const auto& name : companions) steps.push_back({PublishStep::Kind::kMove, name});
  for (const auto& name : weights) steps.push_back({PublishStep::Kind::kMove, name});
  steps.push_back({PublishStep::Kind::kMove, commit});
  // Stale weights: entry points first, so a reader never follows an index to missing shards.
  for (const auto& name : kEntryPoints)
    if (contains(existing, name) && !contains(incoming, name)) remove(name);
  for (const auto& name : existing)
    if (is_weight_file_name(name) && !contains(incoming, name)) remove(name);
  const bool keeps = std::any_of(steps.begin(), steps.end(), [](const PublishStep& step) {
    return step.kind == PublishStep::Kind::kKeep;
  });
  if (keeps || kept_folder) steps.push_back({PublishStep::Kind::kDropKept, kPreviousShardsFolder});
  return steps;
}

std::vector<std::string> indexed_shards(const fs::path& target) {
  std::vector<std::string> shards;
  std::error_code error;
  if (!fs::is_regular_file(target / kIndexName, error)) return shards;
  try {
    const std::string where = (target / kIndexName).string();
    const SafetensorsIndex index = parse_safetensors_index(
        read_small_file(target / kIndexName, kMaxSafetensorsIndexBytes), where);
    for (const auto& [tensor, file] : index.weight_map)
      if (!contains(shards, file)) shards.push_back(file);
  } catch (const Error&) {
    shards.clear();  // not a readable checkpoint: nothing to keep
  }
  return shards;
}

void write_redirect_index(const fs::path& target, const fs::path& staging,
                          const std::vector<PublishStep>& steps) {
  std::set<std::string> kept;
  for (const PublishStep& step : steps)
    if (step.kind == PublishStep::Kind::kKeep) kept.insert(step.name);
  if (kept.empty()) return;
  const std::string where = (target / kIndexName).string();
  nlohmann::json index =
      parse_strict_json_document(read_small_file(target / kIndexName, kMaxSafetensorsIndexBytes),
                                 where, {kMaxSafetensorsIndexBytes, kMaxSafetensorsJsonDepth});
  for (auto& [tensor, file] : index.at("weight_map").items())
    if (kept.count(file.get<std::string>()))
      file = std::string(kPreviousShardsFolder) + "/" + file.get<std::string>();
  const std::string text = index.dump(2) + "\n";
  File file = File::create(staging / kRedirectIndexName);
  file.write_at(text.data(), text.size(), 0);
  file.sync();
  file.close();
}

std::string dcp_data_file_name_for(const fs::path& target) {
  std::error_code error;
  for (int number = 0;; ++number) {
    const std::string name = "__0_" + std::to_string(number) + ".distcp";
    if (!fs::exists(fs::symlink_status(target / name, error))) return name;
  }
}

void apply_publish_steps(const fs::path& target, const fs::path& staging,
                         const std::vector<PublishStep>& steps) {
  apply_steps(target, staging, steps, true);
}

std::string recover_publish(const fs::path& target, const fs::path& staging) {
  const std::optional<std::vector<PublishStep>> steps = read_journal(staging);
  if (!steps) {
    std::error_code error;
    fs::remove_all(staging, error);
    if (error) fail(ErrorKind::kIo, "cannot remove " + staging.string() + ": " + error.message());
    return "removed " + staging.string() +
           ", left by an interrupted run (its output was never published)";
  }
  apply_steps(target, staging, *steps, false);
  return "finished the publish into " + target.string() + " that an interrupted run had begun (" +
         staging.filename().string() + ")";
}

void sync_directory(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    fail(ErrorKind::kIo, "cannot open directory " + path.string() + ": " + errno_message(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0)
    fail(ErrorKind::kIo, "cannot sync directory " + path.string() + ": " + errno_message(saved));
}

}  // namespace ckconv
