// The block pool (see block_pool.h): a free list of staging buffers bounds the builders, and
// an atomic counter deals blocks out in file order (or a given order).
#include "pipeline/block_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "core/interrupt.h"

namespace ckconv {
namespace {

// One staging buffer per builder: acquire() waits for a free one, so at most `count` blocks
// are built at once. Staging buffers are only touched (and so only resident) when sources
// are not cached. Waiters sleep on a condition variable: libstdc++'s counting_semaphore
// spins with sched_yield before it sleeps, and with more workers than cores those yields
// cost ~20,000 system calls per verify of a llama4 layer.
class StagingPool {
 public:
  StagingPool(int count, uint64_t size_bytes) {
    for (int i = 0; i < count; ++i) free_.push_back(std::make_unique<AlignedBuffer>(size_bytes));
  }
  std::unique_ptr<AlignedBuffer> acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    freed_.wait(lock, [&] { return !free_.empty(); });
    std::unique_ptr<AlignedBuffer> buffer = std::move(free_.back());
    free_.pop_back();
    return buffer;
  }
  void release(std::unique_ptr<AlignedBuffer> buffer) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      free_.push_back(std::move(buffer));
    }
    freed_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<AlignedBuffer>> free_;
};

}  // namespace

void for_each_block(const std::vector<Block>& blocks, uint64_t block_bytes,
                    const ExecuteOptions& options, const BuildBlock& build,
                    const FinishBlock& finish, const std::vector<size_t>& order) {
  uint64_t total_bytes = 0;
  for (const Block& block : blocks) total_bytes += block.size_bytes;
  const int threads = std::max(1, options.threads);
  const size_t workers =
      std::min(blocks.size(), static_cast<size_t>(threads + options.writes_in_flight));
  StagingPool staging_pool(threads, 2 * block_bytes);
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done_bytes{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex mutex;  // guards first_error and last_report
  auto last_report = std::chrono::steady_clock::now();
  auto report = [&](uint64_t done) {
    std::lock_guard<std::mutex> lock(mutex);
    auto now = std::chrono::steady_clock::now();
    if (now - last_report > std::chrono::milliseconds(500) || done == total_bytes) {
      last_report = now;
      options.progress(done, total_bytes);
    }
  };
  auto worker = [&]() {
    try {
      AlignedBuffer buffer(block_bytes);
      while (!failed.load()) {
        throw_if_interrupted();  // SIGINT/SIGTERM/SIGHUP: stop at the next block
        std::unique_ptr<AlignedBuffer> staging = staging_pool.acquire();
        const size_t position = next.fetch_add(1);
        if (position >= blocks.size()) {
          staging_pool.release(std::move(staging));
          break;
        }
        const size_t index = order.empty() ? position : order[position];
        try {
          build(index, buffer, *staging);
        } catch (...) {
          staging_pool.release(std::move(staging));
          throw;
        }
        staging_pool.release(std::move(staging));
        finish(index, buffer);
        const uint64_t size = blocks[index].size_bytes;
        const uint64_t done = done_bytes.fetch_add(size) + size;
        if (options.progress) report(done);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!first_error) first_error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(worker);
  worker();
  for (auto& thread : pool) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace ckconv
