// Atomic publication: staging, publish, and the clean-up of runs that were killed.
#include "pipeline/output_directory.h"

#include <doctest/doctest.h>

#include <fstream>

#include "core/error.h"
#include "format_test_helpers.h"

namespace ckconv {
namespace {

namespace fs = std::filesystem;

// Above any pid_max, so kill(pid, 0) says no such process: the run that left it is dead.
constexpr const char* kDeadPid = "999999999";

void touch(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST_CASE("output directory: published only when complete, previous output kept until then") {
  test::TempDir dir;
  const fs::path target = dir / "out";
  {
    OutputDirectory output(target, false);
    touch(output.staging() / "a", "new");
    CHECK(!fs::exists(target));
  }  // destroyed without publish: as if the conversion failed
  CHECK(!fs::exists(target));
  CHECK(fs::is_empty(dir.path()));
  {
    OutputDirectory output(target, false);
    touch(output.staging() / "a", "first");
    output.publish();
  }
  CHECK_THROWS_AS(OutputDirectory(target, false), Error);
  {
    OutputDirectory output(target, true);
    touch(output.staging() / "a", "second");
    CHECK(test::read_file(target / "a") == "first");
    output.publish();
  }
  CHECK(test::read_file(target / "a") == "second");
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

TEST_CASE("output directory: staging of a killed run is removed by the next run") {
  test::TempDir dir;
  const fs::path stale = dir / (std::string(".out.ckconv-tmp-") + kDeadPid);
  touch(stale / "model.safetensors", "partial");
  touch(dir / ".other.ckconv-tmp-1" / "x", "someone else's");  // another target: untouched
  OutputDirectory output(dir / "out", false);
  CHECK(!fs::exists(stale));
  CHECK(fs::exists(dir / ".other.ckconv-tmp-1" / "x"));
}

TEST_CASE("output directory: an output displaced by a run killed mid-replace comes back") {
  // publish()'s fallback (no RENAME_EXCHANGE) renames the old output aside, then the new one
  // in; a kill between the two leaves only ".out.ckconv-old-<pid>".
  test::TempDir dir;
  touch(dir / (std::string(".out.ckconv-old-") + kDeadPid) / "a", "previous");
  CHECK_THROWS_AS(OutputDirectory(dir / "out", false), Error);  // it is back: exists
  CHECK(test::read_file(dir / "out" / "a") == "previous");
  // With an output in place, a leftover "old" copy is just removed.
  touch(dir / (std::string(".out.ckconv-old-") + kDeadPid) / "a", "older");
  OutputDirectory output(dir / "out", true);
  CHECK(!fs::exists(dir / (std::string(".out.ckconv-old-") + kDeadPid)));
  CHECK(test::read_file(dir / "out" / "a") == "previous");
}

}  // namespace
}  // namespace ckconv
