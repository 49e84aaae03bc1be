// The names of ckconv's temporary folders, and the clean-up of those whose run is gone.
// Every temporary folder ends in the pid of the run that made it:
//   <dir>/.<name>.ckconv-tmp-<pid>       staging of an output that did not exist yet
//   <dir>/.<name>.ckconv-verify<N>-<pid> round-trip scratch (N = 1, 2, 3)
//   <output>/.ckconv-staging-<pid>       staging of a publish into an existing output
// A run is gone when kill(pid, 0) says no such process. A pid reused by an unrelated
// process only delays the clean-up; runs in another pid namespace sharing the directory
// are not told apart (their leftovers look alive or dead by our namespace's pids).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ckconv {

// "<parent of base>/.<name of base>.ckconv-<kind>-<our pid>".
std::filesystem::path temporary_sibling(const std::filesystem::path& base, const std::string& kind);
// "<output>/.ckconv-staging-<our pid>".
std::filesystem::path staging_inside(const std::filesystem::path& output);

// The pid in a temporary folder's name (either form), or nothing for any other name.
std::optional<pid_t> leftover_pid(const std::string& name);
// The pid of a `.ckconv-staging-<pid>` name, or nothing.
std::optional<pid_t> staging_inside_pid(const std::string& name);

bool process_is_gone(pid_t pid);

// Removes every `.<name>.ckconv-<kind>-<pid>` entry of `directory` whose run is gone (an
// earlier version's `.<name>.ckconv-old-<pid>`, a complete output displaced by a killed run,
// is renamed back to <name> when that is free); returns one sentence per entry. Errors (a
// read-only directory) are ignored: the leftovers stay.
std::vector<std::string> remove_dead_leftovers(const std::filesystem::path& directory);

}  // namespace ckconv
