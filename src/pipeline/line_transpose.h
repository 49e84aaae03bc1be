// Whole-line transposes in wide vector instructions: the inner loop of a true transpose
// (strided_copy.h) in AVX-512 where the CPU has it. Every kernel writes the same bytes; they
// differ only in speed (docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <vector>

namespace ckconv {

// The instructions a true transpose moves its 64-byte lines with. kSse2 is the baseline
// (strided_copy.cpp's SSE2 tiles, or element by element in a build without SSE2); kAvx512
// (AVX-512F and BW) has kernels for 2- and 4-byte elements, other sizes go through the
// baseline.
enum class LineKernel { kSse2, kAvx512 };

// The kernels this CPU and operating system can run, the baseline first and the widest
// last (only the baseline in a build without the AVX-512 kernels: not x86-64, or a compiler
// other than GCC and clang).
std::vector<LineKernel> supported_line_kernels();

// supported_line_kernels().back().
LineKernel widest_line_kernel();

// Target rows [0, i_end) x columns [j0, j_end) of a true transpose: target element (i, j) at
// out + i * target_row + j * element_size, source element (i, j) at
// in + i * element_size + j * source_row (byte strides). i_end, j0 and j_end are multiples of
// 64 / element_size. With `stream`, target lines are stored non-temporally (out + j0 *
// element_size and target_row are then 64-byte aligned, and the caller fences before
// another thread reads them). Returns false, having written nothing, where `kernel` has no
// version for element_size: the caller copies with the baseline.
bool transpose_lines(LineKernel kernel, int element_size, bool stream, uint8_t* out,
                     const uint8_t* in, int64_t target_row, int64_t source_row, int64_t i_end,
                     int64_t j0, int64_t j_end);

}  // namespace ckconv
