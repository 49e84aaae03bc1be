// The block pool: every block is built then finished exactly once, with buffers of the
// block size, whatever the thread count; progress ends at the total; the first failure is
// rethrown and stops new blocks.
#include "pipeline/block_pool.h"

#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

using namespace ckconv;

namespace {

std::vector<Block> make_blocks(size_t count) {
  std::vector<Block> blocks;
  for (size_t i = 0; i < count; ++i) blocks.push_back({0, i * 4096, i + 1 == count ? 100u : 4096u});
  return blocks;
}

}  // namespace

TEST_CASE("block pool: each block built, then finished, exactly once") {
  const std::vector<Block> blocks = make_blocks(37);
  for (int threads : {1, 2, 4}) {
    ExecuteOptions options;
    options.threads = threads;
    options.writes_in_flight = 3;
    uint64_t last_done = 0, total = 0;
    options.progress = [&](uint64_t done, uint64_t all) {
      last_done = done;
      total = all;
    };
    std::vector<std::atomic<int>> built(blocks.size()), finished(blocks.size());
    for_each_block(
        blocks, 4096, options,
        [&](size_t index, const AlignedBuffer& buffer, const AlignedBuffer& staging) {
          CHECK(buffer.size() == 4096);
          CHECK(staging.size() == 2 * 4096);
          CHECK(finished[index].load() == 0);
          buffer.data()[0] = static_cast<uint8_t>(index);
          ++built[index];
        },
        [&](size_t index, const AlignedBuffer& buffer) {
          CHECK(buffer.data()[0] == static_cast<uint8_t>(index));
          ++finished[index];
        });
    for (size_t i = 0; i < blocks.size(); ++i) {
      CHECK(built[i].load() == 1);
      CHECK(finished[i].load() == 1);
    }
    CHECK(total == 36 * 4096 + 100);
    CHECK(last_done == total);
  }
}

TEST_CASE("block pool: the first failure is rethrown") {
  const std::vector<Block> blocks = make_blocks(50);
  ExecuteOptions options;
  options.threads = 2;
  std::atomic<int> finished{0};
  CHECK_THROWS_WITH_AS(for_each_block(
                           blocks, 4096, options,
                           [&](size_t index, const AlignedBuffer&, const AlignedBuffer&) {
                             if (index == 3) throw std::runtime_error("block 3 failed");
                           },
                           [&](size_t, const AlignedBuffer&) { ++finished; }),
                       "block 3 failed", std::runtime_error);
  CHECK(finished.load() < 50);
}
