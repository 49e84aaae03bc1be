// Removing verify's scratch checkpoints without making the user wait for it. Unlinking a
// file of many GB is not free: the file system frees its blocks and the kernel drops its
// cached pages when the last reference goes, which took about 1 s for two 3.85 GB
// intermediates (docs/benchmarks.md). The verdict does not depend on it, so it happens after
// the verdict is printed and the output published, and in a detached process.
#pragma once

#include <filesystem>
#include <vector>

namespace ckconv {

// Removes `directories` and everything in them. A detached child process (own session,
// stdin/stdout/stderr on /dev/null, so a caller reading our output does not wait for it)
// first opens every regular file in them; then their names are removed here, which is quick
// since the child still holds the files; once this process exits, the child closes them and
// the file system frees the space. Whatever fails along the way (no fork, a file that cannot
// be opened) is removed here instead. Call it only while no other thread runs (it forks).
void remove_in_background(const std::vector<std::filesystem::path>& directories);

}  // namespace ckconv
