// Atomic publication of an output directory. Files are written into a hidden staging
// sibling (".<name>.ckconv-tmp-<pid>") and the staging directory is renamed into place only
// when complete and synced, so a crash, a kill or a full disk leaves either no output or the
// previous complete one. Staging directories of dead processes are removed on the next run.
#pragma once

#include <filesystem>

namespace ckconv {

class OutputDirectory {
 public:
  // Refuses (kExists) when `target` exists and `replace` is false.
  OutputDirectory(const std::filesystem::path& target, bool replace);
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;
  ~OutputDirectory();  // removes the staging directory unless published

  const std::filesystem::path& staging() const { return staging_; }
  const std::filesystem::path& target() const { return target_; }
  // fsyncs the staging directory, renames it to the target (atomically replacing an old
  // one), and fsyncs the parent.
  void publish();

 private:
  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool replace_;
  bool published_ = false;
};

// A temporary directory removed with its contents on destruction (for verify's
// intermediate checkpoints). Created next to `near` so it is on the same filesystem.
class ScratchDirectory {
 public:
  ScratchDirectory(const std::filesystem::path& near, const std::string& label);
  ~ScratchDirectory();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Refuses (kUsage) an output that is `input` or contains it: replacing it with --force would
// delete the input (and whatever else the directory holds) once the conversion succeeds.
void check_output_does_not_contain(const std::filesystem::path& target,
                                   const std::filesystem::path& input);

// Removes ".<name>.ckconv-*-<pid>" siblings of `target` whose process is gone.
void remove_stale_staging(const std::filesystem::path& target);

}  // namespace ckconv
