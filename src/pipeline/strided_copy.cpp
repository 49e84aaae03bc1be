// Strided copies (see strided_copy.h): dims are simplified first so that a rename is one
// memcpy and a row permutation a loop of row copies; transposes are blocked for the cache.
#include "pipeline/strided_copy.h"

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/mapped_checkpoint.h"

namespace ckconv {
namespace {

struct Dim {
  int64_t size;
  int64_t target;
  int64_t source;
};

// Drops unit dims and merges neighbours that are contiguous in both layouts, so a plain
// rename becomes one memcpy and a row permutation becomes a loop of row copies.
std::vector<Dim> simplify(const Shape& sizes, const Shape& target_strides,
                          const Shape& source_strides, bool* empty) {
  std::vector<Dim> dims;
  *empty = false;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) *empty = true;
    if (sizes[d] == 1) continue;
    Dim dim{sizes[d], target_strides[d], source_strides[d]};
    if (!dims.empty()) {
      Dim& outer = dims.back();
      if (outer.target == dim.target * dim.size && outer.source == dim.source * dim.size) {
        outer = Dim{outer.size * dim.size, dim.target, dim.source};
        continue;
      }
    }
    dims.push_back(dim);
  }
  return dims;
}

// Calls body(target_offset, source_offset) for every index of dims[0, count), in row-major
// order (offsets in elements).
template <typename Body>
void for_each_outer(const std::vector<Dim>& dims, size_t count, Body body) {
  std::vector<int64_t> index(count, 0);
  int64_t target = 0;
  int64_t source = 0;
  while (true) {
    body(target, source);
    size_t d = count;
    while (d > 0) {
      --d;
      if (++index[d] < dims[d].size) {
        target += dims[d].target;
        source += dims[d].source;
        break;
      }
      target -= dims[d].target * (dims[d].size - 1);
      source -= dims[d].source * (dims[d].size - 1);
      index[d] = 0;
      if (d == 0) return;
    }
    if (count == 0) return;
  }
}

// Copies one element of type T between byte addresses. Sources are mapped files whose tensor
// offsets need not be aligned to T, so the copy goes through memcpy (a plain load and store
// where the target allows unaligned access), never through a T* dereference.
template <typename T>
inline void copy_element(uint8_t* target, const uint8_t* source) {
  T value;
  std::memcpy(&value, source, sizeof(T));
  std::memcpy(target, &value, sizeof(T));
}

template <typename T>
void copy_typed(uint8_t* target, const uint8_t* source, const std::vector<Dim>& dims) {
  constexpr int64_t kSize = sizeof(T);
  const size_t rank = dims.size();
  if (rank >= 2 && dims[rank - 1].target == 1) {
    // Transpose-like: blocked over the last two dims so both sides stay in cache.
    constexpr int64_t kBlock = 32;
    const Dim& rows = dims[rank - 2];
    const Dim& cols = dims[rank - 1];
    for_each_outer(dims, rank - 2, [&](int64_t t0, int64_t s0) {
      for (int64_t i0 = 0; i0 < rows.size; i0 += kBlock) {
        const int64_t i1 = std::min(rows.size, i0 + kBlock);
        for (int64_t j0 = 0; j0 < cols.size; j0 += kBlock) {
          const int64_t j1 = std::min(cols.size, j0 + kBlock);
          for (int64_t i = i0; i < i1; ++i) {
            uint8_t* out = target + (t0 + i * rows.target) * kSize;
            const uint8_t* in = source + (s0 + i * rows.source) * kSize;
            for (int64_t j = j0; j < j1; ++j)
              copy_element<T>(out + j * kSize, in + j * cols.source * kSize);
          }
        }
      }
    });
    return;
  }
  const Dim& inner = dims[rank - 1];
  for_each_outer(dims, rank - 1, [&](int64_t t0, int64_t s0) {
    for (int64_t j = 0; j < inner.size; ++j) {
      copy_element<T>(target + (t0 + j * inner.target) * kSize,
                      source + (s0 + j * inner.source) * kSize);
    }
  });
}

struct Uint128 {
  uint64_t low, high;
};

}  // namespace

void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size) {
  bool empty = false;
  std::vector<Dim> dims = simplify(sizes, target_strides, source_strides, &empty);
  if (empty) return;
  if (dims.empty()) {
    std::memcpy(target, source, static_cast<size_t>(element_size));
    return;
  }
  const Dim& inner = dims.back();
  if (inner.target == 1 && inner.source == 1) {
    const size_t run = static_cast<size_t>(inner.size * element_size);
    for_each_outer(dims, dims.size() - 1, [&](int64_t t0, int64_t s0) {
      std::memcpy(target + t0 * element_size, source + s0 * element_size, run);
    });
    return;
  }
  switch (element_size) {
    case 1:
      return copy_typed<uint8_t>(target, source, dims);
    case 2:
      return copy_typed<uint16_t>(target, source, dims);
    case 4:
      return copy_typed<uint32_t>(target, source, dims);
    case 8:
      return copy_typed<uint64_t>(target, source, dims);
    case 16:
      return copy_typed<Uint128>(target, source, dims);
    default:
      fail(ErrorKind::kInternal, "unsupported element size " + std::to_string(element_size));
  }
}

void copy_strided_runs(uint8_t* target, const Shape& target_strides, const ElementReader& read,
                       int64_t source_first, const Shape& source_strides, const Shape& sizes,
                       int element_size) {
  bool empty = false;
  std::vector<Dim> dims = simplify(sizes, target_strides, source_strides, &empty);
  if (empty) return;
  if (dims.empty()) {
    read(source_first, 1, target);
    return;
  }
  const Dim inner = dims.back();
  for_each_outer(dims, dims.size() - 1, [&](int64_t t0, int64_t s0) {
    if (inner.target == 1 && inner.source == 1) {
      read(source_first + s0, inner.size, target + t0 * element_size);
      return;
    }
    for (int64_t j = 0; j < inner.size; ++j)
      read(source_first + s0 + j * inner.source, 1,
           target + (t0 + j * inner.target) * element_size);
  });
}

void copy_in_stripes(uint8_t* target, const Shape& target_strides,
                     const MappedCheckpoint& checkpoint, const uint8_t* source,
                     const Shape& source_strides, const Shape& sizes, int element_size) {
  for (int64_t stride : source_strides)
    if (stride < 0)
      return copy_strided(target, target_strides, source, source_strides, sizes, element_size);
  size_t widest = 0;
  for (size_t d = 0; d < sizes.size(); ++d)
    if (sizes[d] > 1 && (sizes[widest] <= 1 || source_strides[d] > source_strides[widest]))
      widest = d;
  const int64_t row_bytes = std::max<int64_t>(1, source_strides[widest] * element_size);
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(kMaxSparseSpanBytes) / row_bytes);
  Shape stripe = sizes;
  for (int64_t first = 0; first < sizes[widest]; first += rows) {
    stripe[widest] = std::min(rows, sizes[widest] - first);
    const uint8_t* from = source + first * row_bytes;
    copy_strided(target + first * target_strides[widest] * element_size, target_strides, from,
                 source_strides, stripe, element_size);
    int64_t reach = 0;
    for (size_t d = 0; d < stripe.size(); ++d) reach += (stripe[d] - 1) * source_strides[d];
    checkpoint.release(from, static_cast<uint64_t>((reach + 1) * element_size));
  }
}

}  // namespace ckconv
