// Strided copies (see strided_copy.h): dims are simplified first so that a rename is one
// memcpy and a row permutation a loop of row copies; transposes are blocked for the cache.
#include "pipeline/strided_copy.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Stores one 16-byte vector: with kStream, non-temporally (the target must be 16-byte
// aligned; the caller issues _mm_sfence before other threads may read it).
#if defined(__SSE2__)
template <bool kStream>
inline void store_16(uint8_t* target, __m128i value) {
  if constexpr (kStream)
    _mm_stream_si128(reinterpret_cast<__m128i*>(target), value);
  else
    _mm_storeu_si128(reinterpret_cast<__m128i*>(target), value);
}

// Transposes one 8 x 8 tile of 2-byte elements: target row r (stride target_row bytes) gets
// element r of each of the 8 source rows (stride source_row bytes), 16 bytes per row.
inline void transpose_8x8_u16(uint8_t* target, int64_t target_row, const uint8_t* source,
                              int64_t source_row) {
  __m128i r[8];
  for (int k = 0; k < 8; ++k)
    r[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(source + k * source_row));
  const __m128i a0 = _mm_unpacklo_epi16(r[0], r[1]), a1 = _mm_unpackhi_epi16(r[0], r[1]);
  const __m128i a2 = _mm_unpacklo_epi16(r[2], r[3]), a3 = _mm_unpackhi_epi16(r[2], r[3]);
  const __m128i a4 = _mm_unpacklo_epi16(r[4], r[5]), a5 = _mm_unpackhi_epi16(r[4], r[5]);
  const __m128i a6 = _mm_unpacklo_epi16(r[6], r[7]), a7 = _mm_unpackhi_epi16(r[6], r[7]);
  const __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
  const __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
  const __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
  const __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
  const __m128i out[8] = {_mm_unpacklo_epi64(b0, b4), _mm_unpackhi_epi64(b0, b4),
                          _mm_unpacklo_epi64(b1, b5), _mm_unpackhi_epi64(b1, b5),
                          _mm_unpacklo_epi64(b2, b6), _mm_unpackhi_epi64(b2, b6),
                          _mm_unpacklo_epi64(b3, b7), _mm_unpackhi_epi64(b3, b7)};
  for (int k = 0; k < 8; ++k)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(target + k * target_row), out[k]);
}

// Same for a 4 x 4 tile of 4-byte elements.
inline void transpose_4x4_u32(uint8_t* target, int64_t target_row, const uint8_t* source,
                              int64_t source_row) {
  __m128i r[4];
  for (int k = 0; k < 4; ++k)
    r[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(source + k * source_row));
  const __m128i a0 = _mm_unpacklo_epi32(r[0], r[1]), a1 = _mm_unpackhi_epi32(r[0], r[1]);
  const __m128i a2 = _mm_unpacklo_epi32(r[2], r[3]), a3 = _mm_unpackhi_epi32(r[2], r[3]);
  const __m128i out[4] = {_mm_unpacklo_epi64(a0, a2), _mm_unpackhi_epi64(a0, a2),
                          _mm_unpacklo_epi64(a1, a3), _mm_unpackhi_epi64(a1, a3)};
  for (int k = 0; k < 4; ++k)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(target + k * target_row), out[k]);
}
#endif

// The tile transposed by one vector kernel call for elements of type T (0: none). A tile
// applies where the source is contiguous along the target's rows (a true transpose).
template <typename T>
constexpr int64_t vector_tile() {
#if defined(__SSE2__)
  if constexpr (sizeof(T) == 2) return 8;
  if constexpr (sizeof(T) == 4) return 4;
#endif
  return 0;
}

// Target rows [i0, i1), columns [j0, j1), element by element. The inner loop walks the
// longer side: the outer one then revisits, at the next element, only as many lines as the
// shorter side has (the target lines of a few rows, or the source lines of a few columns),
// which stay in cache even when their strides map them all to one cache set.
template <typename T>
void copy_elements(uint8_t* out, const uint8_t* in, const Dim& rows, const Dim& cols, int64_t i0,
                   int64_t i1, int64_t j0, int64_t j1) {
  constexpr int64_t kSize = sizeof(T);
  if (i1 - i0 < j1 - j0) {
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t i = i0; i < i1; ++i)
        copy_element<T>(out + (i * rows.target + j) * kSize,
                        in + (i * rows.source + j * cols.source) * kSize);
    return;
  }
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j)
      copy_element<T>(out + (i * rows.target + j) * kSize,
                      in + (i * rows.source + j * cols.source) * kSize);
}

// One block of a transpose-like copy: target rows [i0, i1), columns [j0, j1), in vector
// tiles where the element size has a kernel and the source is contiguous along the target's
// rows, element by element elsewhere.
template <typename T>
void copy_block(uint8_t* out, const uint8_t* in, const Dim& rows, const Dim& cols, int64_t i0,
                int64_t i1, int64_t j0, int64_t j1) {
  constexpr int64_t kSize = sizeof(T);
  constexpr int64_t kTile = vector_tile<T>();
  int64_t vector_i = i0;  // rows [i0, vector_i) x columns [j0, vector_j) are done by tiles
  int64_t vector_j = j0;
#if defined(__SSE2__)
  if constexpr (kTile > 0) {
    if (rows.source == 1) {
      vector_i = i0 + (i1 - i0) / kTile * kTile;
      vector_j = j0 + (j1 - j0) / kTile * kTile;
      for (int64_t i = i0; i < vector_i; i += kTile)
        for (int64_t j = j0; j < vector_j; j += kTile) {
          const uint8_t* from = in + (i + j * cols.source) * kSize;
          uint8_t* to = out + (i * rows.target + j) * kSize;
          if constexpr (kTile == 8)
            transpose_8x8_u16(to, rows.target * kSize, from, cols.source * kSize);
          else
            transpose_4x4_u32(to, rows.target * kSize, from, cols.source * kSize);
        }
    }
  }
#endif
  // Tiles covered [i0, vector_i) x [j0, vector_j).
  copy_elements<T>(out, in, rows, cols, i0, vector_i, vector_j, j1);
  copy_elements<T>(out, in, rows, cols, vector_i, i1, j0, j1);
}

#if defined(__SSE2__)
// A true transpose (the source contiguous along the target's rows) of target rows
// [0, i_end) x columns [j0, j_end), both spans whole multiples of kLine = 64 / sizeof(T)
// elements: a 64-byte line of each side. Each chunk of kLine x kLine elements is read as
// kLine whole source lines, transposed in vector tiles into an L1 buffer and written out as
// kLine whole target lines, so every line on both sides is touched once, at once. The
// outer loop takes kLine source rows at a time and reads them front to back (the source is
// a file mapping). kStream: the target lines are stored non-temporally, four 16-byte stores
// filling one line (`out` + j0 and the target's row stride are 64-byte aligned).
template <typename T, bool kStream>
void copy_lines(uint8_t* out, const uint8_t* in, const Dim& rows, const Dim& cols, int64_t i_end,
                int64_t j0, int64_t j_end) {
  constexpr int64_t kSize = sizeof(T);
  constexpr int64_t kTile = vector_tile<T>();
  constexpr int64_t kLine = 64 / kSize;
  alignas(64) uint8_t buffer[kLine][64];
  const int64_t source_row = cols.source * kSize;
  const int64_t target_row = rows.target * kSize;
  for (int64_t j = j0; j < j_end; j += kLine)
    for (int64_t i = 0; i < i_end; i += kLine) {
      const uint8_t* from = in + (i + j * cols.source) * kSize;
      // Tile rows inner: the kTile source lines of a tile row are used up before the next.
      for (int64_t jj = 0; jj < kLine; jj += kTile)
        for (int64_t ii = 0; ii < kLine; ii += kTile) {
          const uint8_t* tile = from + ii * kSize + jj * source_row;
          if constexpr (kTile == 8)
            transpose_8x8_u16(&buffer[ii][jj * kSize], 64, tile, source_row);
          else
            transpose_4x4_u32(&buffer[ii][jj * kSize], 64, tile, source_row);
        }
      uint8_t* to = out + (i * rows.target + j) * kSize;
      for (int64_t r = 0; r < kLine; ++r) {
        const __m128i* line = reinterpret_cast<const __m128i*>(buffer[r]);
        for (int k = 0; k < 4; ++k)
          store_16<kStream>(to + r * target_row + 16 * k, _mm_load_si128(line + k));
      }
    }
}
#endif

template <typename T>
void copy_typed(uint8_t* target, const uint8_t* source, const std::vector<Dim>& dims,
                LineKernel kernel) {
  constexpr int64_t kSize = sizeof(T);
  const size_t rank = dims.size();
  if (rank >= 2 && dims[rank - 1].target == 1) {
    const Dim& rows = dims[rank - 2];
    const Dim& cols = dims[rank - 1];
#if defined(__SSE2__)
    if constexpr (vector_tile<T>() > 0) {
      if (rows.source == 1) {
        // A true transpose: whole 64-byte lines on both sides (copy_lines), the edges that
        // do not fill a line in tiles (copy_block). A large box stores its target lines
        // non-temporally: they are not read again before they have left the cache, and
        // streaming whole lines saves reading each one before it is written. Its columns
        // start at the first 64-byte line of each target row, the ones before it go through
        // the edge path. Streaming part-lines (one 16-byte tile row per line) was slower
        // than the cache (docs/benchmarks.md).
        constexpr int64_t kLine = 64 / kSize;
        constexpr int64_t kStreamMinBytes = int64_t{1} << 18;
        int64_t box_bytes = kSize;
        for (const Dim& dim : dims) box_bytes *= dim.size;
        const bool large = box_bytes >= kStreamMinBytes && rows.target * kSize % 64 == 0;
        const int64_t i_end = rows.size / kLine * kLine;
        bool streamed = false;
        for_each_outer(dims, rank - 2, [&](int64_t t0, int64_t s0) {
          uint8_t* out = target + t0 * kSize;
          const uint8_t* in = source + s0 * kSize;
          const uint64_t offset = reinterpret_cast<uintptr_t>(out) % 64;
          const bool stream = large && offset % kSize == 0;
          const int64_t j0 =
              stream
                  ? std::min<int64_t>(cols.size, static_cast<int64_t>((64 - offset) % 64 / kSize))
                  : 0;
          const int64_t j_end = j0 + (cols.size - j0) / kLine * kLine;
          if (i_end > 0 && j_end > j0) {
            // `kernel` (by default the widest the CPU has) where it has a version for T
            // (line_transpose.h), else the SSE2 tiles.
            if (!transpose_lines(kernel, kSize, stream, out, in, rows.target * kSize,
                                 cols.source * kSize, i_end, j0, j_end)) {
              if (stream)
                copy_lines<T, true>(out, in, rows, cols, i_end, j0, j_end);
              else
                copy_lines<T, false>(out, in, rows, cols, i_end, j0, j_end);
            }
            streamed = streamed || stream;
          }
          copy_block<T>(out, in, rows, cols, 0, rows.size, 0, j0);
          copy_block<T>(out, in, rows, cols, 0, rows.size, j_end, cols.size);
          copy_block<T>(out, in, rows, cols, i_end, rows.size, j0, j_end);
        });
        if (streamed) _mm_sfence();  // the streamed stores are visible before the caller goes on
        return;
      }
    }
#endif
    // Other transpose-like copies (no vector kernel for the element size, or a source not
    // contiguous along the target's rows): blocked over the last two dims so both sides
    // stay in cache. The outer loop walks the source's rows (the target's columns) kColumns
    // at a time, so that each group of source rows is read once, front to back, and each
    // target row gets kColumns elements at a time: whole cache lines, several of them.
    constexpr int64_t kRows = 32;
    constexpr int64_t kColumns = 256;
    for_each_outer(dims, rank - 2, [&](int64_t t0, int64_t s0) {
      for (int64_t j0 = 0; j0 < cols.size; j0 += kColumns) {
        const int64_t j1 = std::min(cols.size, j0 + kColumns);
        for (int64_t i0 = 0; i0 < rows.size; i0 += kRows)
          copy_block<T>(target + t0 * kSize, source + s0 * kSize, rows, cols, i0,
                        std::min(rows.size, i0 + kRows), j0, j1);
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

// Maps the pages of [data, data + size) (a read-only file mapping) readable in one
// madvise call rather than one page fault per few pages. Kernels before 5.14 refuse the
// advice; the copy then faults the pages in as usual.
void populate(const uint8_t* data, uint64_t size) {
#ifdef MADV_POPULATE_READ
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(data) + size;
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ);
#else
  (void)data;
  (void)size;
#endif
}

struct Uint128 {
  uint64_t low, high;
};

}  // namespace

void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size) {
  copy_strided(target, target_strides, source, source_strides, sizes, element_size,
               widest_line_kernel());
}

void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size,
                  LineKernel kernel) {
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
      return copy_typed<uint8_t>(target, source, dims, kernel);
    case 2:
      return copy_typed<uint16_t>(target, source, dims, kernel);
    case 4:
      return copy_typed<uint32_t>(target, source, dims, kernel);
    case 8:
      return copy_typed<uint64_t>(target, source, dims, kernel);
    case 16:
      return copy_typed<Uint128>(target, source, dims, kernel);
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
                     const Shape& source_strides, const Shape& sizes, int element_size,
                     uint64_t stripe_bytes) {
  for (int64_t stride : source_strides)
    if (stride < 0)
      return copy_strided(target, target_strides, source, source_strides, sizes, element_size);
  size_t widest = 0;
  for (size_t d = 0; d < sizes.size(); ++d)
    if (sizes[d] > 1 && (sizes[widest] <= 1 || source_strides[d] > source_strides[widest]))
      widest = d;
  const int64_t row_bytes = std::max<int64_t>(1, source_strides[widest] * element_size);
  const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(stripe_bytes) / row_bytes);
  Shape stripe = sizes;
  for (int64_t first = 0; first < sizes[widest]; first += rows) {
    stripe[widest] = std::min(rows, sizes[widest] - first);
    const uint8_t* from = source + first * row_bytes;
    int64_t reach = 0;
    for (size_t d = 0; d < stripe.size(); ++d) reach += (stripe[d] - 1) * source_strides[d];
    const uint64_t span = static_cast<uint64_t>((reach + 1) * element_size);
    // The stripe was released after an earlier block's pass over it: mapping it back in one
    // call costs a fraction of faulting it back page group by page group.
    populate(from, span);
    copy_strided(target + first * target_strides[widest] * element_size, target_strides, from,
                 source_strides, stripe, element_size);
    checkpoint.release(from, span);
  }
}

}  // namespace ckconv
