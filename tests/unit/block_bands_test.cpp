// Bands of transposed tensors (pipeline/band_cache.h): the cache builds each band once and
// keeps a bounded number, a failed build is retried, and a transposed tensor read from a
// mapped file comes out byte-identical to a reference at every block size and thread count,
// whichever thread built which band.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "format_test_helpers.h"
#include "layout/recipe.h"
#include "pipeline/band_cache.h"
#include "pipeline/executor.h"
#include "pipeline/mapped_checkpoint.h"

using namespace ckconv;

TEST_CASE("the band cache builds a band once, keeps a bounded number and retries failures") {
  BandMemory memory(1, 1);
  BandCache cache(2, memory);
  int builds = 0;
  auto fill = [&](uint8_t value) {
    return [&builds, value](uint8_t* out) {
      ++builds;
      out[0] = value;
    };
  };
  CHECK(cache.get(1, 1, fill(1))->data()[0] == 1);
  CHECK(cache.get(1, 1, fill(9))->data()[0] == 1);  // kept: not built again
  CHECK(builds == 1);
  BandCache::Band held = cache.get(2, 1, fill(2));
  // Other threads go on while this one holds band 2; this one may not get another.
  size_t kept = 0;
  uint8_t rebuilt = 0;
  std::thread([&] {
    cache.get(3, 1, fill(3));  // evicts band 1, the least recently used
    kept = cache.size();
    rebuilt = cache.get(1, 1, fill(4))->data()[0];  // built again
  }).join();
  CHECK(kept == 2);
  CHECK(rebuilt == 4);
  CHECK(builds == 4);
  CHECK(held->data()[0] == 2);  // a caller's band outlives its eviction
  CHECK_THROWS_AS(cache.get(5, 1, fill(5)), Error);
  BandCache::Band moved = std::move(held);  // still held, by the same thread
  CHECK_THROWS_AS(cache.get(5, 1, fill(5)), Error);
  moved.reset();
  CHECK(builds == 4);
  CHECK(cache.get(5, 1, fill(5))->data()[0] == 5);

  CHECK_THROWS_AS(cache.get(7, 1, [](uint8_t*) { throw std::runtime_error("read"); }),
                  std::runtime_error);
  CHECK(cache.get(7, 1, fill(7))->data()[0] == 7);
}

TEST_CASE("band memory bounds the builds and buffers of every cache sharing it and reuses them") {
  constexpr size_t kBuilders = 2;
  BandMemory memory(kBuilders, 1);
  BandCache first(2, memory), second(2, memory);
  std::atomic<int> building{0}, most{0};
  auto build = [&](uint64_t key) {
    return [&, key](uint8_t* out) {
      const int now = ++building;
      for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));
      out[0] = static_cast<uint8_t>(key);
      out[4095] = static_cast<uint8_t>(key);
      --building;
    };
  };
  std::atomic<int> wrong{0};
  auto walk = [&](BandCache& cache, uint64_t from) {
    for (uint64_t key = from; key < from + 40; ++key) {
      // Sizes vary: a free buffer serves any band that fits in it.
      const BandCache::Band band = cache.get(key, 4096 - key % 3, build(key));
      if (band->size() < 4096 - key % 3 || band->data()[0] != static_cast<uint8_t>(key)) ++wrong;
      // Copying from it a while: its cache may evict it meanwhile.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back(walk, std::ref(t % 2 == 0 ? first : second), uint64_t(t) * 100);
  for (auto& thread : threads) thread.join();
  CHECK(wrong == 0);
  CHECK(most.load() <= static_cast<int>(kBuilders));
  CHECK(memory.most_building() <= kBuilders);
  // Never more buffers than the kept bands (2 per cache) and one per builder, however many
  // threads copy from bands the caches no longer keep; and not one buffer per build.
  CHECK(memory.most_buffers() <= 2 * 2 + kBuilders);
  CHECK(memory.buffers() <= 2 * 2 + kBuilders);
}

TEST_CASE("threads meeting at a band build neighbouring bands, each once") {
  constexpr int kBands = 64;
  BandMemory memory(2, 1);
  BandCache cache(kBands, memory);
  std::vector<std::atomic<int>> builds(kBands + 1);
  auto build = [&](int band) {
    return [&, band](uint8_t* out) {
      ++builds[band];
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      out[0] = static_cast<uint8_t>(band);
    };
  };
  std::atomic<int> wrong{0};
  auto walk = [&]() {
    for (int band = 0; band < kBands; ++band)
      if (cache.get(band, 1, build(band), band + 1, 1, build(band + 1))->data()[0] != band) ++wrong;
  };
  std::thread other(walk);
  walk();
  other.join();
  CHECK(wrong == 0);
  for (int band = 0; band < kBands; ++band) CHECK(builds[band] == 1);
}

namespace {

// A source file that starts as zeros and gets its real bytes only when a block waits for
// them: a block that read bytes it did not wait for would see zeros, and not match.
class WritingGate : public SourceGate {
 public:
  WritingGate(std::filesystem::path path, std::string bytes)
      : path_(std::move(path)), bytes_(std::move(bytes)) {}
  void wait_written(const std::filesystem::path& path, uint64_t offset,
                    uint64_t size) const override {
    REQUIRE(path == path_);
    REQUIRE(offset + size <= bytes_.size());
    std::lock_guard<std::mutex> lock(mutex_);
    std::fstream file(path_, std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(bytes_.data() + offset, static_cast<std::streamsize>(size));
    largest_ = std::max(largest_, size);
  }
  uint64_t write_order(const std::filesystem::path&, uint64_t offset) const override {
    return offset;
  }
  uint64_t largest_wait() const { return largest_; }

 private:
  std::filesystem::path path_;
  std::string bytes_;
  mutable std::mutex mutex_;
  mutable uint64_t largest_ = 0;
};

// Element i of source `seed` (bf16 bits): distinct across sources and positions.
uint16_t element(int seed, int64_t i) {
  return static_cast<uint16_t>(seed * 40503 + i * 7 + i / 13);
}

void append(std::string* bytes, uint16_t value) {
  bytes->push_back(static_cast<char>(value & 0xff));
  bytes->push_back(static_cast<char>(value >> 8));
}

}  // namespace

TEST_CASE("banded transposes match a reference at every block size and thread count") {
  // llama4's expert layouts in miniature: gate_up [E, D, 2F] = cat(w1^T, w3^T) of w1, w3
  // [E, F, D] (to-hf), and w3 back from a stored gate_up (from-hf). Odd offsets in the file
  // keep the source elements unaligned.
  const int64_t E = 3, F = 41, D = 301;
  test::TempDir temp;
  std::string source = "xyz";
  const uint64_t w1_offset = source.size();
  for (int64_t i = 0; i < E * F * D; ++i) append(&source, element(1, i));
  const uint64_t w3_offset = source.size();
  for (int64_t i = 0; i < E * F * D; ++i) append(&source, element(3, i));
  const uint64_t gate_up_offset = source.size();
  for (int64_t i = 0; i < E * D * 2 * F; ++i) append(&source, element(5, i));
  std::ofstream(temp.path() / "source.bin", std::ios::binary) << std::string(source.size(), '\0');

  Catalog catalog;
  catalog.files = {temp.path() / "source.bin"};
  auto stored = [](const std::string& name, const Shape& shape, uint64_t offset) {
    return CatalogTensor{
        name,
        DType::kBF16,
        shape,
        {StoredChunk{Shape(shape.size(), 0), shape, contiguous_strides(shape), 0, offset}}};
  };
  catalog.tensors = {stored("w1", {E, F, D}, w1_offset), stored("w3", {E, F, D}, w3_offset),
                     stored("gate_up", {E, D, 2 * F}, gate_up_offset)};
  const MappedCheckpoint checkpoint(std::move(catalog));
  // Written once for execute (below); matches_files then starts again from zeros.
  WritingGate{temp.path() / "source.bin", source}.wait_written(temp.path() / "source.bin", 0,
                                                               source.size());
  auto ref = [&](int k) { return SourceRef{&checkpoint, &checkpoint.catalog().tensors[k], {}}; };

  ExecutionPlan plan;
  plan.recipes.push_back(
      recipe_concat_transposed("gate_up", {"w1", "w3"}, {{E, F, D}, {E, F, D}}, DType::kBF16));
  plan.sources.push_back({ref(0), ref(1)});
  plan.recipes.push_back(
      recipe_split_transposed("w3", "gate_up", 1, {{E, F, D}, {E, F, D}}, DType::kBF16));
  plan.sources.push_back({ref(2)});

  std::string expected = "HDR";
  const uint64_t first_offset = expected.size();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t j = 0; j < 2 * F; ++j)
        append(&expected, element(j < F ? 1 : 3, (e * F + j % F) * D + d));
  const uint64_t second_offset = expected.size();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t f = 0; f < F; ++f)
      for (int64_t d = 0; d < D; ++d) append(&expected, element(5, (e * D + d) * 2 * F + F + f));
  FilePlan file_plan;
  file_plan.files.push_back(PlannedFile{"out.bin", expected.size(), {LiteralBytes{0, "HDR"}}});
  file_plan.placements = {TensorPlacement{0, 0, first_offset},
                          TensorPlacement{1, 0, second_offset}};

  for (uint64_t block : {uint64_t{4096}, uint64_t{8192}, uint64_t{1} << 20}) {
    for (int threads : {1, 2, 3}) {
      CAPTURE(block);
      CAPTURE(threads);
      const auto out =
          temp.path() / ("out-" + std::to_string(block) + "-" + std::to_string(threads));
      std::filesystem::create_directories(out);
      ExecuteOptions options;
      options.block_bytes = block;
      options.threads = threads;
      options.writes_in_flight = threads == 1 ? 0 : 2;
      execute(plan, file_plan, out, options);
      std::ifstream in(out / "out.bin", std::ios::binary);
      CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == expected);
    }
  }
  // The same bytes whatever the stripes the bands' strided reads are copied in: a source row
  // (602 bytes of w1) or a few per stripe, an expert's rows, or one stripe for everything.
  for (uint64_t stripe : {uint64_t{1}, uint64_t{2000}, uint64_t(F * D * 2), uint64_t{1} << 30}) {
    CAPTURE(stripe);
    BandMemory memory(2, 3 * 4096, stripe);
    CHECK(memory.stripe_bytes() == stripe);
    const auto out = temp.path() / ("out-stripe-" + std::to_string(stripe));
    std::filesystem::create_directories(out);
    ExecuteOptions options;
    options.block_bytes = 4096;
    options.threads = 2;
    options.band_memory = &memory;
    execute(plan, file_plan, out, options);
    std::ifstream in(out / "out.bin", std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == expected);
  }

  // Compared while its source is written (verify's third conversion): each block waits only
  // for the bytes it reads (an expert's rows, not the whole stacked tensor), and reads none
  // it did not wait for.
  for (uint64_t block : {uint64_t{4096}, uint64_t{1} << 20}) {
    for (int threads : {1, 3}) {
      CAPTURE(block);
      CAPTURE(threads);
      std::ofstream(temp.path() / "source.bin", std::ios::binary)
          << std::string(source.size(), '\0');
      const WritingGate gate(temp.path() / "source.bin", source);
      const auto out = temp.path() / ("out-" + std::to_string(block) + "-1");
      ExecuteOptions options;
      options.block_bytes = block;
      options.threads = threads;
      options.source_gate = &gate;
      CHECK(matches_files(plan, file_plan, out, options));
      // Banded (a tensor over several blocks): at most an expert's rows (F x D, or D x 2F)
      // and a little, never a stacked tensor. One 1 MiB block holds whole tensors.
      if (block == 4096) CHECK(gate.largest_wait() <= uint64_t(D * 2 * F * 2));
    }
  }

  // Two conversions at once sharing one band memory of one builder (verify's overlapped
  // passes): the same bytes, never two bands built at once.
  BandMemory shared(1, 2 * 4096);
  std::vector<std::thread> conversions;
  for (int c = 0; c < 2; ++c) {
    const auto out = temp.path() / ("shared-" + std::to_string(c));
    std::filesystem::create_directories(out);
    conversions.emplace_back([&, out] {
      ExecuteOptions options;
      options.block_bytes = 4096;
      options.threads = 3;
      options.writes_in_flight = 2;
      options.band_memory = &shared;
      execute(plan, file_plan, out, options);
    });
  }
  for (auto& conversion : conversions) conversion.join();
  for (int c = 0; c < 2; ++c) {
    std::ifstream in(temp.path() / ("shared-" + std::to_string(c)) / "out.bin", std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == expected);
  }
  CHECK(shared.most_building() == 1);
}
