// The band cache (see band_cache.h): one mutex guards the entries; a band being built is an
// entry without bytes, and threads needing it wait on one condition variable.
#include "pipeline/band_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>

namespace ckconv {

BandBuffer::BandBuffer(size_t size) : size_(size) {
  void* memory = ::mmap(nullptr, std::max<size_t>(size, 1), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(memory);
  // Huge pages where the system allows them: a transposing build writes one short run to
  // each of many rows of the band.
  ::madvise(memory, std::max<size_t>(size, 1), MADV_HUGEPAGE);
}

BandBuffer::~BandBuffer() {
  ::munmap(data_, std::max<size_t>(size_, 1));
}

BandCache::BandCache(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

BandCache::Band BandCache::get(uint64_t key, uint64_t size, const Build& build, uint64_t ahead_key,
                               uint64_t ahead_size, const Build& ahead_build) {
  std::unique_lock<std::mutex> lock(mutex_);
  bool tried_ahead = !ahead_build;
  while (true) {
    auto found = entries_.find(key);
    if (found == entries_.end()) {
      entries_.emplace(key, Entry{});
      return build_claimed(lock, key, size, build);
    }
    if (found->second.band) {
      found->second.last_use = ++clock_;
      return found->second.band;
    }
    if (!tried_ahead) {
      tried_ahead = true;
      if (entries_.find(ahead_key) == entries_.end()) {
        entries_.emplace(ahead_key, Entry{});
        build_claimed(lock, ahead_key, ahead_size, ahead_build);
        continue;
      }
    }
    built_.wait(lock);
  }
}

size_t BandCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

BandCache::Band BandCache::build_claimed(std::unique_lock<std::mutex>& lock, uint64_t key,
                                         uint64_t size, const Build& build) {
  std::shared_ptr<BandBuffer> band;
  for (auto it = spare_.begin(); it != spare_.end(); ++it)
    if ((*it)->size() == size) {
      band = std::move(*it);
      spare_.erase(it);
      break;
    }
  lock.unlock();
  try {
    if (!band) band = std::make_shared<BandBuffer>(static_cast<size_t>(size));
    build(band->data());
  } catch (...) {
    lock.lock();
    entries_.erase(key);
    built_.notify_all();
    throw;
  }
  lock.lock();
  Entry& entry = entries_.at(key);
  entry.band = band;
  entry.last_use = ++clock_;
  evict_locked();
  built_.notify_all();
  return band;
}

// Drops the least recently used built bands beyond the capacity. Callers holding one keep
// it alive until they let it go.
void BandCache::evict_locked() {
  while (true) {
    size_t built = 0;
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!it->second.band) continue;
      ++built;
      if (oldest == entries_.end() || it->second.last_use < oldest->second.last_use) oldest = it;
    }
    if (built <= capacity_) return;
    // Under the lock nobody can take a new reference to an entry: a count of one is final.
    if (oldest->second.band.use_count() == 1 && spare_.empty())
      spare_.push_back(std::move(oldest->second.band));
    entries_.erase(oldest);
  }
}

}  // namespace ckconv
