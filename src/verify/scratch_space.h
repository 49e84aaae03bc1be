// Where the round trip keeps its intermediate checkpoints. The first candidate directory that
// is writable and has room is used; the room is checked up front (statvfs) so a full disk
// is reported before any work, naming the directory, the bytes needed and the bytes free.
// Leftover scratch folders of dead runs in the chosen directory are removed on the way.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ckconv {

struct ScratchChoice {
  std::filesystem::path directory;
  std::vector<std::string> notes;  // leftovers of dead runs removed there
};

// `candidates` in order of preference (--scratch DIR alone when given). Fails (kIo) when none
// is a writable directory with `needed_bytes` free, saying why for each.
ScratchChoice choose_scratch_directory(const std::vector<std::filesystem::path>& candidates,
                                       uint64_t needed_bytes);

// $TMPDIR when set, else /tmp.
std::filesystem::path default_temporary_directory();

// Bytes an unprivileged user may still write on the file system holding `directory`.
uint64_t free_bytes(const std::filesystem::path& directory);

// Whether two existing paths are on one file system (so the space they need adds up).
bool same_file_system(const std::filesystem::path& a, const std::filesystem::path& b);

// Bytes of the round trip's intermediates, from the size of the first conversion's output:
// that output (unless it is already written) and the conversion back, about as large plus
// its headers. A value-changing conversion (`starts_from_output`: --dtype, dequantization;
// verify/roundtrip.h) writes that output (unless already written), then round-trips it: a
// conversion of it and the conversion back, each about as large plus headers, three copies
// in all.
uint64_t round_trip_scratch_bytes(uint64_t first_output_bytes, bool first_already_written,
                                  bool starts_from_output = false);

// Memory the kernel can give to new allocations without swapping (MemAvailable in
// /proc/meminfo), and at most what the memory limits of this process's cgroups leave
// (cgroup_memory_headroom; a job of a batch scheduler is usually limited far below the
// machine's memory), or 0 when /proc/meminfo cannot be read.
uint64_t available_memory_bytes();

// The least of limit - usage over the cgroups that `proc_cgroup` (the format of
// /proc/self/cgroup) names under `cgroup_root` (/sys/fs/cgroup), and their ancestors:
// memory.max - memory.current on cgroup v2, memory.limit_in_bytes - memory.usage_in_bytes
// on v1's memory hierarchy. Usage counts the page cache the cgroup holds, so this is a lower
// bound. UINT64_MAX when no limit applies or none can be read.
uint64_t cgroup_memory_headroom(const std::filesystem::path& proc_cgroup,
                                const std::filesystem::path& cgroup_root);

// Whether the round trip writes its scratch checkpoints (`scratch_bytes` in all) through the
// page cache instead of around it: when they take at most three quarters of `available_bytes`
// the next conversion reads each back from memory instead of the device (docs/benchmarks.md,
// "verify against its I/O floor"); the first of them is read once and can then be evicted,
// so the input, about half their size, still fits beside the rest. Larger ones would push
// the input and other files out of the cache and still come back from the device.
bool scratch_through_page_cache(uint64_t scratch_bytes, uint64_t available_bytes);

}  // namespace ckconv
