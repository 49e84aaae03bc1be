#include "pipeline/publish.h"

#include <fcntl.h>
#include <stdio.h>
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

// Idempotent, so that a journal can be replayed from its first step whatever was done:
// a staged file that is no longer in staging was already moved, and a name the new output
// also writes is only removed while the new file is still waiting in staging.
void apply_step(const fs::path& target, const fs::path& staging, const PublishStep& step,
                const std::set<std::string>& incoming) {
  std::error_code error;
  const bool staged = fs::exists(fs::symlink_status(staging / step.name, error));
  if (step.kind == PublishStep::Kind::kMove) {
    if (staged) rename_or_fail(staging / step.name, target / step.name);
    return;
  }
  if (incoming.count(step.name) && !staged) return;  // already the new file
  remove_or_fail(target / step.name);
}

std::string journal_text(const std::vector<PublishStep>& steps) {
  std::string text = std::string(kJournalHeader) + "\n";
  for (const PublishStep& step : steps) {
    CKCONV_CHECK(!step.name.empty() && step.name.find_first_of("/\n") == std::string::npos);
    text += (step.kind == PublishStep::Kind::kMove ? "move " : "remove ") + step.name + "\n";
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
    if (line.rfind("move ", 0) == 0)
      steps.push_back({PublishStep::Kind::kMove, line.substr(5)});
    else if (line.rfind("remove ", 0) == 0)
      steps.push_back({PublishStep::Kind::kRemove, line.substr(7)});
    else
      return std::nullopt;
    if (steps.back().name.empty() || steps.back().name.find('/') != std::string::npos)
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
    if (i > 0 && (steps[i].kind != steps[i - 1].kind || i == commit)) sync_directory(target);
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

std::vector<PublishStep> plan_publish(const std::vector<std::string>& incoming,
                                      const std::vector<std::string>& existing) {
  const std::string commit = commit_point(incoming);
  std::vector<std::string> companions, weights;
  for (const auto& name : incoming)
    if (name != commit) (is_weight_file_name(name) ? weights : companions).push_back(name);
  bool withdraw = false;
  for (const auto& name : weights) {
    withdraw = withdraw || contains(existing, name);
    // ckconv's reader and transformers both take a lone unindexed model.safetensors; a
    // second *.safetensors beside it makes the directory ambiguous.
    withdraw =
        withdraw || (ends_with(name, ".safetensors") && contains(existing, "model.safetensors") &&
                     !contains(existing, kIndexName) && !contains(existing, ".metadata"));
  }
  std::vector<PublishStep> steps;
  std::set<std::string> removed;
  auto remove = [&](const std::string& name) {
    if (removed.insert(name).second) steps.push_back({PublishStep::Kind::kRemove, name});
  };
  if (withdraw)
    for (const auto& name : kEntryPoints)
      if (contains(existing, name)) remove(name);
  for (const auto& name : companions) steps.push_back({PublishStep::Kind::kMove, name});
  for (const auto& name : weights) steps.push_back({PublishStep::Kind::kMove, name});
  steps.push_back({PublishStep::Kind::kMove, commit});
  // Stale weights: entry points first, so a reader never follows an index to missing shards.
  for (const auto& name : kEntryPoints)
    if (contains(existing, name) && !contains(incoming, name)) remove(name);
  for (const auto& name : existing)
    if (is_weight_file_name(name) && !contains(incoming, name)) remove(name);
  return steps;
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
