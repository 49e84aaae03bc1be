// Strided copies: the one byte-moving kernel every layout operation reduces to, the split of
// a row-major element range into tiles of whole index ranges, and striped copies that keep
// the mapped source span of a sparse (transpose-like) read bounded.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

#include "core/shape.h"
#include "pipeline/line_transpose.h"

namespace ckconv {

class MappedCheckpoint;

// Copies a box of `sizes` elements from `source` (element strides `source_strides`) to
// `target` (element strides `target_strides`). element_size is 1, 2, 4, 8 or 16 (kInternal
// otherwise). Strides may be 0 (a broadcast source) or negative.
void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size);

// copy_strided whose true transposes move whole lines with `kernel` (one of
// supported_line_kernels()) instead of the widest this CPU has: the bytes written are the
// same (tests compare every kernel against the scalar rule).
void copy_strided(uint8_t* target, const Shape& target_strides, const uint8_t* source,
                  const Shape& source_strides, const Shape& sizes, int element_size,
                  LineKernel kernel);

// Reads `count` elements starting at element `first` of a source (row-major) into `out`.
using ElementReader = std::function<void(int64_t first, int64_t count, uint8_t* out)>;

// copy_strided for a source reached only through `read` (sources in several chunks, or
// generated ones): the box starts at source element `source_first`; each contiguous run is
// one read call.
void copy_strided_runs(uint8_t* target, const Shape& target_strides, const ElementReader& read,
                       int64_t source_first, const Shape& source_strides, const Shape& sizes,
                       int element_size);

// A strided read spanning more source bytes than this (a transpose reads a few columns of
// every source row: one band of llama4's gate_up_proj spans a whole 168 MB expert) is
// copied in stripes of source rows, each released from the mapping once copied, so that the
// source pages a builder keeps mapped stay bounded whatever the tensor's size. (Released
// pages stay in the page cache; the next band's columns map them in again.) Each builder
// thread holds one stripe at a time, so this counts once per thread in peak RSS. Each stripe
// costs a populate and a release call, and a release flushes the other cores' TLBs: a run
// bound by CPU rather than by the device may use larger stripes (BandMemory; verify does).
constexpr uint64_t kMaxSparseSpanBytes = uint64_t{8} << 20;

// copy_strided from the mapping of `checkpoint` at `source`, a stripe of rows of the
// largest-stride dimension spanning at most `stripe_bytes` of source (at least one row) at a
// time, releasing each stripe's source span after copying it. With a negative source stride
// it is one plain copy_strided.
void copy_in_stripes(uint8_t* target, const Shape& target_strides,
                     const MappedCheckpoint& checkpoint, const uint8_t* source,
                     const Shape& source_strides, const Shape& sizes, int element_size,
                     uint64_t stripe_bytes = kMaxSparseSpanBytes);

// One tile: view indices [begin, end) along dim `dim`, at the single index `outer` of the
// dims before it (flattened), all of the dims after it. Its elements are contiguous in the
// row-major view.
struct Tile {
  size_t dim;
  int64_t outer;
  int64_t begin;
  int64_t end;
};

// Splits the row-major element range [first, first + count) of a tensor of shape `view`
// (restricted to index `outer` of the dims before `dim`) into at most 2 x rank tiles and
// calls emit(tile) for each, in order. Call with dim = 0, outer = 0.
template <typename Emit>
void split_into_tiles(const Shape& view, size_t dim, int64_t outer, int64_t first, int64_t count,
                      Emit emit) {
  if (count <= 0) return;
  int64_t inner = 1;  // elements of one index along `dim`
  for (size_t d = dim + 1; d < view.size(); ++d) inner *= view[d];
  if (first % inner != 0) {  // head: the end of one index
    const int64_t head = std::min(count, inner - first % inner);
    split_into_tiles(view, dim + 1, outer * view[dim] + first / inner, first % inner, head, emit);
    first += head;
    count -= head;
  }
  if (count >= inner) {
    const int64_t whole = count / inner;
    emit(Tile{dim, outer, first / inner, first / inner + whole});
    first += whole * inner;
    count -= whole * inner;
  }
  if (count > 0) split_into_tiles(view, dim + 1, outer * view[dim] + first / inner, 0, count, emit);
}

}  // namespace ckconv
