#include "verify/scratch_removal.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ckconv {
namespace {

namespace fs = std::filesystem;

void remove_here(const std::vector<fs::path>& directories) {
  for (const fs::path& directory : directories) {
    std::error_code error;
    fs::remove_all(directory, error);
  }
}

void close_quietly(int fd) {
  if (fd >= 0) ::close(fd);
}

// The grandchild: opens the files, says so through `ready`, waits for `release` to reach
// end of file (the parent removed the names, or exited), then closes them and exits.
[[noreturn]] void hold_files(const std::vector<fs::path>& directories, int ready, int release) {
  std::vector<int> held;
  for (const fs::path& directory : directories) {
    std::error_code error;
    for (auto it = fs::recursive_directory_iterator(directory, error);
         !error && it != fs::recursive_directory_iterator(); it.increment(error))
      if (it->is_regular_file(error)) {
        const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) held.push_back(fd);
      }
  }
  const char byte = 1;
  (void)!::write(ready, &byte, 1);
  ::close(ready);
  char ignored;
  while (::read(release, &ignored, 1) < 0 && errno == EINTR) {
  }
  for (int fd : held) ::close(fd);
  ::_exit(0);
}

// Leaves the new session with only `keep_a` and `keep_b` open beside /dev/null as stdio, so
// no pipe of the caller's (a shell's $(...), a test's FIFO) waits on this process.
void detach(int keep_a, int keep_b) {
  const unsigned low = static_cast<unsigned>(std::min(keep_a, keep_b));
  const unsigned high = static_cast<unsigned>(std::max(keep_a, keep_b));
  if (low > 3) ::close_range(3, low - 1, 0);
  if (high > low + 1) ::close_range(low + 1, high - 1, 0);
  ::close_range(high + 1, ~0u, 0);
  ::setsid();
  const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return;
  for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);
  ::close(null);
}

}  // namespace

void remove_in_background(const std::vector<fs::path>& directories) {
  if (directories.empty()) return;
  int ready[2] = {-1, -1}, release[2] = {-1, -1};
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0) {
    close_quietly(ready[0]);
    close_quietly(ready[1]);
    remove_here(directories);
    return;
  }
  const pid_t child = ::fork();
  if (child == 0) {
    // A double fork: the grandchild, reparented once the child exits, is never a zombie of
    // a caller that lives on.
    detach(ready[1], release[0]);
    if (::fork() == 0) hold_files(directories, ready[1], release[0]);
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  if (child > 0) {
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    char byte = 0;
    while (::read(ready[0], &byte, 1) < 0 && errno == EINTR) {
    }
  }
  ::close(ready[0]);
  remove_here(directories);  // the names only, when the grandchild holds the files
  ::close(release[1]);       // lets the grandchild close them
}

}  // namespace ckconv
