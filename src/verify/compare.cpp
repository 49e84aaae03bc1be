#include "verify/compare.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/file.h"

namespace ckconv {
namespace {

constexpr int64_t kCompareBufferBytes = int64_t{8} << 20;
// The spans StreamingComparison drops from the page cache: 2 MiB, aligned, the largest
// folio the page cache holds a file in on x86-64 (a PMD), so that every folio a span meets
// lies wholly inside it (the kernel drops no folio that reaches outside the range).
constexpr uint64_t kForgetSpanBytes = uint64_t{2} << 20;

double as_double(DType dtype, const uint8_t* bytes) {
  switch (dtype) {
    case DType::kF32: {
      float value;
      std::memcpy(&value, bytes, 4);
      return value;
    }
    case DType::kF64: {
      double value;
      std::memcpy(&value, bytes, 8);
      return value;
    }
    case DType::kBF16: {
      uint32_t bits = static_cast<uint32_t>(bytes[0] | (bytes[1] << 8)) << 16;
      float value;
      std::memcpy(&value, &bits, 4);
      return value;
    }
    case DType::kF16: {
      const uint16_t h = static_cast<uint16_t>(bytes[0] | (bytes[1] << 8));
      const int exponent = (h >> 10) & 0x1f;
      const int mantissa = h & 0x3ff;
      double value = exponent == 0    ? std::ldexp(mantissa, -24)
                     : exponent == 31 ? (mantissa ? NAN : INFINITY)
                                      : std::ldexp(mantissa + 1024, exponent - 25);
      return (h & 0x8000) ? -value : value;
    }
    default:
      return NAN;
  }
}

// Elements [first, first + count) of `tensor`: straight from the mapping when they are one
// run in the page cache, else copied into `buffer` (unbuffered reads when not cached: see
// MappedFile::read_unbuffered). `buffer` holds kCompareBufferBytes plus two alignments.
const uint8_t* elements(const MappedCheckpoint& checkpoint, const CatalogTensor& tensor,
                        int64_t first, int64_t count, const AlignedBuffer& buffer) {
  const int64_t element_size = dtype_size(tensor.dtype);
  if (const uint8_t* base = checkpoint.contiguous_data(tensor)) {
    const uint8_t* data = base + first * element_size;
    const uint64_t size = static_cast<uint64_t>(count * element_size);
    uint64_t offset = 0;
    const MappedFile* file = checkpoint.locate(data, &offset);
    if (file != nullptr && file->resident_share(offset, size) < 0.5)
      if (const uint8_t* copy = file->read_unbuffered(offset, size, buffer.data())) return copy;
    return data;
  }
  checkpoint.read_elements(tensor, first, count, buffer.data());
  return buffer.data();
}

bool matches(const std::vector<std::regex>& patterns, const std::string& name) {
  for (const auto& pattern : patterns)
    if (std::regex_match(name, pattern)) return true;
  return false;
}

using TensorMap = std::map<std::string, const CatalogTensor*>;

TensorMap tensors_by_name(const MappedCheckpoint& checkpoint,
                          const std::vector<std::regex>& ignore) {
  TensorMap tensors;
  for (const auto& tensor : checkpoint.catalog().tensors)
    if (!matches(ignore, tensor.name)) tensors[tensor.name] = &tensor;
  return tensors;
}

bool same_dtype_and_shape(const CatalogTensor& a, const CatalogTensor& b) {
  return a.dtype == b.dtype && a.shape == b.shape;
}

const Exclusion* exclusion_of(const std::vector<Exclusion>& exclusions, const std::string& name) {
  const Exclusion* excluded = nullptr;
  for (const auto& exclusion : exclusions)
    if (std::regex_match(name, exclusion.pattern)) excluded = &exclusion;
  return excluded;
}

std::string describe_differences(const std::string& name, int64_t count, int64_t total,
                                 int64_t first, double max_abs) {
  char delta[64];
  std::snprintf(delta, sizeof delta, "%.6g", max_abs);
  return name + ": " + std::to_string(count) + " of " + std::to_string(total) +
         " elements differ, first at element " + std::to_string(first) + ", max |delta| " + delta;
}

// Names missing or extra on either side, and names whose dtype or shape changed.
Comparison key_set_differences(const TensorMap& left, const TensorMap& right) {
  Comparison result;
  for (const auto& [name, tensor] : left)
    if (!right.count(name)) result.differences.push_back("missing after the round trip: " + name);
  for (const auto& [name, tensor] : right)
    if (!left.count(name)) result.differences.push_back("extra after the round trip: " + name);
  for (const auto& [name, expected_tensor] : left) {
    auto found = right.find(name);
    if (found == right.end() || same_dtype_and_shape(*expected_tensor, *found->second)) continue;
    const CatalogTensor& actual_tensor = *found->second;
    result.differences.push_back(name + ": " + std::string(dtype_name(expected_tensor->dtype)) +
                                 shape_to_string(expected_tensor->shape) + " became " +
                                 std::string(dtype_name(actual_tensor.dtype)) +
                                 shape_to_string(actual_tensor.shape));
  }
  return result;
}

}  // namespace

Comparison compare_key_sets(const MappedCheckpoint& expected, const MappedCheckpoint& actual,
                            const std::vector<std::regex>& ignore) {
  return key_set_differences(tensors_by_name(expected, ignore), tensors_by_name(actual, ignore));
}

Comparison compare_tensors(const MappedCheckpoint& expected, const MappedCheckpoint& actual,
                           const std::vector<Exclusion>& exclusions,
                           const std::vector<std::regex>& ignore) {
  const TensorMap left = tensors_by_name(expected, ignore), right = tensors_by_name(actual, ignore);
  Comparison result = key_set_differences(left, right);
  const AlignedBuffer a(kCompareBufferBytes + 2 * File::kDirectAlignment);
  const AlignedBuffer b(kCompareBufferBytes + 2 * File::kDirectAlignment);
  for (const auto& [name, expected_tensor] : left) {
    auto found = right.find(name);
    if (found == right.end()) continue;
    const CatalogTensor& actual_tensor = *found->second;
    if (!same_dtype_and_shape(*expected_tensor, actual_tensor)) continue;  // reported above
    const Exclusion* excluded = exclusion_of(exclusions, name);
    const int64_t element_size = dtype_size(expected_tensor->dtype);
    const int64_t total = num_elements(expected_tensor->shape);
    const int64_t step =
        std::max<int64_t>(1, kCompareBufferBytes / std::max<int64_t>(1, element_size));
    int64_t first_difference = -1;
    int64_t difference_count = 0;
    double max_abs = 0;
    bool all_zero = true;
    for (int64_t first = 0; first < total; first += step) {
      const int64_t count = std::min(step, total - first);
      const uint8_t* y_all = elements(actual, actual_tensor, first, count, b);
      if (excluded) {
        for (int64_t i = 0; i < count * element_size && all_zero; ++i) all_zero = y_all[i] == 0;
        actual.release_elements(actual_tensor, first, count);
        continue;
      }
      const uint8_t* x_all = elements(expected, *expected_tensor, first, count, a);
      const bool same = std::memcmp(x_all, y_all, static_cast<size_t>(count * element_size)) == 0;
      for (int64_t i = 0; i < count && !same; ++i) {
        const uint8_t* x = x_all + i * element_size;
        const uint8_t* y = y_all + i * element_size;
        if (std::memcmp(x, y, element_size) == 0) continue;
        if (first_difference < 0) first_difference = first + i;
        ++difference_count;
        const double delta =
            std::fabs(as_double(expected_tensor->dtype, x) - as_double(expected_tensor->dtype, y));
        if (!std::isnan(delta)) max_abs = std::max(max_abs, delta);
      }
      expected.release_elements(*expected_tensor, first, count);
      actual.release_elements(actual_tensor, first, count);
    }
    if (excluded) {
      result.notes.push_back(name + ": value not compared (" + excluded->reason + ")");
      if (!all_zero)
        result.differences.push_back(
            name + ": excluded from the value check but not zeros after the round trip");
    } else if (first_difference >= 0) {
      result.differences.push_back(
          describe_differences(name, difference_count, total, first_difference, max_abs));
    }
  }
  return result;
}

StreamingComparison::StreamingComparison(const MappedCheckpoint& expected,
                                         const std::vector<Exclusion>& exclusions,
                                         const std::vector<std::regex>& ignore,
                                         bool forget_compared)
    : expected_(expected),
      forget_compared_(forget_compared),
      exclusions_(exclusions),
      ignore_(ignore) {}

void StreamingComparison::begin(const std::vector<OutputTensorSpec>& tensors,
                                const FilePlan& file_plan) {
  const TensorMap expected = tensors_by_name(expected_, ignore_);
  targets_.clear();
  for (const TensorPlacement& placement : file_plan.placements) {
    const OutputTensorSpec& spec = tensors.at(placement.tensor);
    auto found = expected.find(spec.name);
    if (found == expected.end() || found->second->dtype != spec.dtype ||
        found->second->shape != spec.shape || exclusion_of(exclusions_, spec.name) != nullptr)
      continue;
    targets_.push_back({spec.name, found->second, placement.file, placement.byte_offset,
                        static_cast<uint64_t>(spec.size_bytes())});
  }
  std::sort(targets_.begin(), targets_.end(), [](const Target& a, const Target& b) {
    return std::tie(a.file, a.offset) < std::tie(b.file, b.offset);
  });
  stats_.assign(targets_.size(), Stats{});
  pending_.clear();
  if (!forget_compared_) return;
  std::map<const MappedFile*, std::vector<uint64_t>> pending;
  for (Target& target : targets_) {
    const uint8_t* base = expected_.contiguous_data(*target.expected);
    if (base == nullptr || target.size == 0) continue;
    target.source = expected_.locate(base, &target.source_offset);
    if (target.source == nullptr) continue;
    std::vector<uint64_t>& spans = pending[target.source];
    spans.resize((target.source->size() + kForgetSpanBytes - 1) / kForgetSpanBytes);
    const uint64_t begin = target.source_offset, end = begin + target.size;
    for (uint64_t span = begin / kForgetSpanBytes; span * kForgetSpanBytes < end; ++span)
      spans[span] +=
          std::min(end, (span + 1) * kForgetSpanBytes) - std::max(begin, span * kForgetSpanBytes);
  }
  for (const auto& [file, spans] : pending) {
    auto counts = std::make_unique<std::atomic<uint64_t>[]>(spans.size());
    for (size_t span = 0; span < spans.size(); ++span) counts[span] = spans[span];
    pending_.emplace(file, std::move(counts));
  }
}

void StreamingComparison::forget(const Target& target, uint64_t begin, uint64_t end) {
  if (target.source == nullptr || begin >= end) return;
  std::atomic<uint64_t>* spans = pending_.at(target.source).get();
  const uint64_t first = target.source_offset + begin, last = target.source_offset + end;
  for (uint64_t span = first / kForgetSpanBytes; span * kForgetSpanBytes < last; ++span) {
    const uint64_t span_begin = span * kForgetSpanBytes;
    const uint64_t done =
        std::min(last, span_begin + kForgetSpanBytes) - std::max(first, span_begin);
    // The thread that compares a span's last bytes drops it; every other byte of it has been
    // compared and released by then.
    if (spans[span].fetch_sub(done) == done) {
      target.source->release(span_begin, kForgetSpanBytes);
      target.source->drop_cached(span_begin, kForgetSpanBytes);
    }
  }
}

void StreamingComparison::block(uint32_t file, uint64_t offset, const uint8_t* data,
                                uint64_t size) {
  const uint64_t end = offset + size;
  // The first target that ends after `offset` in this file; targets do not overlap.
  auto it = std::lower_bound(targets_.begin(), targets_.end(), std::make_pair(file, offset),
                             [](const Target& t, const std::pair<uint32_t, uint64_t>& key) {
                               return std::make_pair(t.file, t.offset + t.size) <=
                                      std::make_pair(key.first, key.second);
                             });
  for (; it != targets_.end() && it->file == file && it->offset < end; ++it) {
    const uint64_t begin = std::max(offset, it->offset);
    const uint64_t stop = std::min(end, it->offset + it->size);
    if (begin < stop)
      compare_range(static_cast<size_t>(it - targets_.begin()), begin - it->offset,
                    stop - it->offset, data + (begin - offset));
  }
}

// Compares bytes [begin, end) of target `index` (offsets in the tensor) with `actual`.
void StreamingComparison::compare_range(size_t index, uint64_t begin, uint64_t end,
                                        const uint8_t* actual) {
  const Target& target = targets_[index];
  const CatalogTensor& tensor = *target.expected;
  const int64_t element_size = dtype_size(tensor.dtype);
  thread_local std::unique_ptr<AlignedBuffer> buffer;
  if (!buffer)
    buffer = std::make_unique<AlignedBuffer>(kCompareBufferBytes + 2 * File::kDirectAlignment);
  Stats local;
  // Whole elements overlapping [begin, end), a buffer's worth at a time.
  const int64_t step = std::max<int64_t>(1, kCompareBufferBytes / element_size);
  const int64_t last = static_cast<int64_t>((end + element_size - 1) / element_size);
  for (int64_t first = static_cast<int64_t>(begin) / element_size; first < last; first += step) {
    const int64_t count = std::min(step, last - first);
    const uint8_t* expected = elements(expected_, tensor, first, count, *buffer);
    // The byte window of this step inside [begin, end).
    const uint64_t window_begin =
        std::max<uint64_t>(begin, static_cast<uint64_t>(first * element_size));
    const uint64_t window_end =
        std::min<uint64_t>(end, static_cast<uint64_t>((first + count) * element_size));
    const uint8_t* x = expected + (window_begin - first * element_size);
    const uint8_t* y = actual + (window_begin - begin);
    if (std::memcmp(x, y, window_end - window_begin) != 0) {
      for (uint64_t byte = window_begin; byte < window_end;) {
        const int64_t element = static_cast<int64_t>(byte / element_size);
        const uint64_t element_end = std::min<uint64_t>(window_end, (element + 1) * element_size);
        const uint64_t at = byte - window_begin;
        if (std::memcmp(x + at, y + at, element_end - byte) != 0) {
          // (An element split between two blocks, which the writers' aligned layouts never
          // produce, would count once per differing part.)
          if (local.first_difference < 0) local.first_difference = element;
          ++local.count;
          if (element_end - byte == static_cast<uint64_t>(element_size)) {
            const double delta =
                std::fabs(as_double(tensor.dtype, x + at) - as_double(tensor.dtype, y + at));
            if (!std::isnan(delta)) local.max_abs = std::max(local.max_abs, delta);
          }
        }
        byte = element_end;
      }
    }
    expected_.release_elements(tensor, first, count);
    if (forget_compared_) forget(target, window_begin, window_end);
  }
  if (local.count == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  Stats& stats = stats_[index];
  if (stats.first_difference < 0 || local.first_difference < stats.first_difference)
    stats.first_difference = local.first_difference;
  stats.count += local.count;
  stats.max_abs = std::max(stats.max_abs, local.max_abs);
}

Comparison StreamingComparison::result() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<size_t> order(targets_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return targets_[a].name < targets_[b].name; });
  Comparison result;
  for (size_t i : order) {
    const Stats& stats = stats_[i];
    if (stats.count > 0)
      result.differences.push_back(describe_differences(targets_[i].name, stats.count,
                                                        num_elements(targets_[i].expected->shape),
                                                        stats.first_difference, stats.max_abs));
  }
  return result;
}

Comparison check_excluded_zeros(const MappedCheckpoint& checkpoint,
                                const std::vector<Exclusion>& exclusions) {
  Comparison result;
  const AlignedBuffer buffer(kCompareBufferBytes + 2 * File::kDirectAlignment);
  for (const auto& [name, tensor] : tensors_by_name(checkpoint, {})) {
    const Exclusion* excluded = exclusion_of(exclusions, name);
    if (!excluded) continue;
    const int64_t element_size = dtype_size(tensor->dtype);
    const int64_t total = num_elements(tensor->shape);
    const int64_t step =
        std::max<int64_t>(1, kCompareBufferBytes / std::max<int64_t>(1, element_size));
    bool all_zero = true;
    for (int64_t first = 0; first < total && all_zero; first += step) {
      const int64_t count = std::min(step, total - first);
      const uint8_t* values = elements(checkpoint, *tensor, first, count, buffer);
      for (int64_t i = 0; i < count * element_size && all_zero; ++i) all_zero = values[i] == 0;
      checkpoint.release_elements(*tensor, first, count);
    }
    result.notes.push_back(name + ": value not compared (" + excluded->reason + ")");
    if (!all_zero)
      result.differences.push_back(
          name + ": excluded from the value check but not zeros after the round trip");
  }
  return result;
}

Comparison compare_directories(const std::filesystem::path& expected,
                               const std::filesystem::path& actual) {
  Comparison result;
  auto list = [](const std::filesystem::path& root) {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
      if (entry.is_regular_file())
        names.insert(std::filesystem::relative(entry.path(), root).string());
    return names;
  };
  const std::set<std::string> left = list(expected), right = list(actual);
  for (const auto& name : left)
    if (!right.count(name))
      result.differences.push_back("file missing in the second pass: " + name);
  for (const auto& name : right)
    if (!left.count(name)) result.differences.push_back("extra file in the second pass: " + name);
  std::vector<uint8_t> a(kCompareBufferBytes), b(kCompareBufferBytes);
  for (const auto& name : left) {
    if (!right.count(name)) continue;
    File x = File::open_read(expected / name), y = File::open_read(actual / name);
    if (x.size() != y.size()) {
      result.differences.push_back(name + ": " + std::to_string(x.size()) + " bytes vs " +
                                   std::to_string(y.size()));
      continue;
    }
    for (uint64_t offset = 0; offset < x.size();) {
      const size_t count = static_cast<size_t>(std::min<uint64_t>(a.size(), x.size() - offset));
      x.read_at(a.data(), count, offset);
      y.read_at(b.data(), count, offset);
      if (std::memcmp(a.data(), b.data(), count) != 0) {
        size_t i = 0;
        while (a[i] == b[i]) ++i;
        result.differences.push_back(name + ": bytes differ, first at offset " +
                                     std::to_string(offset + i));
        break;
      }
      offset += count;
    }
  }
  return result;
}

}  // namespace ckconv
