// WrittenRanges (verify/written_ranges.h): readers of a conversion's output wait exactly until
// the bytes they need are written, in whatever order the blocks finish, and are released with
// an error when the writer fails.
#include "verify/written_ranges.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"

namespace ckconv {
namespace {

// Two files: "a" (100 bytes, a 10-byte header) and "b/c" (50 bytes, no literal bytes).
FilePlan two_files() {
  FilePlan plan;
  plan.files.push_back(PlannedFile{"a", 100, {LiteralBytes{0, std::string(10, 'h')}}});
  plan.files.push_back(PlannedFile{"b/c", 50, {}});
  return plan;
}

// Whether `wait` returns within a short time (it runs on its own thread, joined either way
// once `release` has run).
template <typename Wait, typename Release>
bool returns_before(Wait wait, Release release) {
  std::atomic<bool> returned{false};
  std::thread waiter([&] {
    wait();
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const bool early = returned.load();
  release();
  waiter.join();
  return early;
}

TEST_CASE("WrittenRanges waits until every byte of a range is written, in any order") {
  WrittenRanges ranges("/out");
  ranges.begin(two_files());
  ranges.written(0, 40, 20);
  ranges.wait_written("/out/a", 45, 10);  // inside one written range: returns at once
  CHECK_FALSE(returns_before([&] { ranges.wait_written("/out/a", 30, 25); },
                             [&] { ranges.written(0, 20, 20); }));
  // [20, 60) is now one range; [60, 100) is not written yet.
  CHECK_FALSE(returns_before([&] { ranges.wait_written("/out/./a", 50, 1000); },
                             [&] { ranges.written(0, 60, 40); }));
  ranges.wait_written("/elsewhere/a", 0, 100);  // not the writer's file: no wait
  CHECK(ranges.write_order("/out/a", 0) < ranges.write_order("/out/a", 99));
  CHECK(ranges.write_order("/out/a", 99) < ranges.write_order("/out/b/c", 0));
  CHECK(ranges.write_order("/elsewhere", 5) == 0);
}

TEST_CASE("WrittenRanges: headers, a failed writer, and a finished one") {
  {
    WrittenRanges ranges("/out");
    ranges.begin(two_files());
    CHECK_FALSE(returns_before([&] { CHECK(ranges.wait_for_headers()); },
                               [&] { ranges.written(0, 0, 4096); }));
  }
  {
    WrittenRanges ranges("/out");
    FilePlan zip = two_files();
    zip.crc_patches.push_back(Crc32Patch{0, 0, 2});
    ranges.begin(zip);
    CHECK_FALSE(ranges.wait_for_headers());  // CRCs are patched in at the end
  }
  {
    WrittenRanges ranges("/out");
    ranges.begin(two_files());
    bool threw = false;
    CHECK_FALSE(returns_before(
        [&] {
          try {
            ranges.wait_written("/out/b/c", 0, 1);
          } catch (const Error&) {
            threw = true;
          }
        },
        [&] { ranges.fail(); }));
    CHECK(threw);
  }
  {
    WrittenRanges ranges("/out");
    CHECK_FALSE(returns_before([&] { CHECK(ranges.wait_for_headers()); },
                               [&] {
                                 ranges.begin(two_files());
                                 ranges.finish();
                               }));
    ranges.wait_written("/out/b/c", 0, 50);
  }
}

}  // namespace
}  // namespace ckconv
