// The band cache (see band_cache.h): one mutex guards the entries; a band being built is an
// entry without bytes, and threads needing it wait on one condition variable.
#include "pipeline/band_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>
#include <utility>

#include "core/error.h"

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

BandMemory::BandMemory(size_t builders, uint64_t band_bytes, uint64_t stripe_bytes)
    : builders_(std::max<size_t>(1, builders)),
      band_bytes_(band_bytes),
      stripe_bytes_(std::max<uint64_t>(1, stripe_bytes)) {}

BandMemory::BuildSlot::BuildSlot(BandMemory& memory) : memory_(memory) {
  std::unique_lock<std::mutex> lock(memory_.mutex_);
  memory_.slot_freed_.wait(lock, [&] { return memory_.building_ < memory_.builders_; });
  ++memory_.building_;
  memory_.most_building_ = std::max(memory_.most_building_, memory_.building_);
}

BandMemory::BuildSlot::~BuildSlot() {
  {
    std::lock_guard<std::mutex> lock(memory_.mutex_);
    --memory_.building_;
  }
  memory_.slot_freed_.notify_one();
}

std::shared_ptr<BandBuffer> BandMemory::buffer(size_t size) {
  std::unique_ptr<BandBuffer> found;
  std::unique_ptr<BandBuffer> too_small;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      // The smallest free buffer that is large enough.
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if ((*it)->size() >= size && (best == free_.end() || (*it)->size() < (*best)->size()))
          best = it;
      if (best != free_.end()) {
        found = std::move(*best);
        free_.erase(best);
        break;
      }
      if (buffers_ < builders_ + kept_) {
        ++buffers_;
        most_buffers_ = std::max(most_buffers_, buffers_);
        break;
      }
      if (!free_.empty()) {
        // At the bound with only smaller free buffers: the new one takes the place of one.
        too_small = std::move(free_.back());
        free_.pop_back();
        break;
      }
      buffer_freed_.wait(lock);
    }
  }
  too_small.reset();  // unmapped outside the lock
  if (!found) {
    try {
      found =
          std::make_unique<BandBuffer>(std::max<size_t>(size, static_cast<size_t>(band_bytes_)));
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --buffers_;
      }
      buffer_freed_.notify_one();
      throw;
    }
  }
  return std::shared_ptr<BandBuffer>(found.release(),
                                     [this](BandBuffer* buffer) { give_back(buffer); });
}

void BandMemory::give_back(BandBuffer* buffer) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.emplace_back(buffer);
  }
  buffer_freed_.notify_one();
}

void BandMemory::add_kept(size_t bands) {
  std::lock_guard<std::mutex> lock(mutex_);
  kept_ += bands;
}

void BandMemory::remove_kept(size_t bands) {
  std::lock_guard<std::mutex> lock(mutex_);
  kept_ -= bands;
}

size_t BandMemory::buffers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return buffers_;
}

size_t BandMemory::most_buffers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return most_buffers_;
}

size_t BandMemory::most_building() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return most_building_;
}

namespace {
thread_local size_t bands_held = 0;  // Band handles alive on this thread
}  // namespace

BandCache::Band::Band(std::shared_ptr<const BandBuffer> buffer) : buffer_(std::move(buffer)) {
  if (buffer_) ++bands_held;
}

BandCache::Band::Band(Band&& other) noexcept : buffer_(std::move(other.buffer_)) {}

BandCache::Band& BandCache::Band::operator=(Band&& other) noexcept {
  if (this != &other) {
    reset();
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

BandCache::Band::~Band() {
  reset();
}

void BandCache::Band::reset() {
  if (!buffer_) return;
  buffer_.reset();
  --bands_held;
}

BandCache::BandCache(size_t capacity, BandMemory& memory)
    : capacity_(std::max<size_t>(1, capacity)), memory_(memory) {
  memory_.add_kept(capacity_);
}

BandCache::~BandCache() {
  memory_.remove_kept(capacity_);
}

BandCache::Band BandCache::get(uint64_t key, uint64_t size, const Build& build, uint64_t ahead_key,
                               uint64_t ahead_size, const Build& ahead_build) {
  if (bands_held != 0)
    fail(ErrorKind::kInternal,
         "BandCache::get on a thread that holds a band: its build could wait forever for a "
         "band buffer");
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
      return Band(found->second.band);
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
  lock.unlock();
  std::shared_ptr<BandBuffer> band;
  try {
    const BandMemory::BuildSlot slot(memory_);
    band = memory_.buffer(static_cast<size_t>(size));
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
  return Band(band);
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
    entries_.erase(oldest);
  }
}

}  // namespace ckconv
