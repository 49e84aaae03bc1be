#include "pipeline/output_directory.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/error.h"
#include "core/file.h"

namespace ckconv {
namespace {

void sync_directory(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::kIo, "cannot open directory " + path.string() + ": " + errno_message(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) fail(ErrorKind::kIo, "cannot sync directory " + path.string() + ": " + errno_message(saved));
}

std::filesystem::path sibling(const std::filesystem::path& target, const std::string& kind) {
  return target.parent_path() /
         ("." + target.filename().string() + ".ckconv-" + kind + "-" + std::to_string(::getpid()));
}

std::filesystem::path normalize(const std::filesystem::path& target) {
  std::filesystem::path absolute = std::filesystem::absolute(target).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();
  return absolute;
}

}  // namespace

void remove_stale_staging(const std::filesystem::path& raw_target) {
  const std::filesystem::path target = normalize(raw_target);
  const std::string prefix = "." + target.filename().string() + ".ckconv-";
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(target.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t dash = name.rfind('-');
    if (dash == std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + dash + 1));
    if (pid > 0 && !(::kill(pid, 0) != 0 && errno == ESRCH)) continue;  // its run is alive
    // A run killed between the two renames of publish()'s fallback left the previous complete
    // output under the "old" name and no target: put it back rather than delete it.
    if (name.compare(prefix.size(), 4, "old-") == 0 && !std::filesystem::exists(target, error) &&
        ::rename(entry.path().c_str(), target.c_str()) == 0)
      continue;
    std::filesystem::remove_all(entry.path(), error);
  }
}

void check_output_does_not_contain(const std::filesystem::path& target,
                                   const std::filesystem::path& input) {
  std::error_code error;
  const std::filesystem::path outer = std::filesystem::weakly_canonical(normalize(target), error);
  const std::filesystem::path inner = std::filesystem::weakly_canonical(normalize(input), error);
  if (error) return;  // the input is checked (and reported) by its reader
  auto part = inner.begin();
  for (auto it = outer.begin(); it != outer.end(); ++it, ++part)
    if (part == inner.end() || *part != *it) return;
  fail(ErrorKind::kUsage, "output " + target.string() + " contains the input " + input.string() +
                              "; replacing it would delete the input (choose another output)");
}

OutputDirectory::OutputDirectory(const std::filesystem::path& raw_target, bool replace)
    : target_(normalize(raw_target)), replace_(replace) {
  std::error_code error;
  if (!std::filesystem::is_directory(target_.parent_path(), error))
    fail(ErrorKind::kIo, "output parent directory " + target_.parent_path().string() +
                             (std::filesystem::exists(target_.parent_path(), error) ? " is not a directory"
                                                                                    : " does not exist"));
  remove_stale_staging(target_);  // first: it may bring back an output a killed run displaced
  if (std::filesystem::exists(target_, error) && !replace_)
    fail(ErrorKind::kExists, "output " + target_.string() + " exists (use --force to replace it)");
  staging_ = sibling(target_, "tmp");
  std::filesystem::remove_all(staging_, error);
  if (!std::filesystem::create_directory(staging_, error))
    fail(ErrorKind::kIo, "cannot create " + staging_.string() + ": " + error.message());
}

OutputDirectory::~OutputDirectory() {
  if (published_) return;
  std::error_code error;
  std::filesystem::remove_all(staging_, error);
}

void OutputDirectory::publish() {
  sync_directory(staging_);
  std::error_code error;
  if (std::filesystem::exists(target_, error)) {
    // Swap atomically so no moment exists without a complete output.
    if (::syscall(SYS_renameat2, AT_FDCWD, staging_.c_str(), AT_FDCWD, target_.c_str(), 2 /*RENAME_EXCHANGE*/) == 0) {
      std::filesystem::remove_all(staging_, error);  // now holds the old output
    } else {
      const std::filesystem::path old = sibling(target_, "old");
      if (::rename(target_.c_str(), old.c_str()) != 0)
        fail(ErrorKind::kIo, "cannot replace " + target_.string() + ": " + errno_message(errno));
      if (::rename(staging_.c_str(), target_.c_str()) != 0) {
        const int saved = errno;
        ::rename(old.c_str(), target_.c_str());  // keep the previous output in place
        fail(ErrorKind::kIo, "cannot replace " + target_.string() + ": " + errno_message(saved));
      }
      std::filesystem::remove_all(old, error);
    }
  } else if (::rename(staging_.c_str(), target_.c_str()) != 0) {
    fail(ErrorKind::kIo, "cannot rename " + staging_.string() + " to " + target_.string() + ": " + errno_message(errno));
  }
  published_ = true;
  sync_directory(target_.parent_path());
}

ScratchDirectory::ScratchDirectory(const std::filesystem::path& near, const std::string& label) {
  const std::filesystem::path base = normalize(near);
  path_ = base.parent_path() / ("." + base.filename().string() + ".ckconv-" + label + "-" + std::to_string(::getpid()));
  std::error_code error;
  std::filesystem::remove_all(path_, error);
  if (!std::filesystem::create_directory(path_, error))
    fail(ErrorKind::kIo, "cannot create " + path_.string() + ": " + error.message());
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

}  // namespace ckconv
