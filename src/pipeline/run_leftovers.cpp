#include "pipeline/run_leftovers.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <regex>

namespace ckconv {
namespace {

namespace fs = std::filesystem;

std::optional<pid_t> pid_of(const std::string& name, const std::regex& pattern) {
  std::smatch match;
  if (!std::regex_match(name, match, pattern) || match[1].length() > 9) return std::nullopt;
  const long pid = std::stol(match[1].str());
  if (pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

}  // namespace

fs::path temporary_sibling(const fs::path& base, const std::string& kind) {
  return base.parent_path() /
         ("." + base.filename().string() + ".ckconv-" + kind + "-" + std::to_string(::getpid()));
}

fs::path staging_inside(const fs::path& output) {
  return output / (".ckconv-staging-" + std::to_string(::getpid()));
}

std::optional<pid_t> leftover_pid(const std::string& name) {
  static const std::regex sibling(R"(\..+\.ckconv-(?:tmp|old|verify[0-9])-([0-9]+))");
  if (auto pid = pid_of(name, sibling)) return pid;
  return staging_inside_pid(name);
}

std::optional<pid_t> staging_inside_pid(const std::string& name) {
  static const std::regex inside(R"(\.ckconv-staging-([0-9]+))");
  return pid_of(name, inside);
}

bool process_is_gone(pid_t pid) {
  // EPERM: alive, owned by someone else.
  return pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
}

std::vector<std::string> remove_dead_leftovers(const fs::path& directory) {
  std::vector<std::string> notes;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    // Inside-output staging may hold a journal to finish: OutputDirectory recovers those.
    if (staging_inside_pid(name)) continue;
    const std::optional<pid_t> pid = leftover_pid(name);
    if (!pid || !process_is_gone(*pid)) continue;
    // Earlier versions renamed a replaced output aside as ".<name>.ckconv-old-<pid>" before
    // renaming the new one in; a run killed between the two left only that copy: put it back.
    std::smatch old;
    static const std::regex displaced(R"(\.(.+)\.ckconv-old-[0-9]+)");
    if (std::regex_match(name, old, displaced) && !fs::exists(directory / old[1].str(), error) &&
        ::rename(entry.path().c_str(), (directory / old[1].str()).c_str()) == 0) {
      notes.push_back("restored " + (directory / old[1].str()).string() +
                      ", displaced by an interrupted run (pid " + std::to_string(*pid) + ")");
      continue;
    }
    std::error_code removal;
    fs::remove_all(entry.path(), removal);
    if (!removal)
      notes.push_back("removed " + entry.path().string() + ", left by an interrupted run (pid " +
                      std::to_string(*pid) + ")");
  }
  return notes;
}

}  // namespace ckconv
