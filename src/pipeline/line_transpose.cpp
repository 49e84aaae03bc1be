// Whole-line transposes in AVX-512 (see line_transpose.h). The kernel is compiled for its
// instruction set with a target attribute and called only after the CPU has been asked, so
// the binary still runs on any x86-64.
//
// Why: the baseline moves a chunk of 64-byte lines through 8 x 8 tiles of 16-byte vectors
// and an L1 buffer. AVX-512 transposes the chunk in registers, each 64-byte line one
// register, with about 40% of the shuffles and no buffer. An AVX2 kernel of 16 x 16 tiles
// through the same buffer gained 3% (docs/benchmarks.md) and is not kept.
#include "pipeline/line_transpose.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define CKCONV_WIDE_KERNELS 1
#include <immintrin.h>
#endif

namespace ckconv {

#if defined(CKCONV_WIDE_KERNELS)
namespace {

// GCC 12's AVX-512 unpack intrinsics start from _mm512_undefined_epi32(), a deliberately
// uninitialised value that -Wuninitialized and -Wmaybe-uninitialized report; the
// instructions never read it.
#pragma GCC diagnostic push
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

// The last stage of both chunk kernels. Lane l of group g (g0..g3) holds 16 bytes of target
// line l, columns 16 g bytes on: the four lanes of the four groups are exchanged (lanes 0-1
// and 2-3 of groups 0-1 and 2-3, then lane l of each group in order), so that register l
// is the whole line, stored at `to` + l * line_stride.
template <bool kStream>
__attribute__((target("avx512f"))) inline void store_exchanged_lanes(__m512i g0, __m512i g1,
                                                                     __m512i g2, __m512i g3,
                                                                     uint8_t* to,
                                                                     int64_t line_stride) {
  const __m512i low01 = _mm512_shuffle_i64x2(g0, g1, 0x44);
  const __m512i high01 = _mm512_shuffle_i64x2(g0, g1, 0xEE);
  const __m512i low23 = _mm512_shuffle_i64x2(g2, g3, 0x44);
  const __m512i high23 = _mm512_shuffle_i64x2(g2, g3, 0xEE);
  const __m512i line[4] = {
      _mm512_shuffle_i64x2(low01, low23, 0x88), _mm512_shuffle_i64x2(low01, low23, 0xDD),
      _mm512_shuffle_i64x2(high01, high23, 0x88), _mm512_shuffle_i64x2(high01, high23, 0xDD)};
  for (int l = 0; l < 4; ++l) {
    uint8_t* target = to + l * line_stride;
    if constexpr (kStream)
      _mm512_stream_si512(reinterpret_cast<__m512i*>(target), line[l]);
    else
      _mm512_storeu_si512(target, line[l]);
  }
}

// A 32 x 32 chunk of 2-byte elements: `from` points at source row 0 of the chunk (32
// source rows of source_row bytes, one 64-byte line each), `to` at target row 0 (32 target
// rows of target_row bytes). Within each group of 8 source lines, three unpack stages
// transpose each 128-bit lane as an 8 x 8 tile; the lanes of the four groups are then
// exchanged (store_exchanged_lanes) so that every register is one whole target line.
template <bool kStream>
__attribute__((target("avx512f,avx512bw"))) inline void transpose_chunk_u16_avx512(
    uint8_t* to, int64_t target_row, const uint8_t* from, int64_t source_row) {
  __m512i tile[4][8];  // [group][m]: lane l holds target row 8l + m, columns 8 group + [0, 8)
  for (int group = 0; group < 4; ++group) {
    __m512i r[8];
    for (int k = 0; k < 8; ++k) r[k] = _mm512_loadu_si512(from + (8 * group + k) * source_row);
    __m512i a[8];
    for (int k = 0; k < 4; ++k) {
      a[2 * k] = _mm512_unpacklo_epi16(r[2 * k], r[2 * k + 1]);
      a[2 * k + 1] = _mm512_unpackhi_epi16(r[2 * k], r[2 * k + 1]);
    }
    const __m512i b[8] = {_mm512_unpacklo_epi32(a[0], a[2]), _mm512_unpackhi_epi32(a[0], a[2]),
                          _mm512_unpacklo_epi32(a[1], a[3]), _mm512_unpackhi_epi32(a[1], a[3]),
                          _mm512_unpacklo_epi32(a[4], a[6]), _mm512_unpackhi_epi32(a[4], a[6]),
                          _mm512_unpacklo_epi32(a[5], a[7]), _mm512_unpackhi_epi32(a[5], a[7])};
    for (int k = 0; k < 4; ++k) {
      tile[group][2 * k] = _mm512_unpacklo_epi64(b[k], b[k + 4]);
      tile[group][2 * k + 1] = _mm512_unpackhi_epi64(b[k], b[k + 4]);
    }
  }
  for (int m = 0; m < 8; ++m)
    store_exchanged_lanes<kStream>(tile[0][m], tile[1][m], tile[2][m], tile[3][m],
                                   to + m * target_row, 8 * target_row);
}

// A 16 x 16 chunk of 4-byte elements, the same way: two unpack stages make 4 x 4 tiles in
// each lane of a group of 4 source lines, then the lanes of the four groups are exchanged.
template <bool kStream>
__attribute__((target("avx512f"))) inline void transpose_chunk_u32_avx512(uint8_t* to,
                                                                          int64_t target_row,
                                                                          const uint8_t* from,
                                                                          int64_t source_row) {
  __m512i tile[4][4];  // [group][m]: lane l holds target row 4l + m, columns 4 group + [0, 4)
  for (int group = 0; group < 4; ++group) {
    __m512i r[4];
    for (int k = 0; k < 4; ++k) r[k] = _mm512_loadu_si512(from + (4 * group + k) * source_row);
    const __m512i a[4] = {_mm512_unpacklo_epi32(r[0], r[1]), _mm512_unpackhi_epi32(r[0], r[1]),
                          _mm512_unpacklo_epi32(r[2], r[3]), _mm512_unpackhi_epi32(r[2], r[3])};
    tile[group][0] = _mm512_unpacklo_epi64(a[0], a[2]);
    tile[group][1] = _mm512_unpackhi_epi64(a[0], a[2]);
    tile[group][2] = _mm512_unpacklo_epi64(a[1], a[3]);
    tile[group][3] = _mm512_unpackhi_epi64(a[1], a[3]);
  }
  for (int m = 0; m < 4; ++m)
    store_exchanged_lanes<kStream>(tile[0][m], tile[1][m], tile[2][m], tile[3][m],
                                   to + m * target_row, 4 * target_row);
}

#pragma GCC diagnostic pop

// Chunks of kLine x kLine elements (a 64-byte line each way), source rows read kLine at a
// time front to back (the source is a file mapping).
template <int kElementSize, bool kStream>
__attribute__((target("avx512f,avx512bw"))) void transpose_lines_avx512(
    uint8_t* out, const uint8_t* in, int64_t target_row, int64_t source_row, int64_t i_end,
    int64_t j0, int64_t j_end) {
  constexpr int64_t kLine = 64 / kElementSize;
  for (int64_t j = j0; j < j_end; j += kLine)
    for (int64_t i = 0; i < i_end; i += kLine) {
      const uint8_t* from = in + i * kElementSize + j * source_row;
      uint8_t* to = out + i * target_row + j * kElementSize;
      if constexpr (kElementSize == 2)
        transpose_chunk_u16_avx512<kStream>(to, target_row, from, source_row);
      else
        transpose_chunk_u32_avx512<kStream>(to, target_row, from, source_row);
    }
}

}  // namespace

std::vector<LineKernel> supported_line_kernels() {
  std::vector<LineKernel> kernels{LineKernel::kSse2};
  // __builtin_cpu_supports also requires the operating system to save the registers.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    kernels.push_back(LineKernel::kAvx512);
  return kernels;
}

LineKernel widest_line_kernel() {
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
    return LineKernel::kAvx512;
  return LineKernel::kSse2;
}

bool transpose_lines(LineKernel kernel, int element_size, bool stream, uint8_t* out,
                     const uint8_t* in, int64_t target_row, int64_t source_row, int64_t i_end,
                     int64_t j0, int64_t j_end) {
  if (kernel == LineKernel::kAvx512 && element_size == 2) {
    (stream ? transpose_lines_avx512<2, true>
            : transpose_lines_avx512<2, false>)(out, in, target_row, source_row, i_end, j0, j_end);
    return true;
  }
  if (kernel == LineKernel::kAvx512 && element_size == 4) {
    (stream ? transpose_lines_avx512<4, true>
            : transpose_lines_avx512<4, false>)(out, in, target_row, source_row, i_end, j0, j_end);
    return true;
  }
  return false;
}

#else  // not x86-64 with GCC or clang: the baseline everywhere

std::vector<LineKernel> supported_line_kernels() {
  return {LineKernel::kSse2};
}

LineKernel widest_line_kernel() {
  return LineKernel::kSse2;
}

bool transpose_lines(LineKernel, int, bool, uint8_t*, const uint8_t*, int64_t, int64_t, int64_t,
                     int64_t, int64_t) {
  return false;
}

#endif

}  // namespace ckconv
