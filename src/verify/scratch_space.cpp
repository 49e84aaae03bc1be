#include "verify/scratch_space.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "core/error.h"
#include "pipeline/run_leftovers.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

// "1486248 bytes (1.4 MiB)"
std::string bytes_text(uint64_t bytes) {
  char mib[32];
  std::snprintf(mib, sizeof(mib), "%.1f", static_cast<double>(bytes) / (1 << 20));
  return std::to_string(bytes) + " bytes (" + mib + " MiB)";
}

}  // namespace

fs::path default_temporary_directory() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr && *tmpdir != '\0' ? fs::path(tmpdir) : fs::path("/tmp");
}

uint64_t free_bytes(const fs::path& directory) {
  struct statvfs info;
  if (::statvfs(directory.c_str(), &info) != 0) return 0;
  return static_cast<uint64_t>(info.f_bavail) * info.f_frsize;
}

bool same_file_system(const fs::path& a, const fs::path& b) {
  struct stat first, second;
  return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 &&
         first.st_dev == second.st_dev;
}

uint64_t round_trip_scratch_bytes(uint64_t first_output_bytes, bool first_already_written,
                                  bool starts_from_output) {
  const uint64_t back = first_output_bytes + first_output_bytes / 64 + (uint64_t{1} << 20);
  const uint64_t first = first_already_written ? 0 : first_output_bytes;
  // From the output: its own round trip's first conversion, then the conversion back.
  return first + (starts_from_output ? 2 * back : back);
}

uint64_t available_memory_bytes() {
  std::FILE* meminfo = std::fopen("/proc/meminfo", "r");
  if (meminfo == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof line, meminfo) != nullptr)
    if (std::sscanf(line, "MemAvailable: %lu kB", &kib) == 1) break;
  std::fclose(meminfo);
  return std::min(kib * 1024, cgroup_memory_headroom("/proc/self/cgroup", "/sys/fs/cgroup"));
}

uint64_t cgroup_memory_headroom(const fs::path& proc_cgroup, const fs::path& cgroup_root) {
  // The first number in a small file, or nullopt ("max", missing, unreadable).
  auto number = [](const fs::path& path) -> std::optional<uint64_t> {
    std::ifstream in(path);
    uint64_t value = 0;
    if (in >> value) return value;
    return std::nullopt;
  };
  uint64_t headroom = UINT64_MAX;
  // limit - usage for the cgroup at `directory` and each ancestor up to `top`.
  auto walk = [&](fs::path directory, const fs::path& top, const char* limit_name,
                  const char* usage_name) {
    while (true) {
      const std::optional<uint64_t> limit = number(directory / limit_name);
      const std::optional<uint64_t> usage = number(directory / usage_name);
      if (limit && usage) headroom = std::min(headroom, *limit > *usage ? *limit - *usage : 0);
      if (directory == top || !directory.has_relative_path()) break;
      directory = directory.parent_path();
    }
  };
  std::ifstream in(proc_cgroup);
  std::string line;
  while (std::getline(in, line)) {
    // hierarchy-ID:controller-list:path
    const size_t first = line.find(':');
    const size_t second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const fs::path path = fs::path(line.substr(second + 1)).relative_path();
    if (controllers.empty() && fs::exists(cgroup_root / "cgroup.controllers"))  // v2
      walk(cgroup_root / path, cgroup_root, "memory.max", "memory.current");
    std::string listed = "," + controllers + ",";
    if (listed.find(",memory,") != std::string::npos)  // v1
      walk(cgroup_root / "memory" / path, cgroup_root / "memory", "memory.limit_in_bytes",
           "memory.usage_in_bytes");
  }
  return headroom;
}

bool scratch_through_page_cache(uint64_t scratch_bytes, uint64_t available_bytes) {
  return scratch_bytes <= available_bytes / 4 * 3;
}

ScratchChoice choose_scratch_directory(const std::vector<fs::path>& candidates,
                                       uint64_t needed_bytes) {
  std::string reasons;
  for (const fs::path& candidate : candidates) {
    std::error_code error;
    const fs::path directory = fs::absolute(candidate, error).lexically_normal();
    std::string reason;
    if (!fs::is_directory(directory, error))
      reason = "not a directory";
    else if (::access(directory.c_str(), W_OK | X_OK) != 0)
      reason = "not writable";
    else if (const uint64_t free = free_bytes(directory); free < needed_bytes)
      reason = "only " + bytes_text(free) + " free";
    if (reason.empty()) return {directory, remove_dead_leftovers(directory)};
    reasons += "; " + directory.string() + ": " + reason;
  }
  fail(ErrorKind::kIo, "no room for the round trip's scratch checkpoints: they need " +
                           bytes_text(needed_bytes) + reasons +
                           " (choose a directory with --scratch DIR)");
}

}  // namespace ckconv
