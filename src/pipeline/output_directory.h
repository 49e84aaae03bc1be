// Safe publication of an output directory. ckconv owns only the files it writes (see
// pipeline/publish.h): a new output is staged in a hidden sibling (".<name>.ckconv-tmp-<pid>")
// and renamed into place whole; into an existing directory the new files are staged inside
// it (".ckconv-staging-<pid>") and moved in one by one under a journal, leaving every other
// file (.git, README.md, tokenizer files) untouched. A crash, a kill or a full disk leaves the
// previous checkpoint or the new one (docs/output_safety.md says exactly what a reader sees);
// leftovers of dead runs are removed, or their publish finished, by the next run.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ckconv {

class OutputDirectory {
 public:
  // Refuses (kExists) a `target` that is not a directory, or that holds files of ckconv's
  // kinds unless `replace` (--force). An empty existing directory is fine.
  OutputDirectory(const std::filesystem::path& target, bool replace);
  // What the constructor refuses, checked without creating or removing anything (--dry-run):
  // a missing or non-directory parent (kIo), a target that is no directory or holds files
  // of ckconv's kinds without `replace` (kExists), a parent or target not writable (kIo).
  static void check_target(const std::filesystem::path& target, bool replace);
  // The same checks, publishing `adopted_staging` instead: an existing directory of complete
  // output files on the target's file system (the parts of a split conversion), which this
  // object neither creates nor removes; publish() renames it into place or moves its files
  // in under a journal written into it (recover_publish finishes that one).
  OutputDirectory(const std::filesystem::path& target, bool replace,
                  const std::filesystem::path& adopted_staging);
  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;
  // Removes the staging directory unless published, or unless a publish began (its journal
  // lets the next run finish it).
  ~OutputDirectory();

  const std::filesystem::path& staging() const { return staging_; }
  const std::filesystem::path& target() const { return target_; }
  // One sentence per leftover of a dead run that the constructor removed or finished.
  const std::vector<std::string>& cleanup_notes() const { return notes_; }

  // Publishes the staged files (after a last check for an interruption) and returns the
  // names of the files of the previous output that were replaced or removed.
  std::vector<std::string> publish();

 private:
  void recover_dead_stagings();

  std::filesystem::path target_;
  std::filesystem::path staging_;
  bool target_existed_ = false;
  bool publish_began_ = false;
  bool published_ = false;
  bool adopted_ = false;
  std::vector<std::string> notes_;
};

// A temporary directory removed with its contents on destruction (for verify's
// intermediate checkpoints): "<parent of near>/.<name of near>.ckconv-<label>-<pid>".
class ScratchDirectory {
 public:
  ScratchDirectory(const std::filesystem::path& near, const std::string& label);
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Hands the directory over to the caller, who removes it (verify/scratch_removal.h).
  std::filesystem::path release();

 private:
  std::filesystem::path path_;
};

// Refuses (kUsage) an output that is `input` or contains it: its files of ckconv's kinds
// would be replaced or removed once the conversion succeeds.
void check_output_does_not_contain(const std::filesystem::path& target,
                                   const std::filesystem::path& input);

}  // namespace ckconv
