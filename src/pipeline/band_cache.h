// A bounded cache of built bands: consecutive whole rows of a tensor's output that several
// blocks copy from. A transposed tensor's block reads a few columns of every source row of
// its expert, so building it alone maps every source page once per block; a band built in
// one pass over the source rows serves all the blocks it overlaps, so each source page is
// mapped once per band instead.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "pipeline/strided_copy.h"

namespace ckconv {

// A band's bytes in an anonymous mapping of their own: freed through the allocator, blocks
// of this size stay in its arenas and peak RSS grows with the number of bands built.
class BandBuffer {
 public:
  explicit BandBuffer(size_t size);
  ~BandBuffer();
  BandBuffer(const BandBuffer&) = delete;
  BandBuffer& operator=(const BandBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The memory of band builds, shared by every band cache of a run (verify's overlapped
// conversions share one): at most `builders` bands are built at once, whatever the number of
// threads, so that the bands being built and the source stripes they map stay a fixed
// number; band buffers are handed back here when their last holder lets go and reused, since
// a fresh one costs a page fault and a page of zeros per page (measured at a fifth of a
// transposing conversion's CPU); and at most `builders` plus the kept bands of every cache
// are alive at once: a build that would need one more waits until a holder lets one go, so
// that the bands threads are still copying from do not grow with the number of threads.
// Must outlive every buffer it hands out and every cache using it.
class BandMemory {
 public:
  // Bands of about `band_bytes` of whole rows (at least one row), `builders` built at once
  // at most; their strided reads (and the builders' others) are copied in stripes of
  // `stripe_bytes` of source (copy_in_stripes).
  BandMemory(size_t builders, uint64_t band_bytes, uint64_t stripe_bytes = kMaxSparseSpanBytes);
  BandMemory(const BandMemory&) = delete;
  BandMemory& operator=(const BandMemory&) = delete;

  // Held while a band is built: the right to build one.
  class BuildSlot {
   public:
    explicit BuildSlot(BandMemory& memory);
    ~BuildSlot();
    BuildSlot(const BuildSlot&) = delete;
    BuildSlot& operator=(const BuildSlot&) = delete;

   private:
    BandMemory& memory_;
  };

  // A buffer of at least `size` bytes (contents unspecified): a free one when one is large
  // enough, else a new one of at least a band's bytes, so that every buffer serves every
  // band whatever its tensor; waits while the buffers alive are at their bound and none is
  // free. It returns here when the last shared_ptr to it is dropped. Callers hold a
  // BuildSlot and no other buffer, so that a wait ends when a band being copied from is let
  // go (the bound leaves room for every kept band and every build).
  std::shared_ptr<BandBuffer> buffer(size_t size);

  // A cache keeping up to `bands` built bands joins (or leaves) the bound on buffers alive.
  void add_kept(size_t bands);
  void remove_kept(size_t bands);

  uint64_t band_bytes() const { return band_bytes_; }
  uint64_t stripe_bytes() const { return stripe_bytes_; }
  // Buffers alive (held or free), the most ever alive and the most ever built at once: for
  // tests.
  size_t buffers() const;
  size_t most_buffers() const;
  size_t most_building() const;

 private:
  void give_back(BandBuffer* buffer);

  const size_t builders_;
  const uint64_t band_bytes_;
  const uint64_t stripe_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable slot_freed_;
  std::condition_variable buffer_freed_;
  size_t building_ = 0;
  size_t most_building_ = 0;
  size_t kept_ = 0;  // the kept bands of the caches using this memory
  size_t buffers_ = 0;
  size_t most_buffers_ = 0;
  // Free buffers: a band's buffer is freed when no cache keeps it and no caller holds it.
  std::vector<std::unique_ptr<BandBuffer>> free_;
};

class BandCache {
 public:
  // A band a caller holds: its buffer stays alive, and out of reuse, until the handle is
  // dropped. Handles are counted per thread so that get() can refuse a caller that still
  // holds one; a handle stays on the thread that got it.
  class Band {
   public:
    Band() = default;
    Band(Band&& other) noexcept;
    Band& operator=(Band&& other) noexcept;
    Band(const Band&) = delete;
    Band& operator=(const Band&) = delete;
    ~Band();
    const BandBuffer* operator->() const { return buffer_.get(); }
    void reset();

   private:
    friend class BandCache;
    explicit Band(std::shared_ptr<const BandBuffer> buffer);
    std::shared_ptr<const BandBuffer> buffer_;
  };
  using Build = std::function<void(uint8_t* out)>;

  // Keeps at most `capacity` built bands (at least one) besides the ones callers still hold
  // or are building; builds them in `memory`'s buffers and slots (which must outlive the
  // cache and its bands).
  BandCache(size_t capacity, BandMemory& memory);
  ~BandCache();
  BandCache(const BandCache&) = delete;
  BandCache& operator=(const BandCache&) = delete;

  // The bytes of band `key` (`size` bytes), built by build(out) on this thread when no
  // thread has built or is building them, else waited for. While another thread builds
  // `key`, a caller with ahead_build builds band `ahead_key` (ahead_size bytes) if nobody
  // has, so that two threads reaching the same band build neighbouring bands instead of
  // one waiting. A build that throws leaves the band absent (a waiter builds it again) and
  // the exception propagates to its caller. The result does not depend on which thread
  // built the band: build must be a pure function of the key. The caller must hold no band
  // of any cache sharing this one's memory, since a build waits for buffers to be let go: a
  // thread that holds a band of any cache fails with kInternal instead of risking the wait.
  Band get(uint64_t key, uint64_t size, const Build& build, uint64_t ahead_key = 0,
           uint64_t ahead_size = 0, const Build& ahead_build = nullptr);

  // Bands held by the cache (built and kept, or being built): for tests.
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const BandBuffer> band;  // null while building
    uint64_t last_use = 0;
  };
  // Builds `key` on this thread: it is already registered as building. Publishes the band
  // (or removes the entry when build throws) and wakes the waiters.
  Band build_claimed(std::unique_lock<std::mutex>& lock, uint64_t key, uint64_t size,
                     const Build& build);
  void evict_locked();

  const size_t capacity_;
  BandMemory& memory_;
  mutable std::mutex mutex_;
  std::condition_variable built_;
  std::map<uint64_t, Entry> entries_;
  uint64_t clock_ = 0;
};

}  // namespace ckconv
